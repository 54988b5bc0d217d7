"""The server process's background tasks: the notification sender and the silent-agent check."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import FastAPI

from vigil.server import delivery, health
from vigil.server.outbox import Sender

log = logging.getLogger("vigil.server.notify")


def logs() -> None:
    """Our lines beside uvicorn's on standard error, unless the operator configured logging.

    httpx logs each request's URL at INFO: a webhook URL may carry a token, so httpx says
    only warnings.
    """
    logging.getLogger("httpx").setLevel(logging.WARNING)
    ours = logging.getLogger("vigil.server")
    if not ours.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
        ours.addHandler(handler)
        ours.setLevel(logging.INFO)
        ours.propagate = False


def notify_tasks(app: FastAPI) -> list[asyncio.Task[None]]:
    """Start the sender and the silence check (in the process that leads the home, see
    vigil.server.leader; the outbox's leases and the conditions' keys would keep several from
    doing one thing twice)."""
    storage = app.state.storage
    settings = app.state.settings
    sender = Sender(storage.session, settings, delivery.send)
    app.state.sender = sender
    return [
        asyncio.create_task(sender.run(), name="vigil-notify-sender"),
        asyncio.create_task(health.watch_silence(storage.session, settings), name="vigil-silence"),
    ]


async def stop_tasks(app: FastAPI, tasks: list[asyncio.Task[None]]) -> None:
    """Cancel them and wait; a send in flight is abandoned and its lease given back, so the
    row is sent again by the next server process to look (a resend, never a loss)."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    sender = getattr(app.state, "sender", None)
    if sender is None:  # never led: nothing leased
        return
    try:
        await asyncio.to_thread(sender.let_go)
    except Exception:  # noqa: BLE001 - the database may be gone: the leases then just expire
        log.exception("could not give back the notification leases")
