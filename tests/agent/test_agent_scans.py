"""Manual and scheduled scans reported through the agent; a catalog change reaching a running
agent; status of an agent that is not enrolled."""

from __future__ import annotations

import io
import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from support.agent import Fleet, drop, incidents, wait_for
from support.planted import Tree
from support.server import Server, published, run_cli

from vigil.fingerprint.crypto import digest_bytes
from vigil.fingerprint.pdq import pdq_from_bytes
from vigil.hashsets.entry import Entry
from vigil.hashsets.export import write_vics

# Real processes over loopback: run in the suite's process-parallel group (scripts/test).
pytestmark = pytest.mark.e2e


def test_manual_scan_reports_through_the_spool(
    agent_server: Server, fleet: Fleet, planted: Tree, tmp_path: Path
) -> None:
    """`vigil agent scan PATH` (no daemon running): matches are spooled, delivered, and are
    incidents with detection=manual."""
    agent = fleet.enrol(agent_server)
    target = tmp_path / "usb"
    shutil.copytree(planted.root / "alt", target)
    done = run_cli("agent", "scan", "--home", str(agent.home), str(target))
    assert done.returncode == 0, done.stderr
    assert "spool: 0 report(s) waiting" in done.stderr
    found = incidents(agent_server, agent_server.api_key("admin"), agent.host)
    assert {i["path"] for i in found} == {str(p) for p in target.iterdir()}
    assert {i["detection"] for i in found} == {"manual"}


def _scheduled_scan(
    agent_server: Server, fleet: Fleet, planted: Tree, tmp_path: Path, toml: str = ""
) -> dict[str, Any]:
    """An agent whose `[schedule] roots` hold a zip with a known member, started: the scheduled
    scan's one incident (detection=scheduled); the status once it says the scan ended."""
    archive = tmp_path / "archive"
    shutil.copytree(planted.root / "archive", archive)
    agent = fleet.enrol(
        agent_server, toml=f'{toml}[schedule]\nroots = ["{archive}"]\nevery = "24h"\n'
    )
    agent.start()
    agent.wait_ready()
    key = agent_server.api_key("admin")
    found = wait_for(
        "the scheduled scan's incident",
        lambda: agent.assert_running() or incidents(agent_server, key, agent.host),
    )
    assert [(i["path"], i["member"], i["detection"]) for i in found] == [
        (str(archive / "outer.zip"), "inner.tar.gz/deep/x.jpg", "scheduled")
    ]
    status: dict[str, Any] = wait_for(
        "the last scheduled scan in the status",
        lambda: (s := agent.status())["last_scheduled_scan"] and s,
    )
    return status


def test_scheduled_scan_of_roots(
    agent_server: Server, fleet: Fleet, planted: Tree, tmp_path: Path
) -> None:
    """`[schedule] roots`: scanned at start (never scanned before) in a low-priority child
    process; its matches are incidents with detection=scheduled, and the status says when."""
    status = _scheduled_scan(agent_server, fleet, planted, tmp_path)
    assert status["last_scheduled_status"] == 0


@pytest.mark.parametrize("agent_server", ["sqlite"], indirect=True)
def test_a_scheduled_scan_held_to_a_small_share_pauses_and_finishes(
    agent_server: Server, fleet: Fleet, planted: Tree, tmp_path: Path
) -> None:
    """A scheduled scan at cpu_share 0.05 (a tenth of a core here: less than it would get on
    this machine however busy) is paused, its whole process tree, many times by the daemon, and
    never fails: it finishes with status 0 and its match is an incident. Its item time limits
    are stretched for the share (a paused item is not timed out)."""
    status = _scheduled_scan(agent_server, fleet, planted, tmp_path, "cpu_share = 0.05\n")
    assert status["last_scheduled_status"] == 0
    assert status["last_scheduled_pauses"] > 1


def test_a_list_imported_on_the_server_reaches_a_running_agent(
    agent_server: Server, fleet: Fleet, planted: Tree, tmp_path: Path
) -> None:
    """A new hash set imported on the server is published, signed, to a running agent (a new
    build swapped in while it watches): a file dropped after that matches it, and so does one
    that was already there (the watched folders matched again through the fingerprint cache)."""
    agent = fleet.enrol(agent_server)  # polls the server every 2 s
    agent.start()
    agent.wait_ready()
    # A picture of this test's own, so the set matches nothing the other tests drop.
    pixels = np.random.default_rng(int(time.time())).integers(0, 255, (256, 256, 3), np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    data = buffer.getvalue()
    md5, sha1, sha256 = digest_bytes(data)
    pdq = pdq_from_bytes(data, max_pixels=10**8).hash
    name = f"newer-{sha1[:8]}"
    entry = Entry({"md5": md5, "sha1": sha1, "sha256": sha256, "pdq": pdq}, id="900", category="2")
    hashlist = tmp_path / "new.json"
    with open(hashlist, "w") as f:
        write_vics([entry], f)
    # The agent on the server's catalog first: a version it had not received yet must not be
    # taken for the new list's.
    before = str(published(agent_server.url))
    wait_for(
        "the agent on the server's catalog", lambda: agent.status()["catalog"]["version"] == before
    )
    key = agent_server.api_key("admin")
    # A file that is not listed yet lands, and is scanned: a known one landing after it is
    # reported, and files are scanned in the order they land.
    drop(agent.watch / "earlier.png", data)
    drop(agent.watch / "known.jpg", (planted.root / "alt/chelsea-q50.jpg").read_bytes())
    wait_for(
        "the known file's incident",
        lambda: agent.assert_running() or incidents(agent_server, key, agent.host),
    )
    done = run_cli(
        "--home", str(agent_server.home), "hashset", "import", "--name", name, str(hashlist)
    )
    assert done.returncode == 0, done.stderr

    def in_use() -> object:
        return (agent.status().get("scanner") or {}).get("catalog_version")

    wait_for("the new version in use", lambda: in_use() not in (None, before))
    assert agent.status()["catalog"]["source"] == "server"
    drop(agent.watch / "later.png", data)

    def listed() -> list[dict[str, object]]:
        agent.assert_running()
        return [i for i in incidents(agent_server, key, agent.host) if i["hashset"] == name]

    # Both: the file that was there before the list, and the one dropped after it.
    found = wait_for("both newly listed files", lambda: len(got := listed()) >= 2 and got)
    assert sorted((i["path"], i["entry"]["id"]) for i in found) == [
        (str(agent.watch / "earlier.png"), "900"),
        (str(agent.watch / "later.png"), "900"),
    ]


def test_status_of_a_home_not_enrolled(tmp_path: Path) -> None:
    done = run_cli("agent", "status", "--home", str(tmp_path), "--json")
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["enrolled"] is False and status["running"] is False
    assert status["spool_length"] == 0
    done = run_cli("agent", "run", "--home", str(tmp_path), "--watch", str(tmp_path))
    assert done.returncode == 2 and "vigil agent enroll" in done.stderr


def test_bad_agent_toml_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "agent.toml").write_text('heartbeat = "often"\n')
    from vigil.endpoint import enrolment

    enrolment.save(tmp_path, enrolment.Enrolment("http://127.0.0.1:9", "a", "c", "h"))
    done = run_cli("agent", "run", "--home", str(tmp_path))
    assert done.returncode == 2
    assert "agent.toml: heartbeat: not a duration" in done.stderr
