"""The server process's background tasks: the notification sender and the silent-agent check."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import FastAPI

from vigil.server import delivery, health
from vigil.server.outbox import Sender


def notify_tasks(app: FastAPI) -> list[asyncio.Task[None]]:
    """Start the sender and the silence check (each server process runs its own: the outbox's
    leases and the conditions' keys keep them from doing one thing twice)."""
    storage = app.state.storage
    settings = app.state.settings
    sender = Sender(storage.session, settings, delivery.send)
    app.state.sender = sender
    return [
        asyncio.create_task(sender.run(), name="vigil-notify-sender"),
        asyncio.create_task(health.watch_silence(storage.session, settings), name="vigil-silence"),
    ]


async def stop_tasks(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel them and wait (a send in flight is abandoned; its lease lets another retry it)."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
