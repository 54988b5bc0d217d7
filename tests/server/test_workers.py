"""`vigil server run --workers 2`: real server processes sharing one port and one home, on SQLite
and PostgreSQL. Each request is sent on a connection of its own, so requests land on either
process: metrics are summed over both, one process leads the background work (and another takes
over when it dies), login limits and sessions hold whichever process answers."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.dashboard import Browser, staff
from support.notifying import database, init, settings_toml
from support.receivers import wait_for
from support.server import Server, free_port, run_cli, serve, unique

# Real processes over loopback: run in the suite's process-parallel group (scripts/test).
pytestmark = pytest.mark.e2e

LEADS = re.compile(r"process (\d+) leads")
HEARTBEATS = re.compile(r"^vigil_server_heartbeats_total (\S+)$", re.M)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def workers(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server of two processes; agents are silent after 2 s."""
    home = tmp_path_factory.mktemp("workers")
    with database(request.param) as db:
        password, done = init(home, db)
        (home / "server.toml").write_text(settings_toml("", silent_after="2s"))
        with serve(home, "--workers", "2") as url:
            yield Server(home, url, db, password, done)  # type: ignore[arg-type]


def fresh(url: str, method: str, path: str, **kw: Any) -> httpx.Response:
    """One request on a new connection (so the kernel may hand it to either process)."""
    with httpx.Client(base_url=url, timeout=60) as c:
        return c.request(method, path, **kw)


def heartbeats_counted(url: str) -> float:
    found = HEARTBEATS.search(fresh(url, "GET", "/metrics").text)
    assert found, "no heartbeat counter in /metrics"
    return float(found.group(1))


def leaders(server: Server) -> list[int]:
    return [int(pid) for pid in LEADS.findall((server.home / "server.log").read_text())]


def test_metrics_count_the_heartbeats_of_every_process(workers: Server) -> None:
    enrolled = [workers.enroll() for _ in range(30)]
    credentials = [c.headers["authorization"] for _, c in enrolled]
    for _, c in enrolled:
        c.close()
    before = heartbeats_counted(workers.url)

    def beat(authorization: str) -> int:
        return fresh(
            workers.url,
            "POST",
            "/api/v1/heartbeat",
            headers={"Authorization": authorization},
            json={"catalog_version": "1"},
        ).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(beat, credentials * 2)) == {200}
    # Whichever process answers /metrics counts all 60.
    for _ in range(6):
        assert heartbeats_counted(workers.url) == before + 60


def test_login_limits_and_sessions_hold_across_processes(workers: Server) -> None:
    name, password = staff(workers, "auditor")
    with Browser(workers) as b:
        # No keep-alive: every request of this browser on a new connection.
        b.http = httpx.Client(
            base_url=workers.url,
            timeout=60,
            follow_redirects=False,
            limits=httpx.Limits(max_keepalive_connections=0),
        )
        assert b.login(name, password).status_code == 303
        for _ in range(10):
            assert b.get("/ui/incidents").status_code == 200
        assert b.post("/ui/logout").status_code == 303
        for _ in range(4):
            assert b.get("/ui/incidents").status_code == 303
        for _ in range(5):
            assert b.login(name, "guess").status_code == 401
        assert b.login(name, password).status_code == 429


def test_one_process_leads_and_another_takes_over(workers: Server) -> None:
    (first,) = wait_for(lambda: leaders(workers), "a leader")
    assert int((workers.home / "leader.lock").read_text()) == first
    os.kill(first, signal.SIGKILL)
    (second,) = wait_for(lambda: leaders(workers)[1:], "another leader")
    assert second != first
    assert fresh(workers.url, "GET", "/readyz").status_code == 200
    # The new leader runs the silence check: an agent that never beats is silent, once.
    host = unique("quiet")
    _agent_id, agent = workers.enroll(host)
    agent.close()
    key = workers.api_key("admin")

    def silent() -> list[dict[str, Any]]:
        items = fresh(
            workers.url,
            "GET",
            "/api/v1/incidents",
            params={"host": host},
            headers={"Authorization": f"Bearer {key}"},
        ).json()["items"]
        return [i for i in items if i["kind"] == "agent_silent"]

    wait_for(silent, "the silent-agent incident")
    time.sleep(3)  # the check runs every 0.5 s: time for a duplicate to show
    assert len(silent()) == 1
    assert leaders(workers) == [first, second]


def test_a_home_that_cannot_serve_stops_the_start_with_one_message(tmp_path: Path) -> None:
    listen = f"127.0.0.1:{free_port()}"
    done = run_cli("server", "run", "--home", str(tmp_path), "--workers", "2", "--listen", listen)
    assert done.returncode != 0
    assert "vigil server init" in done.stderr
    init(tmp_path, "")
    (tmp_path / "server.toml").write_text('[agents]\nsilent_after = "soon"\n')
    done = run_cli("server", "run", "--home", str(tmp_path), "--workers", "2", "--listen", listen)
    assert done.returncode != 0
    assert str(tmp_path / "server.toml") in done.stderr and "silent_after" in done.stderr
    assert "Started server process" not in done.stderr
