"""The scanner process: the engine lives outside the daemon, ends when idle and starts again
for the next file; one killed at any moment loses nothing."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest
from support.agent import AgentHome, Fleet, drop, incidents, wait_for
from support.planted import Tree
from support.server import Server

from vigil.agent.daemon import STATUS_FILE, read_json

# Real processes over loopback: run in the suite's process-parallel group (scripts/test).
pytestmark = pytest.mark.e2e


def scanner(agent: AgentHome) -> dict[str, object]:
    """What the daemon last said of its scanner (its status file, written every heartbeat)."""
    data = read_json(agent.home / "agent" / STATUS_FILE).get("scanner")
    return data if isinstance(data, dict) else {}


def daemon_modules(pid: int) -> str:
    """The shared objects mapped into a process (what it has loaded)."""
    return Path(f"/proc/{pid}/maps").read_text()


def test_the_scanner_ends_when_idle_and_starts_for_the_next_file(
    agent_server: Server, fleet: Fleet, planted: Tree
) -> None:
    agent = fleet.enrol(agent_server, toml='scanner_idle = "2s"\n')
    agent.start()
    agent.wait_ready()
    assert agent.proc is not None
    key = agent_server.api_key("admin")
    # The daemon itself never loads the engine's decoders or compiled kernels.
    maps = daemon_modules(agent.proc.pid)
    assert "numba" not in maps and "libavcodec" not in maps and "_imaging" not in maps

    first = wait_for("the catch-up's scanner", lambda: scanner(agent).get("pid"))
    wait_for("the idle scanner to end", lambda: scanner(agent).get("pid") is None)
    assert not Path(f"/proc/{first}").exists()

    drop(agent.watch / "a.jpg", (planted.root / "alt/chelsea-q50.jpg").read_bytes())
    wait_for(
        "the incident of a file landed while no scanner ran",
        lambda: agent.assert_running() or incidents(agent_server, key, agent.host),
    )
    status = wait_for(
        "a second scanner", lambda: scanner(agent).get("starts", 0) >= 2 and scanner(agent)
    )
    assert status["pid"] != first
    # The version its build was made from: the agent's catalog, compiled.
    assert status["catalog_version"] == agent.status()["catalog"]["version"]


def test_a_killed_scanner_is_replaced_and_nothing_is_lost(
    agent_server: Server, fleet: Fleet, planted: Tree
) -> None:
    """SIGKILL of the scanner (the OOM killer, a crash in a decoder's library) while files land:
    the daemon starts another and every known file is still found, once."""
    agent = fleet.enrol(agent_server)
    agent.start()
    agent.wait_ready()
    key = agent_server.api_key("admin")
    alt = sorted((planted.root / "alt").iterdir())
    for i, source in enumerate(alt):
        pid = wait_for("a running scanner", lambda: scanner(agent).get("pid"))
        shutil.copyfile(source, agent.watch / f"{i}-{source.name}")
        os.kill(int(pid), signal.SIGKILL)  # before, during or after the scan of that file
        wait_for("a new scanner", lambda old=pid: scanner(agent).get("pid") not in (None, old))
    found = wait_for(
        "every known file's incident",
        lambda: (
            agent.assert_running()
            or (len(got := incidents(agent_server, key, agent.host)) >= len(alt) and got)
        ),
    )
    assert sorted(i["path"] for i in found) == sorted(
        str(agent.watch / f"{i}-{s.name}") for i, s in enumerate(alt)
    )
