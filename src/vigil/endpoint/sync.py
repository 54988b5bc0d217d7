"""Catalog sync: poll the server's signed catalog (vigil.updates.client, TUF-verified) into the
home's catalog, and when it changed, say so (`on_change`: the daemon has its scanner compile and
take the new build); the watcher and scans in flight never pause (the engine's holder swaps
builds, each scan keeps the one it started with).

An update refused by the verification keeps the old catalog and is reported; no fresh timestamp
for longer than `stale_after` is reported as a stale catalog. Where the updates client is not
installed yet, the agent uses its home's own catalog (`vigil --home DIR hashset import`): the
scanner takes the newer build after a local import by itself, and this loop has nothing to do.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vigil.endpoint.enrolment import Enrolment
from vigil.errors import VigilError

log = logging.getLogger("vigil.endpoint.sync")


@dataclass
class CatalogState:
    """What the heartbeat and `vigil agent status` say of the catalog."""

    source: str = "local"  # "server" (signed updates) or "local" (the home's own catalog)
    version: str | None = None
    last_fresh: float | None = None  # when the server last gave a verified, unexpired timestamp
    expires: str | None = None
    rejected: str | None = None  # why the last update was refused, until one is accepted
    error: str | None = None  # why the server could not be asked, until it can
    stale: bool = False

    def to_dict(self) -> dict[str, Any]:
        """For the status file."""
        return dict(self.__dict__)


class CatalogSync:
    """Polls for catalog updates; `on_change` is called when a new version is in the catalog."""

    def __init__(
        self,
        home: Path,
        enrolment: Enrolment,
        on_change: Callable[[], object],
        *,
        stale_after: float,
    ) -> None:
        self.home = home
        self.on_change = on_change
        self.stale_after = stale_after
        self.state = CatalogState()
        self.started = time.time()
        self.updater: Any = None
        try:
            from vigil.updates.client import CatalogUpdater
        except ImportError:
            log.info("no signed-update client installed: using the home's own catalog")
        else:
            try:
                self.updater = CatalogUpdater(
                    home,
                    enrolment.server,
                    enrolment.credential,
                    ca_cert=Path(enrolment.ca_cert) if enrolment.ca_cert else None,
                )
                version = self.updater.version()
            except VigilError as e:
                # No trusted root in the home (enrolled before the server sent one): nothing
                # from the server can be verified, so none is taken.
                log.error("signed catalog updates unavailable (%s): using the home's catalog", e)
                self.state.rejected = str(e)[:500]
                self.updater = None
            else:
                self.state.source = "server"
                self.state.version = str(version) if version is not None else None

    def once(self) -> bool:
        """One poll; True when a new catalog version arrived."""
        if self.updater is None:
            return False  # the home's own catalog: the scanner takes a newer build itself
        return self._from_server()

    def _from_server(self) -> bool:
        from vigil.updates.client import UpdateRejected

        started = time.monotonic()
        self.updater.downloads.clear()  # what this poll downloads, for its log line
        try:
            result = self.updater.update()
        except UpdateRejected as e:
            self.state.rejected = e.reason
            log.error("catalog update rejected (old catalog kept): %s", e.reason)
            self._check_stale()
            return False
        except Exception as e:  # noqa: BLE001 — the server unreachable: keep polling, say so
            self.state.error = str(e)[:500]
            log.warning("catalog poll failed: %s", e)
            self._check_stale()
            return False
        self.state.rejected = None
        self.state.error = None
        self.state.last_fresh = time.time()
        self.state.expires = result.expires.astimezone(UTC).isoformat()
        self.state.version = str(result.version)
        self._check_stale()
        if not result.changed:
            return False
        _release_memory()  # the bundle (tens of MB at a million entries) is gone: give it back
        targets = [
            url.rsplit("/", 1)[-1] for url, _ in self.updater.downloads if "/targets/" in url
        ]
        log.info(
            "catalog version %s received and applied in %.2f s: %d bytes downloaded (%s)",
            result.version,
            time.monotonic() - started,
            sum(n for _, n in self.updater.downloads),
            ", ".join(t.split(".", 1)[-1] for t in targets),
        )
        self.on_change()
        return True

    def _check_stale(self) -> None:
        since = self.state.last_fresh or self.started
        stale = time.time() - since > self.stale_after
        if self.state.expires:
            stale = stale or datetime.fromisoformat(self.state.expires) < datetime.now(UTC)
        if stale and not self.state.stale:
            log.error(
                "catalog stale: no fresh timestamp from the server since %s",
                datetime.fromtimestamp(since, UTC).isoformat(),
            )
        self.state.stale = stale

    def run(self, every: float, stop: threading.Event) -> None:
        """Poll now, then every `every` seconds until stopped."""
        while True:
            try:
                self.once()
            except Exception:  # noqa: BLE001 — one bad poll must not end syncing
                log.exception("catalog poll failed")
            if stop.wait(every):
                return


def _release_memory() -> None:
    """Give the heap pages a decoded bundle held back to the system (glibc keeps them
    otherwise: the daemon stayed at the size of its largest update)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass
