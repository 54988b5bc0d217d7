"""The server's HTTP API, driven over HTTP against a real server process."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from support.server import Server, unique

from vigil.server import accounts
from vigil.server.models import AuditEntry

# Real processes over loopback: run in the suite's process-parallel group (scripts/test).
pytestmark = pytest.mark.e2e


def fingerprints(seed: str) -> dict[str, str]:
    """Fingerprints of a made-up item."""
    return {
        "md5": hashlib.md5(seed.encode()).hexdigest(),
        "sha1": hashlib.sha1(seed.encode()).hexdigest(),
        "sha256": hashlib.sha256(seed.encode()).hexdigest(),
        "pdq": hashlib.sha256(b"pdq" + seed.encode()).hexdigest(),
    }


def report(
    path: str,
    kind: str = "md5",
    *,
    entry: str = "e1",
    category: str | None = "A",
    seen_at: datetime | None = None,
    report_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One match report as an agent sends it."""
    body: dict[str, Any] = {
        "id": report_id or unique("r"),
        "path": path,
        "member": None,
        "user": "alice",
        "owner": "alice",
        "size": 1234,
        "media_type": "image/jpeg",
        "hashset": "police",
        "entry": {"id": entry, "category": category},
        "kind": kind,
        "distance": 0 if kind != "pdq" else 4,
        "transform": None,
        "detection": "realtime",
        "seen_at": (seen_at or datetime.now(UTC)).isoformat(),
        "fingerprints": fingerprints(path),
        "catalog_version": "7",
    }
    body.update(extra)
    return body


def send(agent: httpx.Client, *reports: dict[str, Any]) -> list[dict[str, Any]]:
    """Post a batch; the acknowledgements."""
    r = agent.post("/api/v1/incidents", json={"incidents": list(reports)})
    assert r.status_code == 200, r.text
    results: list[dict[str, Any]] = r.json()["results"]
    return results


def incidents(client: httpx.Client, /, **params: Any) -> list[dict[str, Any]]:
    """Every incident matching `params`, following `next` to the last page."""
    items: list[dict[str, Any]] = []
    r = client.get("/api/v1/incidents", params=params)
    while True:
        assert r.status_code == 200, r.text
        body = r.json()
        items += body["items"]
        if body["next"] is None:
            return items
        r = client.get(body["next"])


@pytest.fixture(scope="module")
def keys(server: Server) -> dict[str, str]:
    """An API key per role."""
    return {
        "admin": server.api_key("admin"),
        "reviewer": server.user(unique("rev"), "reviewer"),
        "auditor": server.user(unique("aud"), "auditor"),
    }


def test_health_readiness_metrics_openapi(server: Server) -> None:
    with server.client() as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        ready = c.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["database"] == "ok"
        assert isinstance(ready.json()["catalog_generation"], int)
        metrics = c.get("/metrics")
        assert metrics.status_code == 200
        assert (
            "vigil_server_reports_total" in metrics.text
            or "vigil_server_heartbeats_total" in metrics.text
        )
        spec = c.get("/openapi.json").json()
        assert "/api/v1/incidents" in spec["paths"]
        assert "/api/v1/enroll" in spec["paths"]


def test_enrolment_token_is_single_use(server: Server) -> None:
    token = server.secret("token")
    with server.client() as c:
        first = c.post("/api/v1/enroll", json={"token": token, "host": unique("pc")})
        assert first.status_code == 200, first.text
        assert first.json()["credential"].startswith("va_")
        again = c.post("/api/v1/enroll", json={"token": token, "host": unique("pc")})
        assert again.status_code == 403
        unknown = c.post("/api/v1/enroll", json={"token": "vt_" + "x" * 43, "host": "pc"})
        assert unknown.status_code == 403


def test_an_expired_token_is_refused(server: Server) -> None:
    storage = server.storage()
    try:
        with storage.session() as s:
            token = accounts.new_enrolment_token(s, lifetime=timedelta(seconds=-1))
    finally:
        storage.close()
    with server.client() as c:
        r = c.post("/api/v1/enroll", json={"token": token, "host": unique("pc")})
    assert r.status_code == 403


