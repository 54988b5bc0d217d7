"""`vigil gateway run`: the engine, the incidents' destination and, for an enrolled home, the
agent's catalog sync, delivery and heartbeat threads around the ICAP server."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from vigil.endpoint import enrolment as enrolment_file
from vigil.engine import Engine
from vigil.fingerprint.mediatype import sniff_media
from vigil.gateway import worker
from vigil.gateway.config import GatewayConfig
from vigil.gateway.incidents import Incidents, JsonLines, Spooled
from vigil.gateway.metrics import Metrics
from vigil.gateway.service import Gateway
from vigil.gateway.workers import Workers

log = logging.getLogger("vigil.gateway")


class Enrolled:
    """An enrolled home's threads: catalog sync (TUF), delivery of the spool, heartbeat; their
    intervals are agent.toml's `heartbeat`, `catalog_poll` and `stale_after` (the agent's
    defaults without one; its other keys are the agent's own)."""

    def __init__(self, home: Path, engine: Engine, cfg: GatewayConfig) -> None:
        from vigil.endpoint import settings
        from vigil.endpoint.client import Connection
        from vigil.endpoint.delivery import Deliverer
        from vigil.endpoint.spool import Spool
        from vigil.endpoint.sync import CatalogSync

        self.enrolment = enrolment_file.load(home)
        self.home = home
        self.cfg = cfg
        self.intervals = settings.intervals(home)
        self.stop_event = threading.Event()
        self.conn = Connection(
            self.enrolment.server, self.enrolment.credential, self.enrolment.ca_cert
        )
        # A new catalog version is compiled and taken at once; a home without the server's
        # trusted root matches against its own catalog, taken when it changes.
        self.sync = CatalogSync(
            home, self.enrolment, engine.refresh, stale_after=self.intervals.stale_after
        )
        if self.sync.updater is None:
            engine.poll(self.intervals.catalog_poll)
        self.spool = Spool(home)
        self.deliverer = Deliverer(self.spool, self.conn, self.stop_event)
        self.started = time.time()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start the threads."""
        self.threads = [
            _thread("sync", self.sync.run, self.intervals.catalog_poll, self.stop_event),
            _thread("deliver", self.deliverer.run),
            _thread("heartbeat", self._heartbeat_loop),
        ]

    def _heartbeat_loop(self) -> None:
        import httpx

        from vigil.endpoint.client import ServerRefused

        while True:
            catalog = self.sync.state
            body: dict[str, Any] = {
                "catalog_version": catalog.version,
                "spool_length": len(self.spool),
                "catalog_error": catalog.rejected,
            }
            if catalog.source == "server":
                body["catalog_age_seconds"] = max(
                    0.0, time.time() - (catalog.last_fresh or self.started)
                )
            try:
                self.conn.heartbeat(body)
            except (httpx.HTTPError, ServerRefused) as e:
                log.warning("heartbeat failed: %s", e)
            if self.stop_event.wait(self.intervals.heartbeat):
                return

    def stop(self) -> None:
        """Stop the threads (delivery gets a last chance to send what is spooled)."""
        self.stop_event.set()
        self.deliverer.wake.set()
        for t in self.threads:
            t.join(timeout=30)
        self.spool.close()
        self.conn.close()


def _thread(name: str, target: Callable[..., None], *args: Any) -> threading.Thread:
    def body() -> None:
        try:
            target(*args)
        except Exception:
            log.exception("the %s thread failed", name)

    t = threading.Thread(target=body, name=name, daemon=True)
    t.start()
    return t


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run the service's coroutine on uvloop (libuv's event loop: less CPU a request than
    asyncio's own, measured with bench_gateway) where it is installed, else on asyncio's."""
    try:
        import uvloop
    except ImportError:  # Windows, or not installed
        asyncio.run(main)
        return
    uvloop.run(main)


def start_workers(engine: Engine, workers: int) -> Workers[worker.Job, worker.Found]:
    """The fingerprinting processes, forked (through their zygote) from this prepared
    process."""
    worker.use(engine)
    return Workers(workers, worker.fingerprint, _init_worker)


def _init_worker() -> None:
    from threadpoolctl import threadpool_limits

    # One process per core: BLAS threads inside each would only fight over the same cores.
    threadpool_limits(1)


def run(home: Path, cfg: GatewayConfig) -> None:
    """Serve until SIGTERM or SIGINT."""
    engine = Engine.open(home)
    engine.prepare()
    # The media-only sniffing database is cut from libmagic's now (~50 ms), the workers
    # inheriting it, rather than at the first request.
    sniff_media(b"\x00")
    # The workers fork now, before any thread of the gateway's starts (a fork copies only the
    # forking thread: a lock held by another would stay locked in the child forever).
    pool = start_workers(engine, cfg.workers)
    enrolled: Enrolled | None = None
    incidents: Incidents
    catalog_version: Callable[[], str | None]
    try:
        enrolled = Enrolled(home, engine, cfg)
    except enrolment_file.NotEnrolled:
        incidents = JsonLines(home)
        engine.poll(cfg.catalog_poll)
        catalog_version = lambda: engine.matcher().build_id  # noqa: E731
        where = f"incidents to {incidents.path}"
    else:
        incidents = Spooled(home, enrolled.deliverer.wake)
        sync = enrolled.sync
        catalog_version = lambda: (  # noqa: E731
            sync.state.version if sync.updater is not None else engine.matcher().build_id
        )
        where = f"incidents to {enrolled.enrolment.server} (as {enrolled.enrolment.host})"
        enrolled.start()
    metrics = Metrics()
    if cfg.metrics is not None:
        metrics.serve(*cfg.metrics)
    gateway = Gateway(cfg, engine, incidents, metrics, catalog_version, pool)

    def ready(addresses: list[str]) -> None:
        log.info(
            "gateway listening on %s (%s://HOST:PORT/respmod and /reqmod), mode %s, "
            "catalog build %s, %s%s",
            ", ".join(addresses),
            "icaps" if cfg.tls else "icap",
            cfg.mode,
            engine.matcher().build_id,
            where,
            f", metrics on http://{cfg.metrics[0]}:{cfg.metrics[1]}/metrics" if cfg.metrics else "",
        )

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, gateway.stop)
        await gateway.serve(ready)

    try:
        run_loop(main())
    finally:
        pool.close()
        if enrolled is not None:
            enrolled.stop()
        incidents.close()
        engine.close()
        log.info("gateway stopped")
