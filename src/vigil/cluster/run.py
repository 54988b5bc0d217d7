"""The client side of a cluster scan: listing, shards in flight, results into the scan's sink."""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vigil.cluster.cache import ObjectCache
from vigil.cluster.checkpoint import Checkpoint
from vigil.cluster.listing import (
    Listed,
    Listing,
    Part,
    cannot_list,
    list_parts,
    local_path,
    plan,
)
from vigil.cluster.results import COUNTS, ShardResult
from vigil.cluster.shards import SHARD_BYTES, SHARD_FILES, Cutter, Shard
from vigil.cluster.worker import BuildFiles, MatcherPlugin, scan_shard
from vigil.errors import VigilError
from vigil.matching.matcher import Matcher, match_all
from vigil.scan.results import ScanError, ScannedItem, ScanSummary, Skipped
from vigil.scan.scanner import ScanOptions, ScanSink, to_match
from vigil.scan.worker import prepare

log = logging.getLogger(__name__)

# A lost worker's shards are run again on another (a shard is idempotent: its result is taken
# once, by name). Dask's default of 3 is kept on purpose for a shard whose worker dies every
# time: that is the shard itself (a file that exhausts a worker's memory), and after 3 workers
# lost to it, its files are reported as errors instead of taking down a fourth. A hang or a
# decoder crash costs one worker at most: a shard read in the worker process is run again in a
# scanning process of its own, where a crash or a hang is that process's and is reported for
# its file, as in a local scan (vigil.cluster.worker).
ALLOWED_FAILURES = 3
# Shards in flight per worker thread: one running, one waiting, so a thread never idles
# between two (and the client holds little: results are read as they finish).
IN_FLIGHT_PER_THREAD = 2
# Listing tasks per worker thread, and parts a task lists at most.
LIST_TASKS_PER_THREAD = 4
LIST_BATCH = 256


@contextmanager
def connect(spec: str) -> Iterator[Any]:
    """A Dask client for `local:N` (a cluster of N worker processes on this machine, one
    thread each, started here and stopped at the end) or a scheduler's address
    (`tcp://HOST:PORT`, `tls://…`)."""
    import dask
    from distributed import Client, LocalCluster

    if spec.startswith("local:"):
        try:
            n = int(spec[len("local:") :])
        except ValueError:
            n = 0
        if n < 1:
            raise VigilError(f"--cluster {spec}: local:N needs a number of workers N >= 1")
        settings = {
            "distributed.scheduler.allowed-failures": ALLOWED_FAILURES,
            # A worker starts a process of its own to read a shard again (MatcherPlugin.service):
            # not as a daemonic process, which may have no children.
            "distributed.worker.daemon": False,
            # Forked from this process once it has loaded the engine, the decoders and the
            # compiled kernels (prepare): each worker starts warm instead of importing and
            # loading them again, as the local scan's processes do.
            "distributed.worker.multiprocessing-method": "fork",
            # Dask's statistical profiler samples each worker's threads every 10 ms: here that
            # is the thread reading files.
            "distributed.worker.profile.enabled": False,
            # Every server (the scheduler, each worker) checks its event loop every 20 ms, reads
            # its process's memory every 100 ms and the system's counters every 500 ms: CPU
            # spent per second, not per file, that took ~1 s of CPU from a 1,200-photo scan on
            # a loaded machine (bench_cluster). Less often: a worker over its memory limit is
            # still stopped within a second.
            "distributed.admin.tick.interval": "1s",
            "distributed.worker.memory.monitor-interval": "1s",
            "distributed.admin.system-monitor.interval": "5s",
        }
        prepare(videos=True)
        with dask.config.set(settings):
            cluster = LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                # Worker logs would only repeat what the scan reports (and the shutdown chatter
                # of heartbeats to a scheduler that already stopped).
                silence_logs=logging.CRITICAL,
            )
            try:
                with Client(cluster) as client:
                    yield client
            finally:
                cluster.close()
        return
    if "://" not in spec:
        raise VigilError(f"--cluster {spec!r}: give local:N or a scheduler address tcp://HOST:PORT")
    try:
        client = Client(spec, timeout=30)
    except OSError as exc:
        raise VigilError(f"--cluster {spec}: cannot reach the scheduler ({exc})") from exc
    with client:
        yield client