def test_heartbeat_shows_in_the_agents_list(server: Server, keys: dict[str, str]) -> None:
    host = unique("pc")
    agent_id, agent = server.enroll(host)
    with agent:
        r = agent.post(
            "/api/v1/heartbeat",
            json={"catalog_version": "12", "spool_length": 3, "watch": {"healthy": True}},
        )
        assert r.status_code == 200, r.text
    for role in ("admin", "auditor"):
        with server.client(keys[role]) as c:
            listed = c.get("/api/v1/agents")
        assert listed.status_code == 200
        mine = [a for a in listed.json()["items"] if a["id"] == agent_id]
        assert len(mine) == 1
        assert mine[0]["host"] == host
        assert mine[0]["status"] == "ok"
        assert mine[0]["catalog_version"] == "12"
        assert mine[0]["spool_length"] == 3
        assert mine[0]["last_heartbeat"] is not None
    with server.client(keys["reviewer"]) as c:
        assert c.get("/api/v1/agents").status_code == 403


def test_intake_is_idempotent(server: Server, keys: dict[str, str]) -> None:
    host = unique("pc")
    _, agent = server.enroll(host)
    one = report("/home/alice/a.jpg")
    with agent:
        first = send(agent, one)
        again = send(agent, one)
    assert first[0]["outcome"] == "created"
    assert again == [{**first[0], "outcome": "duplicate"}]
    with server.client(keys["admin"]) as c:
        found = incidents(c, host=host)
    assert len(found) == 1
    assert found[0]["seen_count"] == 1
    assert found[0]["id"] == first[0]["incident"]


def test_one_entry_matched_by_several_kinds_is_one_incident(
    server: Server, keys: dict[str, str]
) -> None:
    host = unique("pc")
    agent_id, agent = server.enroll(host)
    seen = datetime.now(UTC).replace(microsecond=0)
    path = "/home/alice/Downloads/b.jpg"
    with agent:
        acks = send(
            agent,
            report(path, "md5", seen_at=seen),
            report(path, "sha1", seen_at=seen),
            report(path, "pdq", seen_at=seen, transform="rotate90"),
        )
        assert len({a["incident"] for a in acks}) == 1
        assert [a["outcome"] for a in acks] == ["created", "merged", "merged"]
        with server.client(keys["reviewer"]) as c:
            (incident,) = incidents(c, host=host)
        assert incident["kind"] == "sha1"
        assert incident["kinds"] == ["sha1", "md5", "pdq"]
        assert incident["distance"] == 0
        assert incident["seen_count"] == 1
        assert incident["agent"] == agent_id
        assert incident["entry"] == {"id": "e1", "category": "A"}
        assert incident["fingerprints"] == fingerprints(path)
        assert incident["status"] == "new"
        assert incident["detection"] == "realtime"
        # Seen again by a later scan: the same incident, counted.
        later = seen + timedelta(minutes=5)
        send(agent, report(path, "md5", seen_at=later))
    with server.client(keys["reviewer"]) as c:
        (incident,) = incidents(c, host=host)
    assert incident["seen_count"] == 2
    assert datetime.fromisoformat(incident["last_seen"]) == later
    assert datetime.fromisoformat(incident["first_seen"]) == seen
    # Another entry, or a member inside the file, is another incident (reported here by a
    # second agent on the host: an agent's incidents are its own).
    _, agent = server.enroll(host)
    with agent:
        send(agent, report(path, "md5", entry="e2"), report(path, "md5", member="x/y.jpg"))
    with server.client(keys["reviewer"]) as c:
        # (Another agent on the same host: its own incidents.)
        assert len(incidents(c, host=host)) == 3


def test_every_contract_field_is_in_an_incident(server: Server, keys: dict[str, str]) -> None:
    host = unique("pc")
    _, agent = server.enroll(host)
    with agent:
        send(agent, report("/v.mp4", "sha256", segment={"start": 1.0, "end": 4.0}))
    with server.client(keys["auditor"]) as c:
        (incident,) = incidents(c, host=host)
    fields = (
        "id status host agent user owner client path member size media_type hashset entry kind kinds "
        "distance transform segment detection first_seen last_seen seen_count fingerprints "
        "catalog_version file_times"
    ).split()
    assert set(fields) <= set(incident)
    assert incident["segment"] == {"start": 1.0, "end": 4.0}
    assert set(incident["fingerprints"]) == {"md5", "sha1", "sha256", "pdq"}


