"""The door every request comes through: database admission, and timing by route.

FastAPI runs sync endpoints and their dependencies in a thread pool (40 threads by default),
while the database pool holds fewer connections. With no gate, a burst fills every thread with a
request waiting for a connection, and the requests that hold the connections cannot finish:
their teardown needs a thread too. Nothing moves until the pool's timeout fails them (FastAPI
issue 3205's deadlock; seen here as 500s under a fleet of heartbeats). The gate admits at most
as many requests as the pool has connections; the rest wait here, in the event loop, holding
no thread, and are served in turn.
"""

from __future__ import annotations

import time
from typing import Any

import anyio

from vigil.server.api.metrics import Metrics

# Paths that never touch the database: answered even when every connection is busy. A heartbeat
# waits for its batch (vigil.server.heartbeats), which holds one connection for the whole batch:
# gated, hundreds of heartbeats waiting for their batch would hold every place at the gate.
UNGATED = frozenset({"/healthz", "/metrics", "/api/v1/heartbeat"})


class Gate:
    """ASGI middleware: at most `limit` requests inside at once; every request timed by route."""

    def __init__(self, app: Any, limit: int, metrics: Metrics) -> None:
        self.app = app
        self.limiter = anyio.CapacityLimiter(limit)
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        try:
            if scope["path"] in UNGATED:
                await self.app(scope, receive, send)
            else:
                async with self.limiter:
                    await self.app(scope, receive, send)
        finally:
            # The router records the matched route in the scope it was given.
            route = scope.get("route")
            name = getattr(route, "path", "unmatched")
            self.metrics.request_seconds.labels(name, scope["method"]).observe(
                time.perf_counter() - start
            )
