"""A scan: walk the roots, fingerprint on every core, match, and hand results to a sink."""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import hashlib
import json
import os
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from pebble import ProcessExpired, ProcessPool
from threadpoolctl import threadpool_limits

from vigil.catalog.store import Catalog, EntryRecord
from vigil.fingerprint.video import VPDQ_SECONDS_PER_FRAME
from vigil.limits import Limits
from vigil.matching.matcher import Hit, Matcher, MatchSettings
from vigil.scan.cache import FingerprintCache, Verdict
from vigil.scan.results import Match, MatchedEntry, ScanError, ScannedItem, ScanSummary, Skipped
from vigil.scan.walk import walk
from vigil.scan.worker import FileResult, fingerprint_file, prepare


class ScanSink(Protocol):
    """Where a scan's results go as they are found."""

    def match(self, match: Match) -> None: ...

    def error(self, error: ScanError) -> None: ...

    def skipped(self, item: Skipped) -> None: ...

    def progress(self, summary: ScanSummary) -> None: ...


class CollectingSink:
    """Keeps every match, error and skipped entry in memory (for reports written at the end)."""

    def __init__(self) -> None:
        self.matches: list[Match] = []
        self.errors: list[ScanError] = []
        self.skipped_items: list[Skipped] = []

    def match(self, match: Match) -> None:
        self.matches.append(match)

    def error(self, error: ScanError) -> None:
        self.errors.append(error)

    def skipped(self, item: Skipped) -> None:
        self.skipped_items.append(item)

    def progress(self, summary: ScanSummary) -> None:
        pass


@dataclass
class ScanOptions:
    """How to scan: limits, cores, thresholds, symlinks, cache."""

    limits: Limits = field(default_factory=Limits)
    workers: int = 0  # 0: every core this process may use
    match: MatchSettings = field(default_factory=MatchSettings)
    follow_symlinks: bool = True
    # Decode large JPEGs at half size for PDQ (opt-in speed mode, see pdq_from_bytes).
    fast_pdq: bool = False
    # Seconds of video between two frames hashed for vPDQ (0: every frame).
    vpdq_seconds: float = VPDQ_SECONDS_PER_FRAME
    # Seconds a worker gets beyond `item_seconds` to notice its own deadline before it is killed.
    kill_grace: float = 5.0


@dataclass
class Source:
    """A compiled matcher and the catalog its entry ids refer to."""

    catalog: Catalog
    matcher: Matcher
    _entries: dict[int, EntryRecord] = field(default_factory=dict)

    def entry(self, entry_id: int) -> EntryRecord:
        if entry_id not in self._entries:
            self._entries.update(self.catalog.entries([entry_id]))
        return self._entries[entry_id]


# Files walked before the cache is asked about them at once (and cached ones matched at once).
CACHE_BATCH = 512


def _init_worker() -> None:
    # One scan process per core: BLAS threads inside each would only fight over the same cores
    # (measured: 3-4x slower with OpenBLAS's default threads).
    threadpool_limits(1)


# While every core is busy, files are handed to a worker a few at a time: the pool's round trip
# costs the main process about half a millisecond of CPU per task, which is what kept two cores
# under 1.8x one core on photos, and was a third of a first scan's time on small files (8 files a
# parcel: 11.7-12.9 s for 100,000 small files; 32: 9.6 s). A parcel that times out or kills its
# worker is split, and each of its files runs alone, so a limit or a crash is still reported for
# the file that caused it.
PARCEL_FILES = 32
PARCEL_BYTES = 8 * 1024 * 1024


def _failure(path: str, exc: BaseException, limits: Limits) -> FileResult:
    """A file whose worker gave no result, with the reason as one error line."""
    if isinstance(exc, cf.TimeoutError):
        reason = "item_seconds"
        message = f"took longer than the item_seconds limit ({limits.item_seconds:g} s); the worker was stopped"
    elif isinstance(exc, ProcessExpired):
        reason = "crashed"
        message = f"the worker reading this file died ({exc}); the file was not fully scanned"
    else:
        reason = "internal"
        message = f"{type(exc).__name__}: {exc}"
    return FileResult(path, errors=[ScanError(path, None, reason, message)])


def _fingerprint_parcel(
    paths: list[str], limits: Limits, vpdq_seconds: float, fast_pdq: bool
) -> list[FileResult]:
    """The worker's task: a few files, one after the other."""
    return [fingerprint_file(p, limits, vpdq_seconds, fast_pdq) for p in paths]


