"""End to end: a real server, real agents watching folders, files landing, incidents in the API."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import random
import zipfile
from datetime import datetime
from pathlib import Path

import pytest
from support.agent import Fleet, RecordingProxy, drop, incidents, spooled_paths, wait_for
from support.planted import Tree, encode, photo
from support.server import Server

from vigil.fingerprint.pdq import pdq_from_bytes

# Real processes over loopback: run in the suite's process-parallel group (scripts/test).
pytestmark = pytest.mark.e2e


def _fingerprints(data: bytes) -> list[str]:
    """Every fingerprint Vigil would compute of these bytes, as the report would spell it."""
    out = [
        hashlib.md5(data).hexdigest(),
        hashlib.sha1(data).hexdigest(),
        hashlib.sha256(data).hexdigest(),
    ]
    try:
        out.append(pdq_from_bytes(data, max_pixels=10**8).hash)
    except Exception:  # noqa: BLE001 — not an image: no PDQ to leak
        pass
    return out


def test_files_that_land_are_incidents_and_nothing_else_leaves(
    agent_server: Server, planted: Tree, fleet: Fleet
) -> None:
    """Exact and altered copies (renamed, resized, mirrored, rotated, in a nested zip) dropped
    into a watched folder each become an incident; everything the agent sent holds no file
    content and no fingerprint of a file or member that did not match."""
    proxy = RecordingProxy(agent_server.url)
    try:
        agent = fleet.enrol(agent_server, url=proxy.url)
        agent.start()
        agent.wait_ready()
        key = agent_server.api_key("admin")
        files: dict[str, bytes] = {}
        for p in planted.planted:
            files[p.rel] = (planted.root / p.rel).read_bytes()
        for name in planted.unrelated:
            files[name] = (planted.root / name).read_bytes()
        for rel, data in files.items():
            drop(agent.watch / rel, data)

        want = {(str(agent.watch / p.rel), p.member) for p in planted.planted}

        def arrived() -> bool:
            agent.assert_running()
            got = {(i["path"], i["member"]) for i in incidents(agent_server, key, agent.host)}
            return want <= got

        wait_for("every planted copy's incident", arrived)
        found = incidents(agent_server, key, agent.host)
        assert {(i["path"], i["member"]) for i in found} == want
        assert all(i["detection"] == "realtime" for i in found)
        by_path = {i["path"]: i for i in found}
        mirror = by_path[str(agent.watch / "alt/astronaut-mirror.jpg")]
        assert mirror["kind"] == "pdq" and mirror["transform"] is not None
        # The file's own times, from the stat the scan took (the reviewer's "when was it
        # written"); the filesystem keeps no birth time that Python reads on Linux.
        st = os.stat(mirror["path"])
        times = mirror["file_times"]
        assert datetime.fromisoformat(times["modified"]).timestamp() == pytest.approx(st.st_mtime)
        assert datetime.fromisoformat(times["changed"]).timestamp() == pytest.approx(st.st_ctime)

        status = agent.status()
        assert status["enrolled"] and status["running"]
        wait_for("an empty spool", lambda: agent.status()["spool_length"] == 0)
        agent.stop()
    finally:
        proxy.close()

    sent = b"".join(proxy.sent)
    assert b"/api/v1/incidents" in sent and b"/api/v1/heartbeat" in sent
    # No content: no stretch of any file, raw, hex or base64.
    for rel, data in files.items():
        mid = data[len(data) // 2 : len(data) // 2 + 48]
        for form in (mid, mid.hex().encode(), base64.b64encode(mid)):
            assert form not in sent, rel
    # No fingerprint of what did not match: unrelated photos, the zip itself, its other member.
    unmatched = [files[n] for n in planted.unrelated]
    unmatched.append(files["archive/outer.zip"])
    with zipfile.ZipFile(io.BytesIO(files["archive/outer.zip"])) as z:
        unmatched.append(z.read("notes.txt"))
        unmatched.append(z.read("inner.tar.gz"))
    for data in unmatched:
        for fp in _fingerprints(data):
            assert fp.encode() not in sent


def test_server_down_while_files_land(
    agent_server: Server, fleet: Fleet, planted: Tree, tmp_path: Path
) -> None:
    """50 known files land while the server cannot be reached (the agent talks to it through
    a proxy that is switched off): once it is back, all 50 incidents arrive, each once."""
    known = (planted.root / "docs/report.txt").read_bytes()
    proxy = RecordingProxy(agent_server.url)
    port = proxy.httpd.server_address[1]
    agent = fleet.enrol(agent_server, url=proxy.url)
    agent.start()
    agent.wait_ready()
    proxy.close()  # the server is gone, as far as the agent can tell
    for i in range(50):
        drop(agent.watch / f"offline/{i:03d}.jpg", known)
    wait_for("all 50 files in the spool", lambda: len(spooled_paths(agent.home)) == 50)
    again = _proxy_on(agent_server.url, port)
    try:
        key = agent_server.api_key("admin")
        wait_for("50 incidents", lambda: len(incidents(agent_server, key, agent.host)) >= 50)
        wait_for("an empty spool", lambda: agent.status()["spool_length"] == 0)
        found = incidents(agent_server, key, agent.host)
        assert len(found) == 50
        assert len({i["path"] for i in found}) == 50
        assert all(i["seen_count"] == 1 for i in found)
    finally:
        agent.stop()
        again.close()


def _proxy_on(upstream: str, port: int) -> RecordingProxy:
    """A proxy on a given port again (the agent keeps its server's URL)."""
    import time

    deadline = time.monotonic() + 60
    while True:
        try:
            return _bound_proxy(upstream, port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _bound_proxy(upstream: str, port: int) -> RecordingProxy:
    from http.server import ThreadingHTTPServer

    original = ThreadingHTTPServer.__init__

    def bind_port(self, address, handler, *a, **kw):  # type: ignore[no-untyped-def]
        original(self, ("127.0.0.1", port), handler, *a, **kw)

    ThreadingHTTPServer.__init__ = bind_port  # type: ignore[method-assign]
    try:
        return RecordingProxy(upstream)
    finally:
        ThreadingHTTPServer.__init__ = original  # type: ignore[method-assign]


def test_sigkill_during_a_burst(agent_server: Server, fleet: Fleet, planted: Tree) -> None:
    """100 known files land while the agent is killed (its whole process group, SIGKILL) three
    times at random moments and restarted: every file's incident arrives exactly once, seen
    once (all of a file's reports carry the time it was first seen, kept in the spool)."""
    rng = random.Random(12)
    base = photo("chelsea")
    agent = fleet.enrol(agent_server)
    agent.start()
    agent.wait_ready()
    kills = sorted(rng.sample(range(5, 95), 3))
    exact = (planted.root / "docs/report.txt").read_bytes()
    # Exact copies (four reports each: MD5, SHA-1, SHA-256, PDQ: a kill may fall between them)
    # and distinct re-encodings (a near match by PDQ).
    for i in range(100):
        data = exact if i % 2 else encode(base, quality=60 + i % 35)
        drop(agent.watch / f"burst/{i:03d}.jpg", data)
        if i in kills:
            agent.kill()
            agent.start()
            agent.wait_ready()
    key = agent_server.api_key("admin")
    wait_for("100 incidents", lambda: len(incidents(agent_server, key, agent.host)) >= 100)
    wait_for("an empty spool", lambda: agent.status()["spool_length"] == 0)
    found = incidents(agent_server, key, agent.host)
    assert sorted(i["path"] for i in found) == [
        str(agent.watch / f"burst/{i:03d}.jpg") for i in range(100)
    ]
    assert all(i["seen_count"] == 1 for i in found), [i for i in found if i["seen_count"] != 1]
    assert agent.runs == 4
