"""The gateway's counters, in Prometheus' text format on a small HTTP port (`--metrics`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

# Why a body went through without a verdict from the fingerprints (a clean one is "clean").
PASS_REASONS = (
    "clean",  # fingerprinted, no match
    "not_media",  # sniffed as neither image, video nor archive
    "no_body",
    "too_large",  # over max_object_size
    "timeout",  # over object_seconds
    "unsupported_encoding",
    "partial",  # a 206 carrying a piece of an object (a range request), not fingerprinted
    "error",  # could not be fingerprinted (the reason is logged)
    "monitor",  # matched, monitor mode
)


class Metrics:
    """Counters, gauges and the latency histogram of one gateway process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "vigil_gateway_requests", "ICAP requests answered", ["method", "status"], registry=r
        )
        self.bytes = Counter(
            "vigil_gateway_body_bytes", "Body bytes received from the proxy", registry=r
        )
        self.fingerprinted = Counter(
            "vigil_gateway_objects_fingerprinted", "Bodies fingerprinted", registry=r
        )
        self.matches = Counter("vigil_gateway_matches", "Matches found", ["mode"], registry=r)
        self.blocked = Counter(
            "vigil_gateway_blocked", "Bodies replaced by the block page", registry=r
        )
        self.passes = Counter(
            "vigil_gateway_passes", "Bodies passed, by reason", ["reason"], registry=r
        )
        for reason in PASS_REASONS:
            self.passes.labels(reason)
        self.errors = Counter(
            "vigil_gateway_protocol_errors",
            "Malformed or refused ICAP requests, by status answered",
            ["status"],
            registry=r,
        )
        self.backlog = Gauge(
            "vigil_gateway_streamed_backlog",
            "Streamed bodies (monitor mode) answered or being answered and not fingerprinted yet",
            registry=r,
        )
        self.replaced = Counter(
            "vigil_gateway_workers_replaced",
            "Fingerprinting processes killed (a body over object_seconds) or dead (a crash), "
            "and replaced",
            registry=r,
        )
        self.connections = Gauge("vigil_gateway_connections", "Open ICAP connections", registry=r)
        self.refused = Counter(
            "vigil_gateway_connections_refused", "Connections over max_connections", registry=r
        )
        self.latency = Histogram(
            "vigil_gateway_latency_seconds",
            "From a request's head read to its answer written (RESPMOD/REQMOD)",
            ["method"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.limits = Gauge(
            "vigil_gateway_limit",
            "The gateway's limits (bytes, seconds, connections)",
            ["name"],
            registry=r,
        )

    def serve(self, host: str, port: int) -> None:
        """Serve /metrics from a daemon thread."""
        start_http_server(port, addr=host, registry=self.registry)
