"""The engine facade: the one module a front imports.

    engine = Engine.open(home)              # the catalog under a home and its current build
    engine.prepare()                        # once at start-up: no call pays a cold start
    result = engine.check(body, "upload.jpg")   # fingerprint in memory, then match
    for match in result.matches: ...
    engine.refresh()                        # take a newer build if the catalog changed

Fingerprinting reads a buffer or a stream with the same code as a scan of a file (images, videos
and archives inside it, nested, under the same limits, item_seconds checked in process), and
matching turns hits into complete matches from the build alone, with the known-good rule applied
in one place (vigil.matching.matcher.match_all). Long scans go through `service()`: warm worker
processes shared by every scan a front runs.

A call takes the build in use once and keeps it to the end, so `refresh()` (by hand, or
`poll(seconds)` in the background) never pauses or changes a call in flight.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from vigil.catalog.store import Catalog
from vigil.config import vigil_home
from vigil.fingerprint.fingerprints import PDQ, Fingerprints, VPDQFrame
from vigil.limits import Limits
from vigil.matching.builds import BuildStore, MatcherHolder
from vigil.matching.matcher import Matcher, MatchSettings, match_all
from vigil.scan.cache import FingerprintCache
from vigil.scan.items import Buffer, ItemSource, Opened
from vigil.scan.results import Match, ScanError, ScannedItem
from vigil.scan.scanner import ScanOptions, ScanService, to_match
from vigil.scan.worker import fingerprint_item, prepare

__all__ = ["Checked", "Engine", "Fingerprinted"]

# Where a home keeps its builds (one directory each, vigil.matching.builds).
BUILDS_DIR = "builds"


@dataclass
class Fingerprinted:
    """The fingerprints of an item and of everything inside it, and what could not be read."""

    items: list[ScannedItem] = field(default_factory=list)
    errors: list[ScanError] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when nothing in the item was left unchecked."""
        return not self.errors


@dataclass
class Checked(Fingerprinted):
    """An item fingerprinted and matched: its matches too, and the build that found them."""

    matches: list[Match] = field(default_factory=list)
    build_id: str = ""


