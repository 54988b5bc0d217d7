"""What runs on a Dask worker: the matcher loaded once, and the task that scans one shard.

`MatcherPlugin` is registered by the client with `Client.register_plugin`: Dask runs its `setup`
on every worker, present and future (a replacement for a lost worker too). It carries the
compiled builds' files; setup writes each into the worker's local directory in the layout of
vigil.matching.builds (one immutable directory and a `current` pointer) and opens it through the
engine facade (`Engine.open_builds`), memory-mapped. Tasks find the plugin on their worker and
scan with the local scan's service (vigil.scan.scanner.ScanService, matching batched).

On a worker of one thread (`local:N`, `dask worker --nthreads 1`) a shard is read in the worker
process itself, each item under a watchdog that ends the process when the item outlives its
item_seconds (faulthandler's timer: it fires inside a decoder that holds the GIL too). A hang or
a crashing decoder thus costs the worker process (Dask's nanny starts another) and its shard is
run again, and a shard run again (or any shard on a worker of several threads) is read in a
scanning process of its own, as a local scan reads: item limits enforced by stopping that
process, a crash reported for its file. The scheduler keeps which shards were started in the
worker process (`Client.set_metadata`), which is how a rerun knows it is one.
"""

from __future__ import annotations

import concurrent.futures as cf
import faulthandler
import math
import multiprocessing
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

from distributed import WorkerPlugin, get_client, get_worker
from pebble import ProcessPool
from threadpoolctl import ThreadpoolController

from vigil.cluster.listing import Listed
from vigil.cluster.results import COUNTS, ShardResult
from vigil.cluster.shards import Shard
from vigil.engine import Engine
from vigil.matching.builds import LEASE, POINTER
from vigil.matching.matcher import Matcher
from vigil.scan.cache import Verdict, encode_items
from vigil.scan.items import ItemSource, LocalFile, Opened, ScanItem
from vigil.scan.results import ScannedItem
from vigil.scan.scanner import CollectingSink, ScanOptions, ScanService, _init_worker
from vigil.scan.worker import prepare

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


class Watchdog:
    """Ends this process when one item runs past its time, even inside a decoder that holds the
    GIL: faulthandler's timer is a thread of C code that needs no Python to fire, and its exit is
    `_exit`. Arming it starts a thread, so it is re-armed at most once every `SLACK` seconds:
    an item is never stopped before it has run its whole `timeout`, and a hung one is stopped
    within `timeout + SLACK`. The traceback of what hung is appended to `log`."""

    SLACK = 1.0

    def __init__(self, log: Path) -> None:
        self._file = open(log, "a")  # noqa: SIM115 - open while the worker lives
        self._armed_at = -math.inf
        self._timeout = 0.0

    def arm(self, timeout: float) -> None:
        """An item starts now and may run for `timeout` seconds."""
        now = time.monotonic()
        if timeout != self._timeout or now - self._armed_at > self.SLACK:
            faulthandler.dump_traceback_later(timeout + self.SLACK, exit=True, file=self._file)
            self._armed_at, self._timeout = now, timeout

    def disarm(self) -> None:
        """No item runs any more."""
        if self._armed_at > -math.inf:
            faulthandler.cancel_dump_traceback_later()
            self._armed_at = -math.inf

    def close(self) -> None:
        self.disarm()
        self._file.close()


class _InProcess:
    """Stands where the scanning service expects its process pool: runs a parcel here, at once,
    one item at a time, each under the watchdog with the parcel's timeout (the time of one
    item). A hang or a crash ends the whole worker process; its shard is then redone with the
    pool (see `MatcherPlugin.service`), which names the item."""

    def __init__(self, watchdog: Watchdog) -> None:
        self.watchdog = watchdog

    def schedule(
        self, fn: Callable[..., list[Any]], args: tuple[Any, ...], timeout: float
    ) -> cf.Future[list[Any]]:
        tasks, *rest = args
        future: cf.Future[list[Any]] = cf.Future()
        try:
            out: list[Any] = []
            for task in tasks:
                self.watchdog.arm(timeout)
                out.extend(fn([task], *rest))
            future.set_result(out)
        except Exception as exc:  # noqa: BLE001 - the service reports it, as from a process
            future.set_exception(exc)
        return future


