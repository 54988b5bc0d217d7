"""End to end through each watch backend (`watch_backend` in agent.toml): inotify, watchdog's
native observer (inotify on this machine) and watchdog's polling observer — what Windows and macOS
run is watchdog's too, with their own native observers, not run here. A real server (SQLite) and a
real agent: the known file and altered copies written into new subfolders, a file renamed in from
outside the watched folder, a folder with a copy in it moved in: each is an incident."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from support.agent import Fleet, drop, incidents, wait_for
from support.planted import Tree
from support.server import Server

# Real processes over loopback: run in the suite's process-parallel group (scripts/test).
pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("agent_server", ["sqlite"], indirect=True)
@pytest.mark.parametrize("backend", ["inotify", "watchdog", "polling"])
def test_copies_and_moves_through_each_backend(
    agent_server: Server, fleet: Fleet, planted: Tree, tmp_path: Path, backend: str
) -> None:
    agent = fleet.enrol(agent_server, toml=f'watch_backend = "{backend}"\n')
    agent.start()
    agent.wait_ready()
    assert agent.status()["watch_backend"] == backend
    key = agent_server.api_key("admin")
    want: set[tuple[str, str | None]] = set()
    # Written in place, into folders made as they land (alt/, archive/, docs/).
    for p in planted.planted:
        drop(agent.watch / "written" / p.rel, (planted.root / p.rel).read_bytes())
        want.add((str(agent.watch / "written" / p.rel), p.member))
    # Renamed into the watched folder from outside it (a finished download, a move).
    staging = tmp_path / "staging"
    staging.mkdir()
    exact = (planted.root / "docs/report.txt").read_bytes()
    drop(staging / "download.tmp", exact)
    os.rename(staging / "download.tmp", agent.watch / "moved-in.jpg")
    want.add((str(agent.watch / "moved-in.jpg"), None))
    # A whole folder moved in, a copy inside it.
    shutil.copytree(planted.root / "alt", staging / "album")
    os.rename(staging / "album", agent.watch / "album")
    for p in planted.planted:
        if p.rel.startswith("alt/"):
            want.add((str(agent.watch / "album" / p.rel.removeprefix("alt/")), None))
    # Unrelated files land too, and are no incident.
    for name in planted.unrelated:
        drop(agent.watch / "written" / name, (planted.root / name).read_bytes())

    def arrived() -> bool:
        agent.assert_running()
        got = {(i["path"], i["member"]) for i in incidents(agent_server, key, agent.host)}
        return want <= got

    wait_for("every copy's incident", arrived)
    found = incidents(agent_server, key, agent.host)
    assert {(i["path"], i["member"]) for i in found} == want  # nothing unrelated
    assert all(i["detection"] == "realtime" for i in found)
    assert agent.status()["watch"]["healthy"]