def test_reports_cannot_carry_content(server: Server) -> None:
    _, agent = server.enroll()
    with agent:
        extra = agent.post(
            "/api/v1/incidents",
            json={"incidents": [report("/a.jpg", content="aGVsbG8=")]},
        )
        assert extra.status_code == 422
        not_hex = agent.post(
            "/api/v1/incidents",
            json={"incidents": [report("/a.jpg", fingerprints={"md5": "zz" * 16})]},
        )
        assert not_hex.status_code == 422
        bad_kind = agent.post("/api/v1/incidents", json={"incidents": [report("/a.jpg", "crc32")]})
        assert bad_kind.status_code == 422


def test_a_gateway_report_names_its_client(server: Server, keys: dict[str, str]) -> None:
    """A gateway's report carries the proxy client's address as `client` (IPv4 or IPv6, kept in
    its compressed form), the API returns it and filters by it; an agent's incident has none."""
    host = unique("gw")
    _, agent = server.enroll(host)
    gateway = {"detection": "gateway", "owner": None, "user": "bob"}
    with agent:
        v4, v6, local = send(
            agent,
            report("http://photos.test/a.jpg", client="192.0.2.44", **gateway),
            report("http://photos.test/b.jpg", client="2001:DB8:0:0::7", **gateway),
            report("/home/alice/c.jpg"),
        )
        for bad in ("10.0.0.256", "bob", "192.0.2.44/32", "", "1" * 300):
            refused = agent.post(
                "/api/v1/incidents",
                json={"incidents": [report("http://photos.test/x.jpg", client=bad, **gateway)]},
            )
            assert refused.status_code == 422, (bad, refused.text)
            assert "client" in refused.text
    with server.client(keys["auditor"]) as c:
        by_id = {i["id"]: i for i in incidents(c, host=host)}
        assert len(by_id) == 3  # the refused reports made nothing
        one = by_id[v4["incident"]]
        assert (one["client"], one["owner"], one["user"]) == ("192.0.2.44", None, "bob")
        assert by_id[v6["incident"]]["client"] == "2001:db8::7"
        assert by_id[local["incident"]]["client"] is None
        assert by_id[local["incident"]]["owner"] == "alice"
        single = c.get(f"/api/v1/incidents/{v6['incident']}").json()
        assert single["client"] == "2001:db8::7"
        found = incidents(c, host=host, client="2001:db8::0:7")  # however it is written
        assert [i["id"] for i in found] == [v6["incident"]]
        assert [i["id"] for i in incidents(c, client="192.0.2.44", host=host)] == [v4["incident"]]
        bad = c.get("/api/v1/incidents", params={"client": "bob"})
        assert bad.status_code == 422 and "IPv4 or IPv6" in bad.text


def test_an_agents_report_carries_the_files_times(server: Server, keys: dict[str, str]) -> None:
    """`file_times` (the agent's stat of the matched file) is kept in UTC, returned, replaced by
    a later sighting's, absent from a report without it, and refused when it is not a time."""
    host = unique("pc")
    _, agent = server.enroll(host)
    written = {"modified": "2026-03-01T10:00:00+02:00", "changed": "2026-03-01T08:30:00Z"}
    with agent:
        first, plain = send(
            agent,
            report("/home/alice/a.jpg", file_times=written),
            report("/home/alice/b.jpg"),
        )
        later = {"modified": "2026-04-02T00:00:00Z", "changed": "2026-04-02T00:00:01Z"}
        send(
            agent,
            report("/home/alice/a.jpg", "sha1", file_times=later, seen_at=datetime.now(UTC)),
        )
        for bad in ({"modified": "yesterday"}, {"written": "2026-01-01T00:00:00Z"}, "2026"):
            refused = agent.post(
                "/api/v1/incidents",
                json={"incidents": [report("/home/alice/x.jpg", file_times=bad)]},
            )
            assert refused.status_code == 422, (bad, refused.text)
            assert "file_times" in refused.text
    with server.client(keys["auditor"]) as c:
        by_id = {i["id"]: i for i in incidents(c, host=host)}
        assert len(by_id) == 2
        times = by_id[first["incident"]]["file_times"]
        assert times == {
            "modified": "2026-04-02T00:00:00+00:00",
            "changed": "2026-04-02T00:00:01+00:00",
            "created": None,
        }
        assert by_id[plain["incident"]]["file_times"] is None