class InProcessService(ScanService):
    """The scanning service without a process of its own: files are read and fingerprinted in
    the Dask worker's thread (no second process hop per parcel, no second copy of the decoders
    and the build in memory), each item under the watchdog."""

    def __init__(self, options: ScanOptions, watchdog: Watchdog) -> None:
        super().__init__(replace(options, workers=1))
        self._runner = _InProcess(watchdog)
        self._ready = False
        self._blas: ThreadpoolController | None = None

    def pool(self) -> ProcessPool:
        if not self._ready:
            prepare()
            self._ready = True
        return cast(ProcessPool, self._runner)

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Around the scan of one shard: one BLAS thread, as in a scanning process (more would
        fight the other workers), and the watchdog disarmed at the end. The controller is made
        once: finding the libraries costs ~20 ms, setting them ~20 us."""
        self.pool()
        if self._blas is None:
            self._blas = ThreadpoolController()
        with self._blas.limit(limits=1):
            try:
                yield
            finally:
                self._runner.watchdog.disarm()

    def close(self) -> None:
        self._runner.watchdog.close()


class ForkingService(ScanService):
    """The local scan's service, its scanning processes forked from the worker, as a local
    scan's are: they start with the decoders, kernels and builds loaded. (Dask starts workers by
    spawn, and a process started so spawns its own children by default: each would start cold
    and load everything again.)"""

    def pool(self) -> ProcessPool:
        if self._pool is None:
            prepare()
            self._pool = ProcessPool(
                max_workers=self.workers,
                initializer=_init_worker,
                context=multiprocessing.get_context("fork"),
            )
        return self._pool


class MatcherPlugin(WorkerPlugin):
    """The builds and scan options of one cluster scan, set up once per worker."""

    def __init__(self, builds: list[BuildFiles], options: ScanOptions, scan_id: str) -> None:
        self.builds = builds
        self.options = replace(options, workers=1)
        self.name = PLUGIN_PREFIX + scan_id
        self.engines: list[Engine] = []
        self.matchers: list[Matcher] = []
        self._services: dict[int, ScanService] = {}
        self._in_process: InProcessService | None = None

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
        if worker.state.nthreads == 1:
            # The watchdog is one per process: only a worker of one thread reads in itself.
            watchdog = Watchdog(root / f"watchdog-{self.name}.log")
            self._in_process = InProcessService(self.options, watchdog)

    def teardown(self, worker: Any) -> None:
        """Stop the scanning processes, release the builds."""
        with self._lock:
            services, self._services = list(self._services.values()), {}
        for service in services:
            service.close()
        if self._in_process is not None:
            self._in_process.close()
        for engine in self.engines:
            engine.close()

    def service(self, task: str) -> ScanService:
        """Where the task `task` reads its shard: in this process, unless it was started before
        (in a worker that died on it) or this worker has several threads; then in the calling
        thread's own warm scanning process."""
        if self._in_process is not None and not self._started_before(task):
            return self._in_process
        key = threading.get_ident()
        with self._lock:
            found = self._services.get(key)
            if found is None:
                found = self._services[key] = ForkingService(self.options)
            return found

    def _started_before(self, task: str) -> bool:
        """Whether `task` was started before; it is marked started from now on (on the
        scheduler: the worker it was started on may be gone)."""
        client = get_client()
        marker = [self.name, task]
        if client.get_metadata(marker, default=False):
            return True
        client.set_metadata(marker, True)
        return False


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
    service = plugin.service(str(worker.get_current_task()))
    sink = CollectingSink()
    capture = _Fingerprints()
    service.cache = cast(Any, capture) if keep_items else None
    items = [_item(f, shard, storage_options) for f in shard.files]
    with service.reading() if isinstance(service, InProcessService) else nullcontext():
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
