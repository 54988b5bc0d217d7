"""What runs on a Dask worker: the matcher loaded once, and the task that scans one shard.

`MatcherPlugin` is registered by the client with `Client.register_plugin`: Dask runs its `setup`
on every worker, present and future (a replacement for a lost worker too). It carries the
compiled builds' files; setup writes each into the worker's local directory in the layout of
vigil.matching.builds (one immutable directory and a `current` pointer) and opens it through the
engine facade (`Engine.open_builds`), memory-mapped. Tasks find the plugin on their worker and
scan with the local scan's service (vigil.scan.scanner.ScanService): parcels of files handed to
a warm process, item limits enforced by stopping that process, a crashing decoder reported for
its file, matching batched.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import threading
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

from distributed import WorkerPlugin, get_worker

from vigil.cluster.listing import Listed
from vigil.cluster.results import COUNTS, ShardResult
from vigil.cluster.shards import Shard
from vigil.engine import Engine
from vigil.matching.builds import LEASE, POINTER
from vigil.matching.matcher import Matcher
from vigil.scan.cache import Verdict, encode_items
from vigil.scan.items import ItemSource, LocalFile, Opened, ScanItem
from vigil.scan.results import ScannedItem
from vigil.scan.scanner import CollectingSink, ScanOptions, ScanService

# A plugin of the same name replaces the one before it on every worker: each scan registers its
# own (two scans sharing a cluster keep their own builds) and removes it at the end.
PLUGIN_PREFIX = "vigil-matcher-"


@dataclass(frozen=True)
class BuildFiles:
    """One build as the plugin carries it: its files, and the sets it reports (None: all)."""

    build_id: str
    files: dict[str, bytes]
    only: frozenset[int] | None = None

    @classmethod
    def of(cls, matcher: Matcher, scratch: Path) -> BuildFiles:
        """A matcher's build read into memory (saved first to `scratch`, an empty folder)."""
        matcher.save(scratch)
        files = {
            p.relative_to(scratch).as_posix(): p.read_bytes()
            for p in sorted(scratch.rglob("*"))
            if p.is_file()
        }
        _, _, only = matcher.context_key().rpartition(":")
        sets = None if only == "all" else frozenset(int(s) for s in only.split(",") if s)
        return cls(matcher.build_id, files, sets)

    def install(self, root: Path) -> Path:
        """Write the build under `root` as a build store (once; an earlier copy is reused);
        the store's folder."""
        store = root / f"{self.build_id}.store"
        if (store / POINTER).is_file():
            return store
        tmp = root / f".tmp-{self.build_id}-{uuid.uuid4().hex[:8]}"
        build = tmp / self.build_id
        build.mkdir(parents=True)
        try:
            for name, data in self.files.items():
                (build / name).parent.mkdir(parents=True, exist_ok=True)
                (build / name).write_bytes(data)
            (build / LEASE).touch()
            (tmp / POINTER).write_text(self.build_id + "\n")
            os.rename(tmp, store)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            if not (store / POINTER).is_file():
                raise
        return store


class MatcherPlugin(WorkerPlugin):
    """The builds and scan options of one cluster scan, set up once per worker."""

    def __init__(self, builds: list[BuildFiles], options: ScanOptions, scan_id: str) -> None:
        self.builds = builds
        self.options = replace(options, workers=1)
        self.name = PLUGIN_PREFIX + scan_id
        self.engines: list[Engine] = []
        self.matchers: list[Matcher] = []
        self._services: dict[int, ScanService] = {}

    def setup(self, worker: Any) -> None:
        """Install and map the builds, warm the decoders and kernels."""
        self._lock = threading.Lock()  # made here: the plugin is pickled to the workers
        if multiprocessing.current_process().daemon:
            raise RuntimeError(
                "this Dask worker is a daemonic process, which may not start the processes a "
                "scan reads files in: start the workers with DASK_DISTRIBUTED__WORKER__DAEMON="
                "False in their environment (docs/cluster.md)"
            )
        root = Path(worker.local_directory) / "vigil-builds"
        root.mkdir(parents=True, exist_ok=True)
        for build in self.builds:
            engine = Engine.open_builds(build.install(root), self.options)
            matcher = engine.matcher()
            self.engines.append(engine)
            self.matchers.append(matcher if build.only is None else matcher.view(build.only))
        self.builds = []  # the bytes are on disk and mapped now
        if self.engines:
            self.engines[0].prepare()

    def teardown(self, worker: Any) -> None:
        """Stop the scanning processes, release the builds."""
        with self._lock:
            services, self._services = list(self._services.values()), {}
        for service in services:
            service.close()
        for engine in self.engines:
            engine.close()

    def service(self) -> ScanService:
        """The calling thread's scanning service (a Dask worker runs one task per thread; each
        gets its own warm process)."""
        key = threading.get_ident()
        with self._lock:
            found = self._services.get(key)
            if found is None:
                found = self._services[key] = ScanService(self.options)
            return found


@dataclass
class _Fingerprints:
    """Stands where the scan expects a fingerprint cache: the items of every file read cleanly,
    for the client's cluster cache. It is never asked for a file (every item has a source)."""

    items: list[tuple[str, str, bytes]] = field(default_factory=list)

    def get_many(self, files: object, context: int = 0) -> list[None]:
        raise AssertionError("a shard's items all have sources")

    def put(self, identity: Any, items: list[ScannedItem], verdict: Verdict, context: int) -> None:
        url, ident = identity
        self.items.append((url, ident, encode_items(items)))

    def set_verdict(self, *args: object) -> None:
        pass

    def flush(self) -> None:
        pass


@dataclass(frozen=True)
class FsspecOpener:
    """Opens one object through fsspec (picklable: protocol, options, path)."""

    protocol: str
    storage_options: tuple[tuple[str, Any], ...]
    url: str

    def __call__(self) -> Any:
        import fsspec

        fs = fsspec.filesystem(self.protocol, **dict(self.storage_options))
        return fs.open(self.url, "rb")


def _item(f: Listed, shard: Shard, storage_options: tuple[tuple[str, Any], ...]) -> ScanItem:
    source: ItemSource
    if shard.protocol == "file":
        source = LocalFile(f.url)
    else:
        source = Opened(FsspecOpener(shard.protocol, storage_options, f.url))
    # The identity travels as (url, identity) to _Fingerprints.put; the scan only passes it on.
    return ScanItem(f.url, f.size, cast(os.stat_result, (f.url, f.identity)), source)


def scan_shard(
    plugin_name: str,
    shard: Shard,
    storage_options: tuple[tuple[str, Any], ...] = (),
    keep_items: bool = False,
) -> ShardResult:
    """The task: scan one shard's files on this worker with the scan's plugin; everything it
    found, and the fingerprints of clean files when the client keeps a cache."""
    worker = get_worker()
    plugin = cast(MatcherPlugin, worker.plugins[plugin_name])
    service = plugin.service()
    sink = CollectingSink()
    capture = _Fingerprints()
    service.cache = cast(Any, capture) if keep_items else None
    items = [_item(f, shard, storage_options) for f in shard.files]
    summary = service.scan(items, plugin.matchers, sink)
    return ShardResult(
        shard.name,
        sink.matches,
        sink.errors,
        sink.skipped_items,
        {key: getattr(summary, key) for key in COUNTS},
        capture.items,
        worker=str(worker.address),
    )