def test_the_first_report_of_file_times_is_kept_in_utc(
    server: Server, keys: dict[str, str]
) -> None:
    host = unique("pc")
    _, agent = server.enroll(host)
    with agent:
        (one,) = send(
            agent,
            report(
                "/home/alice/a.jpg",
                file_times={
                    "modified": "2026-03-01T10:00:00+02:00",
                    "created": "2026-02-01T00:00:00",
                },
            ),
        )
    with server.client(keys["auditor"]) as c:
        incident = c.get(f"/api/v1/incidents/{one['incident']}").json()
    assert incident["file_times"] == {
        "modified": "2026-03-01T08:00:00+00:00",
        "changed": None,
        "created": "2026-02-01T00:00:00+00:00",
    }


def test_pages_walk_every_incident_newest_first(server: Server, keys: dict[str, str]) -> None:
    host = unique("pc")
    _, agent = server.enroll(host)
    with agent:
        acks = send(agent, *(report(f"/p/{i}.jpg") for i in range(25)))
    made = [a["incident"] for a in acks]
    with server.client(keys["admin"]) as c:
        first = c.get("/api/v1/incidents", params={"host": host, "limit": 10}).json()
        assert len(first["items"]) == 10
        assert first["next"].startswith(server.url)
        walked = incidents(c, host=host, limit=10)
        last_page = c.get("/api/v1/incidents", params={"host": host, "limit": 30}).json()
    assert [i["id"] for i in walked] == sorted(made, reverse=True)
    assert last_page["next"] is None


def test_filters(server: Server, keys: dict[str, str]) -> None:
    host = unique("pc")
    _, agent = server.enroll(host)
    category = unique("cat")
    old = datetime.now(UTC) - timedelta(days=30)
    with agent:
        acks = send(
            agent,
            report("/f/1.jpg", category=category),
            report("/f/2.jpg", category="B"),
            report("/f/3.jpg", category="B", seen_at=old),
        )
    with server.client(keys["reviewer"]) as c:
        r = c.patch(f"/api/v1/incidents/{acks[1]['incident']}", json={"status": "in_review"})
        assert r.status_code == 200
        by_category = incidents(c, category=category)
        assert [i["id"] for i in by_category] == [acks[0]["incident"]]
        in_review = incidents(c, host=host, status="in_review")
        assert [i["id"] for i in in_review] == [acks[1]["incident"]]
        since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
        recent = incidents(c, host=host, since=since)
        assert {i["id"] for i in recent} == {acks[0]["incident"], acks[1]["incident"]}
        assert c.get("/api/v1/incidents", params={"status": "lost"}).status_code == 422


def test_review_by_role(server: Server, keys: dict[str, str]) -> None:
    _, agent = server.enroll()
    with agent:
        (ack,) = send(agent, report("/r.jpg"))
    url = f"/api/v1/incidents/{ack['incident']}"
    with server.client(keys["auditor"]) as c:
        assert c.get(url).status_code == 200
        assert c.patch(url, json={"status": "confirmed"}).status_code == 403
    with server.client(keys["reviewer"]) as c:
        r = c.patch(url, json={"status": "confirmed", "comment": "matches the list"})
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "confirmed"
        assert r.json()["comments"][0]["text"] == "matches the list"
        assert c.patch(url, json={"status": "deleted"}).status_code == 422
        assert c.patch("/api/v1/incidents/999999999", json={"status": "new"}).status_code == 404
    with server.client(keys["admin"]) as c:
        r = c.patch(url, json={"status": "handed_to_police"})
        assert r.json()["status"] == "handed_to_police"
    with server.client("vk_" + "x" * 43) as c:
        assert c.get(url).status_code == 401
    with server.client() as c:
        assert c.get(url).status_code == 401


def test_a_revoked_agent_is_refused(server: Server, keys: dict[str, str]) -> None:
    agent_id, agent = server.enroll()
    with server.client(keys["reviewer"]) as c:
        assert c.post(f"/api/v1/agents/{agent_id}/revoke").status_code == 403
    with server.client(keys["admin"]) as c:
        assert c.post(f"/api/v1/agents/{agent_id}/revoke").status_code == 200
        listed = c.get("/api/v1/agents").json()["items"]
        assert [a["status"] for a in listed if a["id"] == agent_id] == ["revoked"]
    with agent:
        assert agent.post("/api/v1/heartbeat", json={}).status_code == 401
        r = agent.post("/api/v1/incidents", json={"incidents": [report("/x.jpg")]})
        assert r.status_code == 401
        # An agent's credential is not an API key, nor the other way round.
        assert agent.get("/api/v1/incidents").status_code == 401
    with server.client(keys["admin"]) as c:
        assert c.post("/api/v1/heartbeat", json={}).status_code == 401


