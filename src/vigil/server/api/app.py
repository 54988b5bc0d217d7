"""The server's FastAPI application: the API, health, readiness, metrics."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from vigil import __version__
from vigil.server import settings
from vigil.server.api import agents, incidents, keys, notifications, tuf
from vigil.server.api import export as incident_export
from vigil.server.api.background import logs, notify_tasks, stop_tasks
from vigil.server.api.gate import Gate
from vigil.server.api.metrics import Metrics
from vigil.server.heartbeats import Batcher
from vigil.server.leader import Leadership, lead
from vigil.server.publish import Repository, catalog_settings
from vigil.server.publisher import Publisher
from vigil.server.storage import Storage


def from_environment() -> FastAPI:
    """The application for the home in $VIGIL_HOME (each of `vigil server run --workers N`'s
    processes makes its own)."""
    import os

    return create_app(Path(os.environ["VIGIL_HOME"]))


def create_app(home: Path, storage: Storage | None = None) -> FastAPI:
    """The application for the server under `home`."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from vigil.catalog.store import Catalog

        logs()
        # The hash sets agents are given: the engine's catalog under the same home.
        app.state.catalog = Catalog.open(home)
        app.state.heartbeats = Batcher(
            app.state.storage.session,
            app.state.settings,
            on_batch=app.state.metrics.observe_heartbeat_batch,
        )
        app.state.heartbeats.start()
        background: list[asyncio.Task[None]] = []

        async def start() -> None:
            # Signed catalog publication: a change becomes a new version within seconds.
            background.append(
                asyncio.create_task(
                    Publisher(app.state.repository, app.state.catalog).run(),
                    name="catalog-publisher",
                )
            )
            background.extend(notify_tasks(app))

        async def stop() -> None:
            await stop_tasks(app, background)

        leading = asyncio.create_task(lead(Leadership(home), start, stop), name="vigil-leadership")
        yield
        leading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await leading
        await app.state.heartbeats.stop()
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
    # Before the incident routes: `/incidents/export` is not an incident id.
    app.include_router(incident_export.router)
    app.include_router(incidents.router)
    app.state.repository = Repository(home, catalog_settings(home))
    app.include_router(tuf.router)
    app.include_router(notifications.router)
    app.include_router(keys.router)

    app.add_middleware(Gate, limit=app.state.storage.connections, metrics=app.state.metrics)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """Alive."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    def readyz() -> Any:
        """Ready: the database answers, the catalog can be read and a version is published."""
        if not app.state.storage.reachable():
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, 503)
        try:
            generation = app.state.catalog.generation()
        except Exception:  # noqa: BLE001 - any failure means "not ready"
            return JSONResponse({"status": "unavailable", "catalog": "unreadable"}, 503)
        published = app.state.repository.published_version()
        if not published:
            return JSONResponse({"status": "unavailable", "catalog": "not published"}, 503)
        return {
            "status": "ok",
            "database": "ok",
            "catalog_generation": generation,
            "catalog_version": str(published),
        }

    @app.get("/metrics", tags=["health"])
    def metrics() -> Response:
        """Prometheus metrics."""
        return Response(app.state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    # The dashboard (pages under /ui, its security headers on every response).
    from vigil.server.web.routes import install as install_dashboard

    install_dashboard(app)
    return app
