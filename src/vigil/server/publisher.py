"""Publishing by itself: while the server runs, a catalog change becomes a signed version.

A background task looks at the catalog's generation every few seconds (an import by another
process, e.g. `vigil hashset import`, bumps it) and publishes when it moved; it re-signs the
timestamp metadata on a schedule so agents can tell a quiet feed from a frozen one. Only the
process holding the repository's lock publishes; another server on the same home waits.
"""

from __future__ import annotations

import asyncio
import logging
import time

from vigil.catalog.store import Catalog
from vigil.server.publish import Repository

log = logging.getLogger(__name__)

POLL_SECONDS = 2.0


class Publisher:
    """Publishes `catalog` into `repository` when it changes; re-signs the timestamp."""

    def __init__(
        self, repository: Repository, catalog: Catalog, poll: float = POLL_SECONDS
    ) -> None:
        self.repository = repository
        self.catalog = catalog
        self.poll = poll
        self._signed_at = 0.0

    def step(self) -> int | None:
        """One round (blocking): publish if the catalog changed, re-sign when due."""
        if not self.repository.exists() or not self.repository.try_lock():
            return None
        published = self.repository.publish(self.catalog)
        if published is not None:
            self._signed_at = time.monotonic()
        elif (
            time.monotonic() - self._signed_at
            >= self.repository.settings.timestamp_resign.total_seconds()
        ):
            self.repository.resign()
            self._signed_at = time.monotonic()
        return published

    async def run(self) -> None:
        """Rounds until cancelled; a failed round is logged and tried again."""
        # The timestamp of a server that was down may be stale: re-sign on the first round.
        self._signed_at = -self.repository.settings.timestamp_resign.total_seconds()
        try:
            while True:
                try:
                    await asyncio.to_thread(self.step)
                except Exception:  # noqa: BLE001 - keep publishing after a transient failure
                    log.exception("catalog publication failed; retrying")
                await asyncio.sleep(self.poll)
        finally:
            self.repository.unlock()