class Engine:
    """Fingerprinting, matching and scanning against one catalog's builds."""

    def __init__(
        self,
        *,
        holder: MatcherHolder | None = None,
        fixed: Matcher | None = None,
        catalog: Catalog | None = None,
        options: ScanOptions | None = None,
    ) -> None:
        if (holder is None) == (fixed is None):
            raise ValueError("an engine needs a holder of builds or one fixed build")
        self._holder = holder
        self._fixed = fixed
        self.catalog = catalog
        self.options = options or ScanOptions()

    # -- opening -----------------------------------------------------------------------------

    @classmethod
    def open(cls, home: str | Path | None = None, options: ScanOptions | None = None) -> Engine:
        """The catalog under a Vigil home (default: $VIGIL_HOME, else the user data dir) and its
        builds: compiled when the catalog changed, shared by every process on the home."""
        root = vigil_home(str(home) if home is not None else None)
        return cls.on_catalog(Catalog.open(root), root, options)

    @classmethod
    def on_catalog(cls, catalog: Catalog, home: Path, options: ScanOptions | None = None) -> Engine:
        """An open catalog, with its builds kept under `home`."""
        # Builds of the earlier layout (one directory rewritten in place) are not used again.
        shutil.rmtree(home / "matcher", ignore_errors=True)
        holder = MatcherHolder(BuildStore(home / BUILDS_DIR), catalog)
        return cls(holder=holder, catalog=catalog, options=options)

    @classmethod
    def open_builds(cls, directory: str | Path, options: ScanOptions | None = None) -> Engine:
        """Builds published into a folder by someone else (no catalog here): the current one
        is used, and `refresh()` takes a newer one when its pointer moves."""
        return cls(holder=MatcherHolder(BuildStore(Path(directory))), options=options)

    @classmethod
    def from_matcher(cls, matcher: Matcher, options: ScanOptions | None = None) -> Engine:
        """One build, fixed (e.g. compiled from hash-list files read on the fly)."""
        return cls(fixed=matcher, options=options)

    # -- the build in use --------------------------------------------------------------------

    def matcher(self) -> Matcher:
        """The build in use now (take it once per call: a later refresh may swap it)."""
        if self._fixed is not None:
            return self._fixed
        assert self._holder is not None
        return self._holder.matcher()

    def refresh(self) -> bool:
        """Take a newer build if there is one (compiling it when the catalog changed); True when
        the build in use changed. Calls in flight keep theirs."""
        return self._holder.refresh() if self._holder is not None else False

    def poll(self, every: float) -> None:
        """Refresh in a background thread every `every` seconds until `close()`."""
        if self._holder is not None:
            self._holder.poll(every)

    def prepare(self) -> None:
        """Load everything a first call would (decoders, compiled kernels, the build and its
        search kernels), so no call pays a cold start. Call once at a front's start-up."""
        prepare(videos=True)
        # One match of each shape against the build itself: its search kernels are compiled (or
        # loaded from numba's cache) for the build's own arrays, and its pages first touched.
        matcher = self.matcher()
        plain = Fingerprints(0, "0" * 32, "0" * 40, "0" * 64, "application/octet-stream")
        variants = tuple(f"{i:064x}" for i in range(8))
        image = dataclasses.replace(plain, pdq=PDQ(variants[0], 100, variants))
        video = dataclasses.replace(
            plain, vpdq=[VPDQFrame(i, float(i), 100, variants[i % 8]) for i in range(4)]
        )
        matcher.match_many([plain] * 300 + [image, video], self.options.match)
        matcher.match_many([image], self.options.match)

    # -- one item ----------------------------------------------------------------------------

    def fingerprint(
        self, data: bytes | BinaryIO, name: str, *, limits: Limits | None = None
    ) -> Fingerprinted:
        """Fingerprints of a buffer, or of a stream read once from where it stands; `name` is
        what errors and matches call it. Runs in the calling thread, within item_seconds."""
        source: ItemSource
        if isinstance(data, bytes | bytearray | memoryview):
            source = Buffer(bytes(data))  # a bytes object is passed as it is, not copied
        else:
            stream = data
            source = Opened(lambda: _Unclosed(stream))  # type: ignore[arg-type, return-value, assignment]
        result = fingerprint_item(
            name,
            source,
            limits or self.options.limits,
            self.options.vpdq_seconds,
            self.options.fast_pdq,
        )
        return Fingerprinted(list(result.items), list(result.errors))

    def match(
        self,
        items: Sequence[ScannedItem],
        *,
        settings: MatchSettings | None = None,
        matcher: Matcher | None = None,
    ) -> list[Match]:
        """Every match of these items in the build in use (or the one given), known-good rule
        applied, each complete (set, entry id, category, metadata, kind, distance, transform,
        segment)."""
        if not items:
            return []
        use = matcher or self.matcher()
        _, reported = match_all(
            [use], [it.fingerprints for it in items], settings or self.options.match
        )
        return [to_match(use, items[i], hit) for i, hits in enumerate(reported) for _, hit in hits]

    def check(self, data: bytes | BinaryIO, name: str, *, limits: Limits | None = None) -> Checked:
        """`fingerprint`, then `match`, against one build taken at the start."""
        matcher = self.matcher()
        found = self.fingerprint(data, name, limits=limits)
        return Checked(
            found.items,
            found.errors,
            self.match(found.items, matcher=matcher),
            matcher.build_id,
        )

    # -- many items --------------------------------------------------------------------------

    def service(
        self, options: ScanOptions | None = None, cache: FingerprintCache | None = None
    ) -> ScanService:
        """A scanning service with warm workers, for as long as the caller keeps it (close it).
        Scan with `service.scan(items, [engine.matcher()], sink)`."""
        return ScanService(options or self.options, cache)

    def with_options(self, **changes: object) -> Engine:
        """The same engine with other scan options (limits, thresholds, vPDQ sampling)."""
        other = Engine.__new__(Engine)
        other.__dict__.update(self.__dict__)
        other.options = dataclasses.replace(self.options, **changes)  # type: ignore[arg-type]
        return other

    def close(self) -> None:
        """Stop polling, release the build and the catalog's connections."""
        if self._holder is not None:
            self._holder.close()
        if self.catalog is not None:
            self.catalog.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Unclosed:
    """A caller's stream handed to the reader, which closes what it reads: not this one."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def read(self, n: int = -1) -> bytes:
        return self._stream.read(n)

    def __enter__(self) -> _Unclosed:
        return self

    def __exit__(self, *exc: object) -> None:
        pass