def default_workers() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class Scanner:
    """Runs scans against one or more compiled catalogs."""

    def __init__(
        self,
        sources: Sequence[Source],
        options: ScanOptions | None = None,
        cache: FingerprintCache | None = None,
    ) -> None:
        self.sources = list(sources)
        self.options = options or ScanOptions()
        self.cache = cache

    def run(self, roots: Sequence[str], sink: ScanSink) -> ScanSummary:
        """Scan every file under `roots`; return the totals."""
        summary = ScanSummary(
            started_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            roots=[os.path.abspath(r) for r in roots],
            hashsets=sorted({n for s in self.sources for n in s.matcher.set_names.values()}),
            host=socket.gethostname(),
        )
        t0 = time.monotonic()
        limits = self.options.limits
        workers = self.options.workers or default_workers()
        context = self.match_context()  # what cached verdicts must have been found under
        pending: dict[cf.Future[list[FileResult]], list[tuple[str, os.stat_result]]] = {}
        parcel: list[tuple[str, os.stat_result]] = []
        parcel_bytes = 0
        last_progress = 0.0

        def progress(force: bool = False) -> None:
            nonlocal last_progress
            now = time.monotonic()
            if force or now - last_progress > 0.2:
                last_progress = now
                summary.seconds = now - t0
                sink.progress(summary)

        # Files read by the workers, counted and their errors reported, waiting to be matched
        # together: one batched match per round of finished work instead of one per file (a
        # match of one item costs ~60 µs of the main process's time, as much as a worker spends
        # reading a small file).
        fresh: list[tuple[os.stat_result | None, list[ScannedItem], bool]] = []

        def finish(
            path: str,
            st: os.stat_result | None,
            items: list[ScannedItem],
            errors: list[ScanError],
        ) -> None:
            """A file read by a worker: count it, report its errors; matched by `match_fresh`."""
            summary.files += 1
            summary.bytes += st.st_size if st is not None else 0
            for err in errors:
                summary.errors += 1
                sink.error(err)
            fresh.append((st, items, not errors))

        def match_fresh() -> None:
            """Match the files finished since the last call, report their hits, cache them."""
            if not fresh:
                return
            verdicts = self._match_files([items for _, items, _ in fresh], summary, sink)
            for (st, items, clean), verdict in zip(fresh, verdicts, strict=True):
                if clean and st is not None and self.cache is not None:
                    self.cache.put(st, items, verdict, context)
            fresh.clear()
            progress()

        pool: ProcessPool | None = None

        def get_pool() -> ProcessPool:
            """The workers, started when the first file must be read: a scan answered from the
            cache needs none (nor the compiled kernels they load)."""
            nonlocal pool
            if pool is None:
                prepare()  # before the workers fork: they inherit the loaded kernels
                pool = ProcessPool(max_workers=workers, initializer=_init_worker)
            return pool

        def submit(files: list[tuple[str, os.stat_result]]) -> None:
            fut = get_pool().schedule(
                _fingerprint_parcel,
                args=(
                    [path for path, _ in files],
                    limits,
                    self.options.vpdq_seconds,
                    self.options.fast_pdq,
                ),
                # A parcel gets one file's time: its files are small, so a parcel that runs over
                # holds a file that hangs. It is then split and each file runs alone with the
                # whole limit (with n files' time, a hang in a parcel of 32 went unnoticed for
                # 32 x item_seconds, 2.7 hours at the default).
                timeout=limits.item_seconds + self.options.kill_grace,
            )
            pending[fut] = files

        def collect(done: Iterable[cf.Future[list[FileResult]]]) -> None:
            retry: list[tuple[str, os.stat_result]] = []
            for fut in done:
                files = pending.pop(fut)
                try:
                    results = fut.result()
                except Exception as e:  # noqa: BLE001 - one file must not stop the scan
                    if len(files) > 1:
                        # Which file hung or killed the worker? Each one alone says.
                        retry.extend(files)
                        continue
                    results = [_failure(files[0][0], e, limits)]
                for (path, st), res in zip(files, results, strict=True):
                    finish(path, st, list(res.items), res.errors)
            match_fresh()
            for one in retry:
                submit([one])

        def wait_some() -> None:
            done, _ = cf.wait(list(pending), return_when=cf.FIRST_COMPLETED)
            collect(done)

        def flush_parcel() -> None:
            nonlocal parcel_bytes
            if parcel:
                submit(parcel.copy())
                parcel.clear()
                parcel_bytes = 0
            while len(pending) >= workers * 4:
                wait_some()

        def schedule(path: str, st: os.stat_result) -> None:
            """A file to read: now if a core is idle, else in a parcel with the next few."""
            nonlocal parcel_bytes
            if len(pending) < workers and not parcel:
                submit([(path, st)])
                return
            parcel.append((path, st))
            parcel_bytes += st.st_size
            if len(parcel) >= PARCEL_FILES or parcel_bytes >= PARCEL_BYTES:
                flush_parcel()

        def flush_batch() -> None:
            """Files walked since the last batch: cached ones matched at once, others read."""
            assert self.cache is not None
            found = self.cache.get_many(batch, context)
            to_match: list[tuple[os.stat_result, list[ScannedItem]]] = []
            n_files = n_bytes = n_items = n_images = n_videos = n_good = n_undecoded = 0
            for (path, st), cached in zip(batch, found, strict=True):
                if cached is None:
                    schedule(path, st)
                    continue
                n_files += 1
                n_bytes += st.st_size
                verdict = cached.verdict
                if verdict is None:
                    to_match.append((st, cached.items))
                    continue
                # Matched under this context before: its verdict stands.
                n_items += verdict.items
                n_images += verdict.images
                n_videos += verdict.videos
                n_good += verdict.known_good
                n_undecoded += verdict.undecoded
                for i, src, hit in verdict.reports:
                    self._report(self.sources[src], cached.items[i], hit, summary, sink)
            summary.files += n_files
            summary.cached += n_files
            summary.bytes += n_bytes
            summary.items += n_items
            summary.images += n_images
            summary.videos += n_videos
            summary.known_good += n_good
            summary.undecoded += n_undecoded
            batch.clear()
            verdicts = self._match_files([its for _, its in to_match], summary, sink)
            for (st, _), verdict in zip(to_match, verdicts, strict=True):
                self.cache.set_verdict(st, verdict, context)
            progress()

        batch: list[tuple[str, os.stat_result]] = []
        try:
            for found in walk(roots, follow_symlinks=self.options.follow_symlinks):
                if isinstance(found, Skipped):  # no content to check: not an error
                    summary.skipped += 1
                    sink.skipped(found)
                    continue
                if isinstance(found, ScanError):
                    summary.errors += 1
                    sink.error(found)
                    continue
                if self.cache is not None:
                    batch.append(found)
                    if len(batch) >= CACHE_BATCH:
                        flush_batch()
                    continue
                schedule(*found)
            if batch:
                flush_batch()
            flush_parcel()
            while pending:
                wait_some()
        finally:
            if pool is not None:
                pool.close()
                pool.join()
        if self.cache is not None:
            self.cache.flush()
        summary.seconds = time.monotonic() - t0
        progress(force=True)
        return summary

    def match_context(self) -> int:
        """A number that changes whenever matching the same fingerprints could give other
        answers: another compile of a catalog, other sets reported, other thresholds."""
        key = json.dumps(
            [
                [s.matcher.context_key() for s in self.sources],
                dataclasses.astuple(self.options.match),
            ]
        )
        # 63 bits (an SQLite integer), never 0.
        return (int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") >> 1) | 1

    def _match_files(
        self, files: list[list[ScannedItem]], summary: ScanSummary, sink: ScanSink
    ) -> list[Verdict]:
        """Match the items of several files at once, report their hits, count them; the
        verdict of each (what a later scan replays)."""
        items = [item for one in files for item in one]
        good, reported = self._match_items(items, summary, sink)
        verdicts: list[Verdict] = []
        at = 0
        for one in files:
            images = videos = known_good = undecoded = 0
            reports: list[tuple[int, int, Hit]] = []
            for i, item in enumerate(one, start=at):
                fp = item.fingerprints
                images += fp.pdq is not None
                videos += fp.vpdq is not None
                known_good += good[i]
                undecoded += fp.undecoded
                if reported[i]:
                    reports.extend((i - at, src, hit) for src, hit in reported[i])
            verdicts.append(
                Verdict(len(one), images, videos, known_good, undecoded, tuple(reports))
            )
            summary.items += len(one)
            summary.images += images
            summary.videos += videos
            summary.known_good += known_good
            summary.undecoded += undecoded
            at += len(one)
        return verdicts

    def _match_items(
        self, items: list[ScannedItem], summary: ScanSummary, sink: ScanSink
    ) -> tuple[list[bool], list[list[tuple[int, Hit]]]]:
        """Match items against every source with batched lookups; report each hit. Returns,
        per item, whether it is known-good and the (source index, hit) reported of it (the
        caller counts them)."""
        if not items:
            return [], []
        fps = [item.fingerprints for item in items]
        settings = self.options.match
        known_good = [False] * len(items)
        per_source: list[list[list[Hit]]] = []
        for source in self.sources:
            good, hits = source.matcher.match_many(fps, settings)
            known_good = [a or b for a, b in zip(known_good, good, strict=True)]
            per_source.append(hits)
        reported: list[list[tuple[int, Hit]]] = [[] for _ in items]
        for i, item in enumerate(items):
            for src, (source, hits) in enumerate(zip(self.sources, per_source, strict=True)):
                for hit in hits[i]:
                    if known_good[i] and hit.kind in ("pdq", "vpdq"):
                        # Known-good bytes are never alerted on by similarity; an exact listing
                        # by an alerting set still is (the police list outranks a software
                        # catalogue).
                        continue
                    reported[i].append((src, hit))
                    self._report(source, item, hit, summary, sink)
        return known_good, reported

    def _report(
        self, source: Source, item: ScannedItem, hit: Hit, summary: ScanSummary, sink: ScanSink
    ) -> None:
        fp = item.fingerprints
        rec = source.entry(hit.entry_id)
        summary.matches += 1
        sink.match(
            Match(
                path=item.path,
                member=item.member,
                hashset=source.matcher.set_names.get(hit.set_id, str(hit.set_id)),
                entry=MatchedEntry(rec.ext_id, rec.category, rec.meta),
                kind=hit.kind,
                distance=hit.distance,
                transform=hit.transform,
                fingerprints=fp,
                segment=hit.segment,
            )
        )
