"""`vigil demo`, the whole system on one machine, run as a user runs it: a real process that
starts a server, a mail sink and an agent, drops copies of known photos, and shows the
incidents and e-mails; `bash scripts/demo` stopped by Ctrl-C leaves nothing running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

# Real processes over loopback: run in the suite's process-parallel group (scripts/test).
pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
# Bounds on waiting, generous for a shared 2-core machine (never a threshold on speed).
DEMO_SECONDS = 900
# Each known photo's entry in the demo list.
ENTRIES = {
    "astronaut.png": "1001",
    "coffee.png": "1002",
    "chelsea.png": "1003",
    "rocket.jpg": "1004",
}


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("VIGIL_HOME", None)
    return env


def _group_members(groups: set[int]) -> list[int]:
    """Processes still alive in any of these process groups (the demo's children's sessions)."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[2]) in groups:
            alive.append(int(entry.name))
    return alive


def _check_the_demo(out: dict[str, Any]) -> None:
    """Each planted copy is one incident of the right entry; unrelated files none; one e-mail
    per incident."""
    planted = out["planted"]
    copies = [p for p in planted if p["of"]]
    unrelated = {p["path"] for p in planted if not p["of"]}
    assert len(copies) == 6 and len(unrelated) == 11
    found = {(i["path"], i["member"]): i for i in out["incidents"]}
    assert set(found) == {(p["path"], p["member"]) for p in copies}
    assert not unrelated & {i["path"] for i in out["incidents"]}
    for p in copies:
        incident = found[(p["path"], p["member"])]
        assert incident["hashset"] == "demo-list"
        assert incident["entry"]["id"] == ENTRIES[p["of"]], p
        assert incident["detection"] == "realtime" and incident["host"] == "demo-workstation"
    nested = [i for i in out["incidents"] if i["member"]]
    assert [(Path(i["path"]).name, i["member"], i["kind"]) for i in nested] == [
        ("backup.tar", "old/photos.zip/IMG_2231.jpg", "sha256")
    ]
    mirrored = found[(str(Path(out["watch"]) / "Desktop/mirror.jpg"), None)]
    assert mirrored["kind"] == "pdq" and mirrored["transform"] == "flipy"
    subjects = [m["subject"] for m in out["emails"]]
    assert len(subjects) == len(out["incidents"])
    for incident in out["incidents"]:
        assert sum(f"(incident {incident['id']})" in s for s in subjects) == 1, subjects
    assert out["admin_password"] and out["api_key"].startswith("vk_")
    assert out["dashboard"].startswith("http://127.0.0.1:") and out["dashboard"].endswith("/ui/")


def _nothing_left(out: dict[str, Any]) -> None:
    pids = set(out["pids"].values())
    assert set(out["pids"]) == {"server", "agent"}
    assert _group_members(pids) == []
    try:
        httpx.get(out["dashboard"], timeout=5)
    except httpx.TransportError:
        pass
    else:
        raise AssertionError("the demo's server still answers")


def test_demo_once_finds_every_planted_copy_and_mails_each_incident(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "vigil.cli",
            "demo",
            "--once",
            "--json",
            "--dir",
            str(tmp_path / "d"),
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=DEMO_SECONDS,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-5000:]
    out = json.loads(done.stdout)
    _check_the_demo(out)
    assert "found 6 of 6 planted copies; unrelated files reported: none" in done.stderr
    assert f"password: {out['admin_password']}" in done.stderr
    _nothing_left(out)
    # What it made is kept: the server's home, the agent's, the watched folder, the logs.
    assert (tmp_path / "d" / "server" / "server.toml").is_file()
    assert (tmp_path / "d" / "logs" / "agent.log").is_file()


def test_scripts_demo_runs_until_ctrl_c_and_stops_every_child(tmp_path: Path) -> None:
    """The README's first command, on a checkout already set up (it installs nothing again):
    it runs until Ctrl-C, then stops the server, the agent and their workers."""
    errors = tmp_path / "stderr.txt"
    with open(errors, "w") as err:
        proc = subprocess.Popen(
            ["bash", str(REPO / "scripts" / "demo"), "--json", "--dir", str(tmp_path / "d")],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=_env(),
        )
    try:
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()))  # type: ignore[union-attr]
        reader.start()
        reader.join(DEMO_SECONDS)
        assert line and line[0], errors.read_text()[-5000:]
        out = json.loads(line[0])
        _check_the_demo(out)
        assert proc.poll() is None  # still running, serving the dashboard
        assert httpx.get(out["dashboard"], timeout=30, follow_redirects=True).status_code == 200
        # Still watching: a file dropped now is shown as it arrives, with its e-mail.
        watch = Path(out["watch"])
        (watch / "later").mkdir()
        (watch / "later" / "again.jpg").write_bytes((watch / "Desktop" / "mirror.jpg").read_bytes())
        deadline = time.monotonic() + DEMO_SECONDS
        while (
            "later/again.jpg" not in errors.read_text()
            or errors.read_text().count("e-mail to") < len(out["incidents"]) + 1
        ):
            assert proc.poll() is None and time.monotonic() < deadline, errors.read_text()[-5000:]
            time.sleep(0.5)
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        assert proc.wait(timeout=120) == 0, errors.read_text()[-5000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "stopped: server, agent and mail sink" in errors.read_text()
    _nothing_left(out)
