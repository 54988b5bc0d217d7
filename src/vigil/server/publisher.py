"""Publishing by itself: while the server runs, a catalog change becomes a signed version.

A background task looks at the catalog's generation every few seconds (an import by another
process, e.g. `vigil hashset import`, bumps it) and publishes when it moved: the delta at once
(seconds, whatever the catalog's size), the whole catalog later, in a thread of its own, once
the catalog has been quiet for `full_quiet` or the whole bundle is older than `full_every`. It
re-signs the timestamp metadata on a schedule so agents can tell a quiet feed from a frozen one.
Only the process holding the repository's lock publishes; another server on the same home waits.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

from vigil.catalog.store import Catalog
from vigil.server.publish import Repository

log = logging.getLogger(__name__)

POLL_SECONDS = 2.0
# The whole catalog is bundled again once no new version came for this long ...
FULL_QUIET_SECONDS = 30.0
# ... or, while versions keep coming, when the whole bundle is older than this.
FULL_EVERY_SECONDS = 600.0


class Publisher:
    """Publishes `catalog` into `repository` when it changes; re-signs the timestamp; bundles
    the whole catalog in the background."""

    def __init__(
        self,
        repository: Repository,
        catalog: Catalog,
        poll: float = POLL_SECONDS,
        *,
        full_quiet: float = FULL_QUIET_SECONDS,
        full_every: float = FULL_EVERY_SECONDS,
    ) -> None:
        self.repository = repository
        self.catalog = catalog
        self.poll = poll
        self.full_quiet = full_quiet
        self.full_every = full_every
        self._signed_at = 0.0
        self._published_at = time.monotonic()
        self._full_at = time.monotonic()
        self._full: threading.Thread | None = None

    def step(self) -> int | None:
        """One round (blocking): publish if the catalog changed, re-sign when due, start a
        whole bundle when due."""
        if not self.repository.exists() or not self.repository.try_lock():
            return None
        published = self.repository.publish(self.catalog)
        now = time.monotonic()
        if published is not None:
            self._signed_at = self._published_at = now
        elif now - self._signed_at >= self.repository.settings.timestamp_resign.total_seconds():
            self.repository.resign()
            self._signed_at = now
        self._maybe_full(now)
        return published

    def _maybe_full(self, now: float) -> None:
        if self._full is not None and self._full.is_alive():
            return
        state = self.repository.state()
        if int(state["full"]) >= int(state["version"]):
            return
        if now - self._published_at < self.full_quiet and now - self._full_at < self.full_every:
            return
        self._full_at = now
        self._full = threading.Thread(
            target=self._build_full, name="vigil-full-bundle", daemon=True
        )
        self._full.start()

    def _build_full(self) -> None:
        try:
            self.repository.build_full(self.catalog)
        except Exception:  # noqa: BLE001 - tried again at a later round
            log.exception("bundling the whole catalog failed; retrying later")

    def wait_full(self, timeout: float | None = None) -> None:
        """Wait for a whole bundle being built (tests, shutdown)."""
        if self._full is not None:
            self._full.join(timeout)

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
            # A whole bundle being built is left to end with the process (its files are
            # written atomically; unlocking waits for a write under way).
            self.repository.unlock()
