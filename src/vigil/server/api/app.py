"""The server's FastAPI application: the API, health, readiness, metrics."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from vigil import __version__
from vigil.server import settings
from vigil.server.api import agents, incidents, notifications
from vigil.server.api.background import notify_tasks, stop_tasks
from vigil.server.api.metrics import Metrics
from vigil.server.storage import Storage


def create_app(home: Path, storage: Storage | None = None) -> FastAPI:
    """The application for the server under `home`."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from vigil.catalog.store import Catalog

        # The hash sets agents are given: the engine's catalog under the same home.
        app.state.catalog = Catalog.open(home)
        background = notify_tasks(app)
        yield
        await stop_tasks(app, background)
        app.state.catalog.close()
        app.state.storage.close()

    app = FastAPI(
        title="Vigil server",
        version=__version__,
        description="Agents enrol and report matches; staff read and review incidents.",
        lifespan=lifespan,
    )
    app.state.home = home
    # server.toml is read first: a mistake in it stops the start with a clear message.
    app.state.settings = settings.read(home)
    app.state.storage = storage or Storage.open(home)
    app.state.metrics = Metrics()
    app.include_router(agents.router)
    app.include_router(incidents.router)
    app.include_router(notifications.router)

    @app.middleware("http")
    async def timing(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        name = getattr(route, "path", "unmatched")
        app.state.metrics.request_seconds.labels(name, request.method).observe(
            time.perf_counter() - start
        )
        return response

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """Alive."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    def readyz() -> Any:
        """Ready: the database answers and the catalog can be read."""
        if not app.state.storage.reachable():
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, 503)
        try:
            generation = app.state.catalog.generation()
        except Exception:  # noqa: BLE001 - any failure means "not ready"
            return JSONResponse({"status": "unavailable", "catalog": "unreadable"}, 503)
        return {"status": "ok", "database": "ok", "catalog_generation": generation}

    @app.get("/metrics", tags=["health"])
    def metrics() -> Response:
        """Prometheus metrics."""
        return Response(generate_latest(app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
