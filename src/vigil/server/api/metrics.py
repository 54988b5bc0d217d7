"""The server's Prometheus metrics (one registry per app, so several apps can share a process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


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
