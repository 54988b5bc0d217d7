"""An enrolled gateway: its catalog from a real `vigil server` (signed, TUF), its incidents
through the agent's durable spool to the server's API, with client address, user and URL.
On SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.agent import incidents, wait_for
from support.gateway import Conn, respmod, start_gateway
from support.planted import Tree
from support.server import Server, run_cli, unique

# Real processes over loopback: run in the suite's process-parallel group (scripts/test).
pytestmark = pytest.mark.e2e


def test_enrolled_gateway_reports_to_the_server(
    server: Server, planted: Tree, tmp_path: Path
) -> None:
    home = tmp_path / "gw-home"
    home.mkdir()
    name = unique("gateway")
    done = run_cli(
        "agent", "enroll", "--home", str(home), "--server", server.url,
        "--token", server.secret("token"), "--name", name,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # The agent's intervals, read by an enrolled gateway too.
    (home / "agent.toml").write_text('heartbeat = "1s"\ncatalog_poll = "2s"\n')
    g = start_gateway(home, "--mode", "block")
    try:
        key = server.api_key("admin")
        url = f"http://photos.test/{name}/cat.jpg"
        known = (planted.root / "alt/chelsea-q50.jpg").read_bytes()

        def blocked() -> bool:
            # Until the signed catalog arrived, the home's own (empty) one matches nothing.
            with Conn(g.port) as c:
                r = respmod(
                    c,
                    g.port,
                    known,
                    url=url,
                    headers="X-Client-IP: 192.0.2.44\r\nX-Client-Username: bob\r\n",
                )
            return r.http_status == 403

        wait_for("the server's catalog in the gateway", blocked)
        found = wait_for("the incident in the API", lambda: incidents(server, key, name))
        assert len(found) == 1
        incident = found[0]
        assert incident["path"] == url
        assert incident["client"] == "192.0.2.44"
        assert incident["owner"] is None
        assert incident["user"] == "bob"
        assert incident["detection"] == "gateway"
        assert incident["entry"]["id"] == "502"
        assert incident["kind"] == "pdq"
        # An unknown photo passes and raises nothing.
        with Conn(g.port) as c:
            r = respmod(c, g.port, (planted.root / "other/moon.jpg").read_bytes(), url=url + "?2")
        assert r.status == 204
        # A client header that is not an address: the incident still arrives, without a client
        # (the server would refuse the report with it, and it would be set aside).
        odd = url + "?odd"
        with Conn(g.port) as c:
            r = respmod(c, g.port, known, url=odd, headers="X-Client-IP: unknown\r\n")
        assert r.http_status == 403
        later = wait_for(
            "the second incident in the API",
            lambda: [i for i in incidents(server, key, name) if i["path"] == odd],
        )
        assert [(i["client"], i["owner"]) for i in later] == [(None, None)]
        # Another machine fetching the first URL is an incident of its own: the first
        # client's is neither merged into it nor renamed.
        with Conn(g.port) as c:
            r = respmod(c, g.port, known, url=url, headers="X-Client-IP: 2001:DB8:0::7\r\n")
        assert r.http_status == 403
        wait_for(
            "the second client's incident",
            lambda: len([i for i in incidents(server, key, name) if i["path"] == url]) > 1,
        )
        mine = [i for i in incidents(server, key, name) if i["path"] == url]
        assert sorted(i["client"] for i in mine) == ["192.0.2.44", "2001:db8::7"]
        assert [i["seen_count"] for i in mine] == [1, 1]
        assert not (home / "incidents.jsonl").exists()
        with server.client(key) as c:
            agents = c.get("/api/v1/agents").json()["items"]
        # The gateway is known to the server as one of its agents (it sends heartbeats).
        assert [a["host"] for a in agents if a["host"] == name] == [name]
    finally:
        assert g.stop() == 0, g.log_text()[-3000:]
