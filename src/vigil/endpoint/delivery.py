"""Delivery of the spool to the server: batches, retry with exponential backoff and jitter, and a
report leaves the spool only once the server acknowledged its id."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable

import httpx

from vigil.endpoint.client import BATCH, Connection, ServerRefused
from vigil.endpoint.spool import Spool

log = logging.getLogger("vigil.endpoint.delivery")

BACKOFF_FIRST = 1.0
BACKOFF_MAX = 300.0
# Statuses that say this batch itself is malformed: each report is then sent alone, and one the
# server still refuses is set aside (else one bad report would block the spool forever).
MALFORMED = (400, 413, 422)
# An idle agent looks at its spool this often (scans wake the deliverer at once).
IDLE_SECONDS = 15.0


def backoff(failures: int, rng: Callable[[], float] = random.random) -> float:
    """Seconds to wait after `failures` failed attempts in a row: doubling, capped, jittered
    (full jitter in [0.5, 1.5) of the step, so agents that lost one server do not return
    together)."""
    step = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** max(0, failures - 1))
    return step * (0.5 + rng())


def deliver_once(spool: Spool, conn: Connection) -> int:
    """Send everything in the spool now; returns reports acknowledged. Raises on a transport
    error or a server refusal that is not about the reports themselves."""
    sent = 0
    while batch := spool.batch(BATCH):
        try:
            results = conn.report(batch)
        except ServerRefused as e:
            if e.status not in MALFORMED:
                raise
            sent += _one_by_one(spool, conn, batch)
            continue
        spool.acknowledged([r["id"] for r in results])
        sent += len(results)
    return sent


def _one_by_one(spool: Spool, conn: Connection, batch: list[dict[str, object]]) -> int:
    sent = 0
    for report in batch:
        try:
            results = conn.report([report])
        except ServerRefused as e:
            if e.status not in MALFORMED:
                raise
            log.error("the server refuses report %s (%s): set aside", report["id"], e)
            spool.reject(report, str(e))  # type: ignore[arg-type]
            continue
        spool.acknowledged([r["id"] for r in results])
        sent += len(results)
    return sent


class Deliverer:
    """The delivery loop of the daemon: wakes when reports are spooled (woken by the scans), and
    every IDLE_SECONDS anyway."""

    def __init__(self, spool: Spool, conn: Connection, stop: threading.Event) -> None:
        self.spool = spool
        self.conn = conn
        self.stop = stop
        self.wake = threading.Event()
        self.failures = 0
        self.last_error: str | None = None

    def run(self) -> None:
        """Deliver until stopped; failures wait for the backoff, successes clear it."""
        while not self.stop.is_set():
            wait = IDLE_SECONDS
            try:
                n = deliver_once(self.spool, self.conn)
                if n:
                    log.info("delivered %d report(s)", n)
                if self.failures:
                    log.info("server reachable again")
                self.failures = 0
                self.last_error = None
            except Exception as e:  # noqa: BLE001 — whatever failed, the spool keeps the reports
                if not isinstance(e, httpx.HTTPError | ServerRefused):
                    log.exception("delivery failed")
                self.failures += 1
                self.last_error = str(e)
                wait = backoff(self.failures)
                log.warning(
                    "delivery failed (%s); %d in the spool, next try in %.1fs",
                    e,
                    len(self.spool),
                    wait,
                )
            if self.failures:
                self.stop.wait(wait)  # new reports do not cut a backoff short
            else:
                self.wake.wait(wait)
            self.wake.clear()
