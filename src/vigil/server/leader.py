"""Which server process of a home runs its background work.

Several processes serve one home (`vigil server run --workers N`, or a second server started
beside the first). Requests go to any of them, but the catalog publisher, the notification sender
and the silent-agent check run in one: the process holding an exclusive lock on
`HOME/leader.lock`. The kernel lets go of the lock when its holder dies however it dies, and the
others try again every `RETRY_SECONDS`, so another process takes over within that time.

The lock is on the home's file system: servers on other machines sharing a PostgreSQL database
each lead their own home. That stays correct (the outbox's leases send each notification once,
an open condition's key raises each silence once); the lock only spares the duplicate work.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

log = logging.getLogger("vigil.server.leader")

LOCK_FILE = "leader.lock"
RETRY_SECONDS = 2.0


class Leadership:
    """An exclusive, non-blocking lock on the home's leader file."""

    def __init__(self, home: Path) -> None:
        self.path = home / LOCK_FILE
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """True while this process leads."""
        return self._fd is not None

    def try_take(self) -> bool:
        """Lead, if no other process does; True when this process leads."""
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        # Who leads, for an operator looking (the lock, not the text, decides).
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def release(self) -> None:
        """Stop leading (another process may take over)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


async def lead(
    leadership: Leadership,
    start: Callable[[], Awaitable[None]],
    stop: Callable[[], Awaitable[None]],
    retry: float = RETRY_SECONDS,
) -> None:
    """Wait to lead, then `start` the background work and keep it until cancelled; `stop` it
    and let go of the lock at the end."""
    while not leadership.try_take():
        await asyncio.sleep(retry)
    log.info("process %d leads: catalog publisher, notification sender, silence check", os.getpid())
    try:
        await start()
        await asyncio.Event().wait()
    finally:
        with contextlib.suppress(Exception):
            await stop()
        leadership.release()