def test_a_revoked_api_key_is_refused(server: Server) -> None:
    key = server.api_key("admin")
    with server.client(key) as c:
        assert c.get("/api/v1/incidents", params={"limit": 1}).status_code == 200
    storage = server.storage()
    try:
        with storage.session() as s:
            assert accounts.revoke_api_key(s, key)
    finally:
        storage.close()
    with server.client(key) as c:
        assert c.get("/api/v1/incidents", params={"limit": 1}).status_code == 401


def test_api_keys_are_made_listed_and_revoked_over_the_api(
    server: Server, keys: dict[str, str]
) -> None:
    """An admin makes a key for a user (its secret shown once) and revokes any key; a reviewer
    sees and revokes only their own; a revoked key is refused on its next request; audited."""
    reviewer = unique("rev")
    own = server.user(reviewer, "reviewer")
    with server.client(keys["admin"]) as admin:
        made = admin.post("/api/v1/apikeys", json={"user": reviewer})
        assert made.status_code == 201, made.text
        second = made.json()
        assert second["user"] == reviewer and second["revoked_at"] is None
        assert admin.post("/api/v1/apikeys", json={"user": unique("nobody")}).status_code == 404
        listed = admin.get("/api/v1/apikeys").json()["items"]
        assert {second["id"]} <= {k["id"] for k in listed if k["user"] == reviewer}
        assert all("key" not in k and "secret_sha256" not in k for k in listed)
        others = [k["id"] for k in listed if k["user"] != reviewer and k["revoked_at"] is None]
    with server.client(second["key"]) as c:
        mine = c.get("/api/v1/apikeys").json()["items"]
        assert {k["user"] for k in mine} == {reviewer} and len(mine) == 2
        # Another user's key is not the reviewer's to see or revoke.
        assert c.post(f"/api/v1/apikeys/{others[0]}/revoke").status_code == 404
        assert c.post("/api/v1/apikeys", json={"user": reviewer}).status_code == 403
        first = next(k["id"] for k in mine if k["id"] != second["id"])
        revoked = c.post(f"/api/v1/apikeys/{first}/revoke")
        assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    with server.client(own) as c:
        assert c.get("/api/v1/incidents", params={"limit": 1}).status_code == 401
    with server.client(keys["admin"]) as admin:
        assert admin.post(f"/api/v1/apikeys/{second['id']}/revoke").status_code == 200
        assert admin.post("/api/v1/apikeys/999999999/revoke").status_code == 404
    with server.client(second["key"]) as c:
        assert c.get("/api/v1/apikeys").status_code == 401
    storage = server.storage()
    try:
        with storage.session() as s:
            revocations = [
                (r.actor, (r.detail or {}).get("api_key"))
                for r in s.scalars(select(AuditEntry).where(AuditEntry.action == "apikey.revoke"))
            ]
    finally:
        storage.close()
    assert (f"user:{reviewer}", first) in revocations
    assert ("user:admin", second["id"]) in revocations


def test_views_and_changes_are_audited(server: Server, keys: dict[str, str]) -> None:
    host = unique("pc")
    agent_id, agent = server.enroll(host)
    with agent:
        (ack,) = send(agent, report("/audit.jpg"))
    incident_id = ack["incident"]
    with server.client(keys["reviewer"]) as c:
        incidents(c, host=host)
        c.get(f"/api/v1/incidents/{incident_id}")
        c.patch(
            f"/api/v1/incidents/{incident_id}", json={"status": "false_positive", "comment": "logo"}
        )
    storage = server.storage()
    try:
        with storage.session() as s:
            rows = list(s.scalars(select(AuditEntry).order_by(AuditEntry.id)))
    finally:
        storage.close()
    listed = [
        r
        for r in rows
        if r.action == "incident.list" and incident_id in (r.detail or {}).get("incidents", [])
    ]
    assert len(listed) == 1
    assert listed[0].actor.startswith("user:rev-")
    viewed = [r for r in rows if r.action == "incident.view" and r.incident_id == incident_id]
    assert len(viewed) == 1
    (changed,) = [r for r in rows if r.action == "incident.update" and r.incident_id == incident_id]
    assert changed.detail == {"status": ["new", "false_positive"], "comment": "logo"}
    assert any(r.action == "agent.enroll" and r.actor == f"agent:{agent_id}" for r in rows)
    assert any(r.action == "apikey.add" for r in rows)
