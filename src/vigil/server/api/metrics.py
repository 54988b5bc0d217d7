"""The server's Prometheus metrics (one registry per app, so several apps can share a process).

With several server processes (`vigil server run --workers N`), `vigil server run` sets
`PROMETHEUS_MULTIPROC_DIR` before the processes start: prometheus_client then keeps each
process's values in files there, and /metrics, whichever process answers, sums them all.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


class Metrics:
    """Counters and timings served at /metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.reports = Counter(
            "vigil_server_reports",
            "Incident reports received, by outcome (created, merged, duplicate).",
            ["outcome"],
            registry=self.registry,
        )
        self.enrolments = Counter(
            "vigil_server_enrolments",
            "Enrolment attempts, by result (enrolled, refused).",
            ["result"],
            registry=self.registry,
        )
        self.heartbeats = Counter(
            "vigil_server_heartbeats", "Agent heartbeats received.", registry=self.registry
        )
        self.heartbeat_batch = Histogram(
            "vigil_server_heartbeat_batch",
            "Heartbeats written together in one batch.",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000),
            registry=self.registry,
        )
        self.heartbeat_write_seconds = Histogram(
            "vigil_server_heartbeat_write_seconds",
            "Time to write one batch of heartbeats (statement and commit).",
            registry=self.registry,
        )
        self.auth_refused = Counter(
            "vigil_server_auth_refused",
            "Requests refused for an unknown or revoked credential, by kind of credential.",
            ["credential"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "vigil_server_request_seconds",
            "Time to answer a request, by route and method.",
            ["route", "method"],
            registry=self.registry,
        )

    def observe_heartbeat_batch(self, size: int, seconds: float) -> None:
        """One batch of heartbeats written."""
        self.heartbeat_batch.observe(size)
        self.heartbeat_write_seconds.observe(seconds)

    def exposition(self) -> bytes:
        """The text /metrics serves: this process's values, or every process's summed."""
        if os.environ.get(MULTIPROCESS_ENV):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)