class ClusterScan:
    """One scan of paths and URLs on a Dask cluster, with the local scan's sink and totals."""

    def __init__(
        self,
        client: Any,
        matchers: Sequence[Matcher],
        options: ScanOptions | None = None,
        *,
        checkpoint: str | Path | None = None,
        cache: ObjectCache | None = None,
        shard_files: int = SHARD_FILES,
        shard_bytes: int = SHARD_BYTES,
    ) -> None:
        self.client = client
        self.matchers = list(matchers)
        self.options = options or ScanOptions()
        self.checkpoint_dir = checkpoint
        self.cache = cache
        self.shard_files = shard_files
        self.shard_bytes = shard_bytes
        # Names of the shards sent to workers by this run (tests read it: none twice).
        self.scanned: list[str] = []

    def run(self, roots: Sequence[str], sink: ScanSink) -> ScanSummary:
        """Scan every file under `roots`; return the totals."""
        return _Run(self, list(roots), sink).run()


class _Run:
    def __init__(self, scan: ClusterScan, roots: list[str], sink: ScanSink) -> None:
        self.scan = scan
        self.client = scan.client
        self.sink = sink
        self.roots = roots
        self.matchers = scan.matchers
        self.options = scan.options
        shown = [r if "://" in r and not r.startswith("file://") else local_path(r) for r in roots]
        self.summary = ScanSummary(
            started_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            roots=shown,
            hashsets=sorted({n for m in self.matchers for n in m.set_names.values()}),
            host=socket.gethostname(),
        )
        self.checkpoint = (
            None
            if scan.checkpoint_dir is None
            else Checkpoint(scan.checkpoint_dir, self._description(shown))
        )
        self.done = self.checkpoint.done() if self.checkpoint is not None else set()
        self.t0 = time.monotonic()
        self.last_progress = 0.0
        self.token = uuid.uuid4().hex[:8]
        self.seen: set[str] = set()
        self.cutter = Cutter(scan.shard_files, scan.shard_bytes)
        self.listed: dict[int, tuple[Part, Listing]] = {}
        self.next_part = 0
        self.parts = 0
        self.options_held: dict[str, Any] = {}
        self.waiting: deque[tuple[Shard, ShardResult, dict[str, Any]]] = deque()

    def _description(self, shown: list[str]) -> dict[str, Any]:
        """What makes two scans the same scan, for a checkpoint."""
        o = self.options
        return {
            "roots": shown,
            "builds": [m.context_key() for m in self.matchers],
            "match": list(dataclasses.astuple(o.match)),
            "limits": json.loads(json.dumps(dataclasses.asdict(o.limits), default=str)),
            "vpdq_seconds": o.vpdq_seconds,
            "fast_pdq": o.fast_pdq,
            "follow_symlinks": o.follow_symlinks,
            "shard": [self.scan.shard_files, self.scan.shard_bytes],
        }

    def run(self) -> ScanSummary:
        plugin = self._install_matchers()
        try:
            return self._scan(plugin)
        finally:
            try:
                self.client.unregister_worker_plugin(plugin)
                # The workers' marks of the shards they started (MatcherPlugin.service).
                self.client.set_metadata([plugin], None)
            except Exception:  # noqa: BLE001 - a cluster gone already has nothing to remove
                log.debug("could not remove the plugin %s", plugin, exc_info=True)

    def _scan(self, plugin: str) -> ScanSummary:
        from distributed import as_completed

        parts, problems = plan(self.roots, follow_symlinks=self.options.follow_symlinks)
        self._problems(problems)
        threads = max(1, sum(self.client.nthreads().values()))
        limit = threads * IN_FLIGHT_PER_THREAD
        jobs: dict[Any, tuple[str, Any]] = {}
        running = as_completed()
        # Parts listed several to a task (a task costs milliseconds of the client's, the
        # scheduler's and a worker's time, as much as listing a folder of a hundred files), in
        # runs of consecutive parts, enough tasks to keep every thread busy.
        each = min(LIST_BATCH, max(1, -(-len(parts) // (threads * LIST_TASKS_PER_THREAD))))
        for first in range(0, len(parts), each):
            batch = parts[first : first + each]
            fut = self.client.submit(
                list_parts,
                batch,
                self.options.follow_symlinks,
                key=f"vigil-list-{self.token}-{first}",
                retries=1,
            )
            jobs[fut] = ("list", (first, batch))
            running.add(fut)
        self.parts = len(parts)
        in_flight = 0
        for fut in running:
            what, subject = jobs.pop(fut)
            if what == "list":
                self._listed(fut, *subject)
            else:
                in_flight -= 1
                self._scanned(fut, *subject)
            fut.release()
            while self.waiting and in_flight < limit:
                shard, partial, options = self.waiting.popleft()
                sub = self.client.submit(
                    scan_shard,
                    plugin,
                    shard,
                    tuple(sorted(options.items())),
                    self.scan.cache is not None,
                    key=f"vigil-shard-{shard.name}-{self.token}",
                )
                self.scan.scanned.append(shard.name)
                jobs[sub] = ("shard", (shard, partial))
                running.add(sub)
                in_flight += 1
            self._progress()
        if self.scan.cache is not None:
            self.scan.cache.flush()
        self.summary.seconds = time.monotonic() - self.t0
        self._progress(force=True)
        return self.summary

    # -- the matcher on every worker ---------------------------------------------------------

    def _install_matchers(self) -> str:
        """Every worker gets the builds (and so does a worker that joins later); the name of
        the plugin that holds them there."""
        with tempfile.TemporaryDirectory(prefix="vigil-build-") as scratch:
            builds = []
            for i, m in enumerate(self.matchers):
                folder = Path(scratch) / str(i)
                folder.mkdir()
                builds.append(BuildFiles.of(m, folder))
        plugin = MatcherPlugin(builds, self.options, self.token)
        try:
            self.client.register_plugin(plugin)
        except Exception as exc:  # noqa: BLE001 - Dask raises the worker's own exception
            raise VigilError(f"the matcher could not be set up on the workers: {exc}") from exc
        return plugin.name

    # -- listing -----------------------------------------------------------------------------

    def _listed(self, fut: Any, first: int, parts: list[Part]) -> None:
        """Parts listed: their files are cut into shards in the parts' order (listings that
        come early wait for those before them), so the same tree cuts the same shards."""
        try:
            listings: list[Listing] = fut.result()
        except Exception as exc:  # noqa: BLE001 - a part that cannot be listed is an error line
            listings = [Listing([], [cannot_list(part, exc)]) for part in parts]
        for index, (part, listing) in enumerate(zip(parts, listings, strict=True), start=first):
            self._problems(listing.problems)
            self.listed[index] = (part, listing)
        while self.next_part in self.listed:
            part, listing = self.listed.pop(self.next_part)
            self.next_part += 1
            options = dict(part.storage_options)
            if options != self.options_held:
                self._queue(self.cutter.flush(), self.options_held)
                self.options_held = options
            self._queue(self.cutter.feed(listing.files, part.protocol), options)
        if self.next_part == self.parts:
            self._queue(self.cutter.flush(), self.options_held)

    def _queue(self, shards: Iterable[Shard], options: dict[str, Any]) -> None:
        for shard in shards:
            if shard.name in self.seen:  # the same files reached twice (overlapping roots)
                continue
            self.seen.add(shard.name)
            if shard.name in self.done:
                assert self.checkpoint is not None
                self._report(self.checkpoint.load(shard.name))
                continue
            rest, partial = self._from_cache(shard)
            if rest.files:
                self.waiting.append((rest, partial, options))
            else:
                self._finished(partial)

    def _problems(self, problems: list[ScanError]) -> None:
        for p in problems:
            if isinstance(p, Skipped):
                self.summary.skipped += 1
                self.sink.skipped(p)
            else:
                self.summary.errors += 1
                self.sink.error(p)

    # -- the cluster cache -------------------------------------------------------------------

    def _from_cache(self, shard: Shard) -> tuple[Shard, ShardResult]:
        """The shard's files not in the cache (under the shard's own name), and the result
        of those that are: matched here, against this scan's builds."""
        partial = ShardResult(shard.name, counts=dict.fromkeys(COUNTS, 0))
        if self.scan.cache is None:
            return shard, partial
        found = self.scan.cache.get_many(shard.files)
        rest: list[Listed] = []
        cached: list[tuple[Listed, list[ScannedItem]]] = []
        for f, items in zip(shard.files, found, strict=True):
            if items is None:
                rest.append(f)
            else:
                cached.append((f, items))
        if cached:
            self._match_cached(cached, partial)
        return dataclasses.replace(shard, files=tuple(rest)), partial

    def _match_cached(
        self, cached: list[tuple[Listed, list[ScannedItem]]], into: ShardResult
    ) -> None:
        items = [it for _, its in cached for it in its]
        c = into.counts
        if items:
            good, reported = match_all(
                self.matchers, [it.fingerprints for it in items], self.options.match
            )
            for i, item in enumerate(items):
                fp = item.fingerprints
                c["images"] += fp.pdq is not None
                c["videos"] += fp.vpdq is not None
                c["known_good"] += good[i]
                c["undecoded"] += fp.undecoded
                for m, hit in reported[i]:
                    into.matches.append(to_match(self.matchers[m], item, hit))
        c["files"] += len(cached)
        c["cached"] += len(cached)
        c["bytes"] += sum(f.size for f, _ in cached)
        c["items"] += len(items)
        c["matches"] += len(into.matches)

    # -- shards ------------------------------------------------------------------------------

    def _scanned(self, fut: Any, shard: Shard, partial: ShardResult) -> None:
        try:
            result: ShardResult = fut.result()
        except Exception as exc:  # noqa: BLE001 - a lost shard is reported, never silent
            # Not committed: a resumed scan tries it again.
            reason = "crashed" if type(exc).__name__ == "KilledWorker" else "internal"
            for f in shard.files:
                self._problems(
                    [
                        ScanError(
                            f.url,
                            None,
                            reason,
                            f"its shard {shard.name} failed on the cluster "
                            f"({type(exc).__name__}: {exc}); not scanned",
                        )
                    ]
                )
            self._report(partial)
            return
        if self.scan.cache is not None and result.cacheable:
            self.scan.cache.put_many(result.cacheable)
        partial.matches.extend(result.matches)
        partial.errors.extend(result.errors)
        partial.skipped.extend(result.skipped)
        for key in COUNTS:
            partial.counts[key] += result.counts.get(key, 0)
        partial.worker = result.worker
        self._finished(partial)

    def _finished(self, result: ShardResult) -> None:
        """A whole shard done: committed (when checkpointing), then reported."""
        if self.checkpoint is not None:
            self.checkpoint.commit(result)
        self._report(result)

    def _report(self, result: ShardResult) -> None:
        # The totals count errors and matches already; the sink is told each one.
        result.add_to(self.summary)
        for e in result.errors:
            self.sink.error(e)
        for s in result.skipped:
            self.sink.skipped(s)
        for m in result.matches:
            self.sink.match(m)

    def _progress(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last_progress > 0.2:
            self.last_progress = now
            self.summary.seconds = now - self.t0
            self.sink.progress(self.summary)
