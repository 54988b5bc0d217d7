"""Scanning: items from any producer, fingerprinted on every core, matched, handed to a sink.

`ScanService` is the long-lived part a front keeps: warm worker processes (started at the first
file that must be read, kept until `close()`), the fingerprint cache and the options. Each
`scan(items, matchers, sink)` takes the builds to match with as arguments, so a front that swaps
in a newer build between two scans (vigil.matching.builds.MatcherHolder) never changes a scan in
flight: a scan reports the sets of one catalog state. `Scanner` is the one-shot form `vigil scan`
uses: one service for one walk of local paths.
"""

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

from vigil.fingerprint.video import VPDQ_SECONDS_PER_FRAME
from vigil.limits import Limits
from vigil.matching.matcher import Hit, Matcher, MatchSettings, match_all
from vigil.scan.cache import FingerprintCache, Verdict
from vigil.scan.items import ItemSource, ScanItem
from vigil.scan.results import Match, MatchedEntry, ScanError, ScannedItem, ScanSummary, Skipped
from vigil.scan.walk import walk
from vigil.scan.worker import FileResult, fingerprint_item, prepare


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


# Items met before the cache is asked about them at once (and cached ones matched at once).
CACHE_BATCH = 512

# While every core is busy, items are handed to a worker a few at a time: the pool's round trip
# costs the main process about half a millisecond of CPU per task, which is what kept two cores
# under 1.8x one core on photos, and was a third of a first scan's time on small files (8 files a
# parcel: 11.7-12.9 s for 100,000 small files; 32: 9.6 s). A parcel that times out or kills its
# worker is split, and each of its items runs alone, so a limit or a crash is still reported for
# the item that caused it.
PARCEL_FILES = 32
PARCEL_BYTES = 8 * 1024 * 1024


def _init_worker() -> None:
    # One scan process per core: BLAS threads inside each would only fight over the same cores
    # (measured: 3-4x slower with OpenBLAS's default threads).
    threadpool_limits(1)


def _failure(path: str, exc: BaseException, limits: Limits) -> FileResult:
    """An item whose worker gave no result, with the reason as one error line."""
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
    tasks: list[tuple[str, ItemSource | None]], limits: Limits, vpdq_seconds: float, fast_pdq: bool
) -> list[FileResult]:
    """The worker's task: a few items, one after the other."""
    return [
        fingerprint_item(path, source, limits, vpdq_seconds, fast_pdq) for path, source in tasks
    ]


