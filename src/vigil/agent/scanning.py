"""Scans the agent runs (files that landed, dirty roots, catch-up, manual and scheduled scans):
the engine's scan service and fingerprint cache, every match written to the spool at once."""

from __future__ import annotations

import logging
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from vigil import __version__
from vigil.endpoint import reports
from vigil.endpoint.enrolment import agent_dir
from vigil.endpoint.spool import Spool
from vigil.engine import Engine
from vigil.scan.cache import FingerprintCache
from vigil.scan.results import Match, ScanError, ScanSummary, Skipped
from vigil.scan.walk import walk

log = logging.getLogger("vigil.agent.scan")

CACHE_FILE = "cache.sqlite"


class SpoolSink:
    """A scan sink that spools the reports of an item together, the moment its matches are all
    found: an exact copy matched by MD5, SHA-1, SHA-256 and PDQ goes to the server in one batch,
    so its incident is never seen (nor announced) with a weaker kind first."""

    def __init__(
        self,
        spool: Spool,
        detection: str,
        catalog_version: Callable[[], str | None],
        spooled: Callable[[], None] = lambda: None,
    ) -> None:
        self.spool = spool
        self.detection = detection
        self.catalog_version = catalog_version
        self.spooled = spooled
        self.matches = 0
        # The matches of the item met last (the scan reports an item's matches together),
        # spooled when the next item's first match or the scan's progress comes.
        self._item: tuple[str, str | None] | None = None
        self._pending: list[tuple[Match, dict[str, object]]] = []
        self._stat: os.stat_result | None = None
        self._seen: datetime | None = None

    def _seen_at(self, path: str, st: os.stat_result | None) -> datetime:
        if st is None:
            return datetime.now(UTC)
        at = self.spool.seen_at(path, st.st_ino, st.st_mtime_ns, time.time())
        return datetime.fromtimestamp(at, UTC)

    def match(self, match: Match) -> None:
        item = (match.path, match.member)
        if item != self._item:
            self.flush()
            self._item = item
            try:
                self._stat = os.stat(match.path)
            except OSError:
                self._stat = None
            self._seen = self._seen_at(match.path, self._stat)
        assert self._seen is not None
        report = reports.build(
            match, self.detection, self.catalog_version(), self._stat, self._seen
        )
        self.matches += 1
        self._pending.append((match, report))

    def flush(self) -> None:
        """Spool what is pending (in one transaction), then say so."""
        pending, self._pending, self._item = self._pending, [], None
        if not pending or not self.spool.add([r for _, r in pending]):
            return
        for match, _ in pending:
            log.warning(
                "match: %s%s (set %s, entry %s, %s, detection %s)",
                match.path,
                f" [{match.member}]" if match.member else "",
                match.hashset,
                match.entry.id,
                match.kind,
                self.detection,
            )
        self.spooled()

    def error(self, error: ScanError) -> None:
        log.info("not checked: %s", error)

    def skipped(self, item: Skipped) -> None:
        pass

    def progress(self, summary: ScanSummary) -> None:
        self.flush()  # called now and then during a scan, and at its end


class Scanning:
    """The engine's scan service with the agent's own fingerprint cache."""

    def __init__(self, engine: Engine, home: Path, workers: int = 0, stretch: float = 1.0) -> None:
        """`stretch`: how many times longer than its CPU time an item may take in wall time
        (a scheduled scan held to its cpu_share runs its workers part of the time): the time
        limits of one item (item_seconds, max_video_decode_seconds) are multiplied by it."""
        import dataclasses

        self.engine = engine
        self.cache = FingerprintCache(
            agent_dir(home) / CACHE_FILE,
            engine_version=f"{__version__}/vpdq{engine.options.vpdq_seconds:g}",
        )
        options = engine.options
        if workers:
            options = dataclasses.replace(options, workers=workers)
        if stretch > 1:
            limits = options.limits
            limits = dataclasses.replace(
                limits,
                item_seconds=limits.item_seconds * stretch,
                max_video_decode_seconds=limits.max_video_decode_seconds * stretch,
            )
            options = dataclasses.replace(options, limits=limits)
        self.service = engine.service(options, self.cache)

    def files(self, paths: Iterable[str], sink: SpoolSink) -> ScanSummary:
        """Scan these files (what is gone or not a regular file by now is passed over)."""
        items: list[tuple[str, os.stat_result]] = []
        for p in dict.fromkeys(paths):
            try:
                st = os.stat(p, follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                items.append((p, st))
        return self.service.scan(items, [self.engine.matcher()], sink)

    def trees(
        self, roots: list[str], sink: SpoolSink, excluded: Callable[[str], bool]
    ) -> ScanSummary:
        """Scan every file under `roots` but the excluded (symlinks not followed: a watched
        home must not lead the agent across the machine)."""

        def items() -> Iterator[tuple[str, os.stat_result] | ScanError]:
            for found in walk(roots, follow_symlinks=False):
                if isinstance(found, tuple):
                    if not excluded(found[0]):
                        yield found
                elif not isinstance(found, Skipped) and not excluded(found.path):
                    yield found

        return self.service.scan(items(), [self.engine.matcher()], sink, roots=roots)

    def close(self) -> None:
        """Stop the workers, write the cache."""
        self.service.close()
        self.cache.close()
