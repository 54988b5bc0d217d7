"""The catalog sync loop against the interface of `vigil.updates.client`.

That module is being written in another branch: until it lands here, a stand-in with exactly its
interface is put in its place (the only stand-in of the agent's tests; it applies updates the way
the real one will, into the real Catalog under the home). What is checked is the agent's side:
a changed update swaps the engine's build, a rejected one keeps the old catalog and is reported,
no fresh timestamp for too long is reported stale.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.planted import Tree
from support.server import run_cli

from vigil.endpoint.enrolment import Enrolment
from vigil.endpoint.sync import CatalogSync
from vigil.engine import Engine
from vigil.errors import VigilError


class UpdateRejected(VigilError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class UpdateResult:
    version: int
    changed: bool
    expires: datetime


class StandInUpdater:
    """Plays the server's feed: each `update()` takes the next step of `steps`."""

    steps: list[object] = []

    def __init__(
        self, home: Path, server_url: str, credential: str, *, ca_cert: Path | None = None
    ):
        self.home = home
        self._version: int | None = None
        self.downloads: list[tuple[str, int]] = []  # (URL, bytes), as the real one keeps

    def update(self) -> UpdateResult:
        step = StandInUpdater.steps.pop(0)
        if isinstance(step, Exception):
            raise step
        assert isinstance(step, tuple)
        version, hashlist = step
        if hashlist is not None:
            done = run_cli("--home", str(self.home), "hashset", "import", str(hashlist))
            assert done.returncode == 0, done.stderr
        changed = version != self._version
        self._version = version
        return UpdateResult(version, changed, datetime.now(UTC) + timedelta(days=1))

    def version(self) -> int | None:
        return self._version


@pytest.fixture
def updates_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[StandInUpdater]]:
    module = types.ModuleType("vigil.updates.client")
    module.CatalogUpdater = StandInUpdater  # type: ignore[attr-defined]
    module.UpdateRejected = UpdateRejected  # type: ignore[attr-defined]
    module.UpdateResult = UpdateResult  # type: ignore[attr-defined]
    package = types.ModuleType("vigil.updates")
    package.client = module  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vigil.updates", package)
    monkeypatch.setitem(sys.modules, "vigil.updates.client", module)
    StandInUpdater.steps = []
    yield StandInUpdater


def test_updates_swap_the_build_and_rejections_keep_the_old(
    tmp_path: Path, planted: Tree, updates_client: type[StandInUpdater]
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    engine = Engine.open(home)
    try:
        sync = CatalogSync(
            home, Enrolment("http://127.0.0.1:9", "a", "c", "h"), engine.refresh, stale_after=3600
        )
        assert sync.state.source == "server"
        known = (planted.root / "docs/report.txt").read_bytes()
        assert not engine.check(known, "x.jpg").matches
        empty_build = engine.matcher().build_id

        updates_client.steps = [
            (1, planted.hashlist),
            UpdateRejected("timestamp signature invalid"),
            (1, None),
        ]
        assert sync.once() is True  # a new catalog version: the new build is in use
        assert engine.matcher().build_id != empty_build
        assert engine.check(known, "x.jpg").matches
        assert sync.state.version == "1" and sync.state.rejected is None

        in_use = engine.matcher().build_id
        assert sync.once() is False  # rejected: the old catalog kept, the rejection reported
        assert sync.state.rejected == "timestamp signature invalid"
        assert engine.matcher().build_id == in_use and engine.check(known, "x.jpg").matches

        assert sync.once() is False  # nothing new: no swap; the rejection is over
        assert sync.state.rejected is None and not sync.state.stale
    finally:
        engine.close()


def test_no_fresh_timestamp_is_reported_stale(
    tmp_path: Path, updates_client: type[StandInUpdater]
) -> None:
    engine = Engine.open(tmp_path)
    try:
        sync = CatalogSync(
            tmp_path, Enrolment("http://127.0.0.1:9", "a", "c", "h"), engine.refresh, stale_after=60
        )
        sync.started -= 3600  # the agent has run an hour without one fresh timestamp
        updates_client.steps = [ConnectionError("server unreachable")]
        assert sync.once() is False
        assert sync.state.stale and "unreachable" in (sync.state.error or "")
    finally:
        engine.close()