def default_workers() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def match_context(matchers: Sequence[Matcher], settings: MatchSettings) -> int:
    """A number that changes whenever matching the same fingerprints could give other answers:
    another build, other sets reported, other thresholds."""
    key = json.dumps([[m.context_key() for m in matchers], dataclasses.astuple(settings)])
    # 63 bits (an SQLite integer), never 0.
    return (int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") >> 1) | 1


def to_match(matcher: Matcher, item: ScannedItem, hit: Hit) -> Match:
    """A hit of one build as the public match object (everything from the build itself)."""
    rec = matcher.entry(hit.entry_id)
    return Match(
        path=item.path,
        member=item.member,
        hashset=matcher.set_name(hit.set_id),
        entry=MatchedEntry(rec.ext_id, rec.category, rec.meta),
        kind=hit.kind,
        distance=hit.distance,
        transform=hit.transform,
        fingerprints=item.fingerprints,
        segment=hit.segment,
    )


class ScanService:
    """Warm workers, a cache and options, for as many scans as a front runs."""

    def __init__(
        self, options: ScanOptions | None = None, cache: FingerprintCache | None = None
    ) -> None:
        self.options = options or ScanOptions()
        self.cache = cache
        self.workers = self.options.workers or default_workers()
        self._pool: ProcessPool | None = None

    def pool(self) -> ProcessPool:
        """The workers, started when the first item must be read: a scan answered from the
        cache needs none (nor the compiled kernels they load)."""
        if self._pool is None:
            prepare()  # before the workers fork: they inherit the loaded kernels and libraries
            self._pool = ProcessPool(max_workers=self.workers, initializer=_init_worker)
        return self._pool

    def scan(
        self,
        items: Iterable[ScanItem | ScanError | tuple[str, os.stat_result]],
        matchers: Sequence[Matcher],
        sink: ScanSink,
        *,
        roots: Sequence[str] = (),
    ) -> ScanSummary:
        """Fingerprint and match every item (errors from the producer are reported as they
        come); return the totals. `roots` only labels the summary. Local files may also come as
        walk()'s own (path, stat) pairs, the cheapest form for a walk of millions."""
        return _ScanRun(self, list(matchers), sink, roots).run(items)

    def close(self) -> None:
        """Stop the workers."""
        if self._pool is not None:
            self._pool.close()
            self._pool.join()
            self._pool = None

    def __enter__(self) -> ScanService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _ScanRun:
    """One scan: items flow through the cache to the workers, results back to matching."""

    def __init__(
        self, service: ScanService, matchers: list[Matcher], sink: ScanSink, roots: Sequence[str]
    ) -> None:
        self.service = service
        self.options = service.options
        self.cache = service.cache
        self.matchers = matchers
        self.sink = sink
        self.summary = ScanSummary(
            started_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            roots=list(roots),
            hashsets=sorted({n for m in matchers for n in m.set_names.values()}),
            host=socket.gethostname(),
        )
        self.context = match_context(matchers, self.options.match)
        self.t0 = time.monotonic()
        self.last_progress = 0.0
        self.pending: dict[cf.Future[list[FileResult]], list[ScanItem]] = {}
        self.parcel: list[ScanItem] = []
        self.parcel_bytes = 0
        # Local files met, (path, stat), waiting for the cache to be asked about them together.
        self.batch: list[tuple[str, os.stat_result]] = []
        # Items read by the workers, counted and their errors reported, waiting to be matched
        # together: one batched match per round of finished work instead of one per item (a
        # match of one item costs ~60 µs of the main process's time, as much as a worker spends
        # reading a small file).
        self.fresh: list[tuple[ScanItem, list[ScannedItem], bool]] = []

    def run(
        self, items: Iterable[ScanItem | ScanError | tuple[str, os.stat_result]]
    ) -> ScanSummary:
        cached = self.cache is not None
        batch = self.batch
        for found in items:
            cls = found.__class__
            if cls is tuple:  # a local file as walk() gives it, (path, stat): the common case
                if cached:
                    batch.append(found)  # type: ignore[arg-type]
                    if len(batch) >= CACHE_BATCH:
                        self._flush_batch()
                else:
                    path, st = found  # type: ignore[misc]
                    self._schedule(ScanItem(path, st.st_size, st))
            elif cls is ScanItem:
                item: ScanItem = found  # type: ignore[assignment]
                if cached and item.identity is not None and item.source is None:
                    batch.append((item.path, item.identity))
                    if len(batch) >= CACHE_BATCH:
                        self._flush_batch()
                else:
                    self._schedule(item)
            elif isinstance(found, Skipped):  # no content to check (a fifo, a broken link)
                self.summary.skipped += 1
                self.sink.skipped(found)
            elif isinstance(found, ScanError):
                self.summary.errors += 1
                self.sink.error(found)
            else:
                raise TypeError(f"not an item to scan: {found!r}")
        if self.batch:
            self._flush_batch()
        self._flush_parcel()
        while self.pending:
            self._wait_some()
        if self.cache is not None:
            self.cache.flush()
        self.summary.seconds = time.monotonic() - self.t0
        self._progress(force=True)
        return self.summary

    # -- progress ----------------------------------------------------------------------------

    def _progress(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last_progress > 0.2:
            self.last_progress = now
            self.summary.seconds = now - self.t0
            self.sink.progress(self.summary)

    # -- the cache ---------------------------------------------------------------------------

    def _flush_batch(self) -> None:
        """Items met since the last batch: cached ones matched at once, others read."""
        assert self.cache is not None
        batch = self.batch[:]
        self.batch.clear()  # the same list object: run() holds it
        found = self.cache.get_many(batch, self.context)
        to_match: list[tuple[os.stat_result, list[ScannedItem]]] = []
        s = self.summary
        for (path, st), cached in zip(batch, found, strict=True):
            if cached is None:
                self._schedule(ScanItem(path, st.st_size, st))
                continue
            s.files += 1
            s.cached += 1
            s.bytes += st.st_size
            verdict = cached.verdict
            if verdict is None:
                to_match.append((st, cached.items))
                continue
            # Matched under this context before: its verdict stands.
            s.items += verdict.items
            s.images += verdict.images
            s.videos += verdict.videos
            s.known_good += verdict.known_good
            s.undecoded += verdict.undecoded
            for i, m, hit in verdict.reports:
                self._report(m, cached.items[i], hit)
        verdicts = self._match_files([its for _, its in to_match])
        for (st, _), verdict in zip(to_match, verdicts, strict=True):
            self.cache.set_verdict(st, verdict, self.context)
        self._progress()

    # -- the workers -------------------------------------------------------------------------

    def _schedule(self, item: ScanItem) -> None:
        """An item to read: now if a core is idle, else in a parcel with the next few."""
        if len(self.pending) < self.service.workers and not self.parcel:
            self._submit([item])
            return
        self.parcel.append(item)
        self.parcel_bytes += item.size
        if len(self.parcel) >= PARCEL_FILES or self.parcel_bytes >= PARCEL_BYTES:
            self._flush_parcel()

    def _flush_parcel(self) -> None:
        if self.parcel:
            self._submit(self.parcel)
            self.parcel = []
            self.parcel_bytes = 0
        while len(self.pending) >= self.service.workers * 4:
            self._wait_some()

    def _submit(self, items: list[ScanItem]) -> None:
        fut = self.service.pool().schedule(
            _fingerprint_parcel,
            args=(
                [(it.path, it.source) for it in items],
                self.options.limits,
                self.options.vpdq_seconds,
                self.options.fast_pdq,
            ),
            # A parcel gets one item's time: its items are small, so a parcel that runs over
            # holds one that hangs. It is then split and each item runs alone with the whole
            # limit (with n items' time, a hang in a parcel of 32 went unnoticed for
            # 32 x item_seconds, 2.7 hours at the default).
            timeout=self.options.limits.item_seconds + self.options.kill_grace,
        )
        self.pending[fut] = items

    def _wait_some(self) -> None:
        done, _ = cf.wait(list(self.pending), return_when=cf.FIRST_COMPLETED)
        retry: list[ScanItem] = []
        for fut in done:
            items = self.pending.pop(fut)
            try:
                results = fut.result()
            except Exception as e:  # noqa: BLE001 - one item must not stop the scan
                if len(items) > 1:
                    retry.extend(items)  # which one hung or killed the worker? Each alone says.
                    continue
                results = [_failure(items[0].path, e, self.options.limits)]
            for item, res in zip(items, results, strict=True):
                self._finish(item, list(res.items), res.errors)
        self._match_fresh()
        for one in retry:
            self._submit([one])

    def _finish(self, item: ScanItem, items: list[ScannedItem], errors: list[ScanError]) -> None:
        """An item read by a worker: count it, report its errors; matched by `_match_fresh`."""
        self.summary.files += 1
        self.summary.bytes += item.size
        for err in errors:
            self.summary.errors += 1
            self.sink.error(err)
        self.fresh.append((item, items, not errors))

    def _match_fresh(self) -> None:
        """Match the items finished since the last call, report their hits, cache them."""
        if not self.fresh:
            return
        fresh, self.fresh = self.fresh, []
        verdicts = self._match_files([items for _, items, _ in fresh])
        if self.cache is not None:
            for (item, items, clean), verdict in zip(fresh, verdicts, strict=True):
                if clean and item.identity is not None:
                    self.cache.put(item.identity, items, verdict, self.context)
        self._progress()

    # -- matching ----------------------------------------------------------------------------

    def _match_files(self, files: list[list[ScannedItem]]) -> list[Verdict]:
        """Match the items of several files at once, report their hits, count them; the
        verdict of each (what a later scan replays)."""
        items = [item for one in files for item in one]
        if not items:
            good: list[bool] = []
            reported: list[list[tuple[int, Hit]]] = []
        else:
            good, reported = match_all(
                self.matchers, [it.fingerprints for it in items], self.options.match
            )
        verdicts: list[Verdict] = []
        s = self.summary
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
                for m, hit in reported[i]:
                    reports.append((i - at, m, hit))
                    self._report(m, item, hit)
            verdicts.append(
                Verdict(len(one), images, videos, known_good, undecoded, tuple(reports))
            )
            s.items += len(one)
            s.images += images
            s.videos += videos
            s.known_good += known_good
            s.undecoded += undecoded
            at += len(one)
        return verdicts

    def _report(self, m: int, item: ScannedItem, hit: Hit) -> None:
        self.summary.matches += 1
        self.sink.match(to_match(self.matchers[m], item, hit))


class Scanner:
    """One scan of local paths with its own service (what `vigil scan` runs)."""

    def __init__(
        self,
        matchers: Sequence[Matcher],
        options: ScanOptions | None = None,
        cache: FingerprintCache | None = None,
    ) -> None:
        self.matchers = list(matchers)
        self.options = options or ScanOptions()
        self.cache = cache

    def run(self, roots: Sequence[str], sink: ScanSink) -> ScanSummary:
        """Scan every file under `roots`; return the totals."""
        items = walk(roots, follow_symlinks=self.options.follow_symlinks)
        with ScanService(self.options, self.cache) as service:
            return service.scan(
                items, self.matchers, sink, roots=[os.path.abspath(r) for r in roots]
            )
