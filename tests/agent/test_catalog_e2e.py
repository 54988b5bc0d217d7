"""A tampered catalog update seen by a running agent, end to end: a real server publishes a new
list, a man in the middle alters the bundle on its way to a real `vigil agent run`; the agent
refuses it, keeps matching with the catalog it had, and the server hears of the refusal (the
agent's health and a `catalog_rejected` incident) until a genuine update is taken."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image
from support.agent import Fleet, RecordingProxy, drop, incidents, wait_for
from support.planted import Tree
from support.server import Server, run_cli, unique

from vigil.fingerprint.crypto import digest_bytes
from vigil.fingerprint.pdq import pdq_from_bytes
from vigil.hashsets.entry import Entry
from vigil.hashsets.export import write_vics

# Real processes over loopback: run in the suite's process-parallel group (scripts/test).
pytestmark = pytest.mark.e2e


def published(url: str) -> int:
    """The catalog version the server publishes."""
    return int(httpx.get(f"{url}/readyz", timeout=10).json().get("catalog_version") or 0)


def _flip_a_byte(path: str, body: bytes) -> bytes:
    """Alter every catalog bundle in flight (TUF metadata passes untouched)."""
    if "/tuf/targets/" not in path or not body:
        return body
    altered = bytearray(body)
    altered[len(altered) // 2] ^= 0x01
    return bytes(altered)


def _agent_view(server: Server, key: str, host: str) -> dict[str, Any]:
    with server.client(key) as c:
        r = c.get("/api/v1/agents")
        assert r.status_code == 200, r.text
    [item] = [a for a in r.json()["items"] if a["host"] == host]
    found: dict[str, Any] = item
    return found


def _new_list(tmp_path: Path) -> tuple[str, bytes, Path]:
    """A set of one picture of this test's own: (set name, the picture, the list file)."""
    pixels = np.random.default_rng().integers(0, 255, (256, 256, 3), np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    data = buffer.getvalue()
    md5, sha1, sha256 = digest_bytes(data)
    pdq = pdq_from_bytes(data, max_pixels=10**8).hash
    entry = Entry({"md5": md5, "sha1": sha1, "sha256": sha256, "pdq": pdq}, id="901", category="1")
    hashlist = tmp_path / "newer.json"
    with open(hashlist, "w") as f:
        write_vics([entry], f)
    return unique("newer"), data, hashlist


def test_a_tampered_update_is_refused_reported_and_the_old_catalog_still_matches(
    agent_server: Server, fleet: Fleet, planted: Tree, tmp_path: Path
) -> None:
    proxy = RecordingProxy(agent_server.url)
    try:
        agent = fleet.enrol(agent_server, url=proxy.url)  # polls every 2 s, heartbeats every 1 s
        agent.start()
        agent.wait_ready()
        key = agent_server.api_key("admin")
        genuine = published(agent_server.url)
        wait_for(
            "the agent on the published catalog",
            lambda: agent.status()["catalog"].get("version") == str(genuine),
        )

        # From now on every bundle reaching the agent is altered; the server publishes a list.
        proxy.alter = _flip_a_byte
        name, picture, hashlist = _new_list(tmp_path)
        done = run_cli(
            "--home", str(agent_server.home), "hashset", "import", "--name", name, str(hashlist)
        )
        assert done.returncode == 0, done.stderr
        newer = wait_for(
            "the new list published",
            lambda: (v := published(agent_server.url)) > genuine and v,
        )

        catalog = wait_for(
            "the agent's refusal",
            lambda: agent.assert_running() or (c := agent.status()["catalog"])["rejected"] and c,
        )
        assert "verification" in catalog["rejected"]
        assert catalog["version"] == str(genuine)  # the old catalog kept

        # The server hears of it: the agent's open condition, and an incident of its own.
        wait_for(
            "catalog_rejected in the agent's health",
            lambda: "catalog_rejected" in _agent_view(agent_server, key, agent.host)["conditions"],
        )
        [raised] = wait_for(
            "the catalog_rejected incident",
            lambda: [
                i
                for i in incidents(agent_server, key, agent.host)
                if i["kind"] == "catalog_rejected"
            ],
        )
        assert raised["detection"] == "server" and raised["status"] == "new"
        assert _agent_view(agent_server, key, agent.host)["catalog_version"] == str(genuine)

        # The old catalog still matches: an exact copy of a listed photo lands.
        drop(agent.watch / "kept/IMG_0042.jpg", planted.originals["rocket"])
        match = wait_for(
            "the incident of a file the old catalog lists",
            lambda: (
                agent.assert_running()
                or [i for i in incidents(agent_server, key, agent.host) if i["path"]]
            ),
        )
        assert [(i["path"], i["entry"]["id"], i["catalog_version"]) for i in match] == [
            (str(agent.watch / "kept/IMG_0042.jpg"), "503", str(genuine))
        ]

        # The man in the middle gone: the genuine update is taken, the condition ends, and the
        # new list matches a file dropped after that.
        proxy.alter = None
        wait_for(
            "the genuine update taken",
            lambda: (
                (c := agent.status()["catalog"])["version"] == str(newer) and c["rejected"] is None
            ),
        )
        wait_for(
            "the condition ended on the server",
            lambda: (
                "catalog_rejected" not in _agent_view(agent_server, key, agent.host)["conditions"]
            ),
        )
        drop(agent.watch / "later/new.png", picture)
        newly = wait_for(
            "the incident of the newly listed picture",
            lambda: (
                agent.assert_running()
                or [i for i in incidents(agent_server, key, agent.host) if i["hashset"] == name]
            ),
        )
        assert [(i["path"], i["entry"]["id"]) for i in newly] == [
            (str(agent.watch / "later/new.png"), "901")
        ]
        # Applying and verifying updates (each set's content digest) loads no NumPy into the
        # daemon: its memory is the agent's idle footprint.
        assert agent.proc is not None
        assert "numpy" not in Path(f"/proc/{agent.proc.pid}/maps").read_text()
    finally:
        proxy.close()
