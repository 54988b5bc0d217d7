"""Notifications end to end: a real server process sends to a real SMTP server (aiosmtpd), a
webhook receiver verifying Standard Webhooks signatures, and syslog listeners on UDP and TCP;
silent and unhealthy agents, the flood guard and false-positive suppression, on SQLite and
PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.notifying import (
    PUBLIC_URL,
    Receivers,
    database,
    init,
    report,
    running,
    send,
    settings_toml,
)
from support.receivers import (
    SMTP_PASSWORD,
    SMTP_USER,
    Smtp,
    SyslogListener,
    WebhookReceiver,
    self_signed,
    wait_for,
)
from support.server import Server, free_port, run_cli, serve, unique

# Real processes over loopback: run in the suite's process-parallel group (scripts/test).
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def notified(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, str, Receivers]]:
    """A server notifying receivers of its own (incident ids repeat across databases);
    silent after 2 s, a flood from 3 hosts; its admin's API key."""
    found = Receivers(
        Smtp(free_port()).start(),
        WebhookReceiver().start(),
        SyslogListener("udp").start(),
        SyslogListener("tcp").start(),
    )
    home = tmp_path_factory.mktemp(f"notify-{request.param}")
    toml = settings_toml(found.toml(), silent_after="2s", flood_hosts=3)
    try:
        with database(request.param) as db, running(home, db, toml) as server:
            yield server, server.api_key("admin"), found
    finally:
        found.smtp.stop()
        found.hook.stop()
        found.udp.stop()
        found.tcp.stop()


@pytest.fixture(scope="module")
def notifying(notified: tuple[Server, str, Receivers]) -> tuple[Server, str]:
    return notified[0], notified[1]


@pytest.fixture(scope="module")
def receivers(notified: tuple[Server, str, Receivers]) -> Receivers:
    return notified[2]


def outbox(server: Server | str, key: str, incident: int) -> list[dict[str, Any]]:
    """The outbox rows of one incident (from a server, or a server's URL)."""
    url = server if isinstance(server, str) else server.url
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
        r = c.get("/api/v1/notifications", params={"incident": incident})
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"]
        return items


def delivered(server: Server, key: str, incident: int, count: int) -> list[dict[str, Any]]:
    """Wait until `count` rows of the incident are delivered."""

    def check() -> list[dict[str, Any]] | None:
        rows = outbox(server, key, incident)
        done = [r for r in rows if r["status"] == "delivered"]
        return rows if len(done) >= count else None

    rows: list[dict[str, Any]] = wait_for(check, f"{count} deliveries of incident {incident}")
    return rows


def hooks_about(receivers: Receivers, incident: int) -> list[Any]:
    return [h for h in receivers.hook.hooks if json.loads(h.body)["data"].get("id") == incident]


def test_an_incident_reaches_every_channel(
    notifying: tuple[Server, str], receivers: Receivers
) -> None:
    server, key = notifying
    host = unique("ws")
    _agent_id, agent = server.enroll(host)
    secret_name = unique("abusive-file-name")
    with agent:
        [ack] = send(agent, report(f"/home/alice/{secret_name}.jpg", entry=unique("e")))
    incident = ack["incident"]
    rows = delivered(server, key, incident, 4)
    assert sorted(r["channel"] for r in rows) == [
        "toml:hook",
        "toml:mail",
        "toml:syslog-tcp",
        "toml:syslog-udp",
    ]
    assert all(r["attempts"] == 1 and r["last_error"] is None for r in rows)

    [mail] = wait_for(lambda: receivers.smtp.about(incident), "the e-mail")
    assert mail["To"] == "security@example.org, dpo@example.org"
    text = mail.get_content()
    assert host in text and "category: A" in text and "set: police" in text
    assert f"{PUBLIC_URL}/incidents/{incident}" in text
    assert "first seen:" in text
    assert secret_name not in mail.as_string()

    [hook] = wait_for(lambda: hooks_about(receivers, incident), "the webhook")
    assert hook.verified, hook.error
    body = json.loads(hook.body)
    assert body["type"] == "incident.created"
    assert body["data"]["host"] == host and body["data"]["path"] is None
    assert body["data"]["url"] == f"{PUBLIC_URL}/incidents/{incident}"
    # webhook-id is the outbox row's stable id: receivers dedupe by it.
    assert hook.headers["webhook-id"] in {r["uid"] for r in rows}

    for listener in (receivers.udp, receivers.tcp):
        [line] = wait_for(lambda lst=listener: lst.about(incident), f"{listener.protocol} syslog")
        assert line["version"] == "1" and line["app"] == "vigil" and line["msgid"] == "incident"
        # auth facility (4), critical (2): a match.
        assert int(line["pri"]) == 4 * 8 + 2
        assert line["params"]["host"] == host and line["params"]["set"] == "police"
        assert line["msg"].startswith("\ufeff")
        assert secret_name not in json.dumps(line)


def test_a_resend_or_merge_notifies_no_one_again(
    notifying: tuple[Server, str], receivers: Receivers
) -> None:
    server, key = notifying
    _agent_id, agent = server.enroll()
    first = report("/data/a.jpg", entry=unique("e"))
    with agent:
        [ack] = send(agent, first)
        send(agent, first)  # the spool resends
        send(agent, {**first, "id": unique("r"), "kind": "sha1"})  # the same file, merged
    delivered(server, key, ack["incident"], 4)
    assert len(outbox(server, key, ack["incident"])) == 4


def test_channel_filters_and_a_database_channel(
    notifying: tuple[Server, str], receivers: Receivers
) -> None:
    """A channel added over the API (as the dashboard does) with a category filter; listed
    with its source, its secret masked; a test message goes through it."""
    server, key = notifying
    second = WebhookReceiver().start()
    try:
        config = {
            "type": "webhook",
            "url": second.url,
            "secret": second.secret,
            "categories": ["B"],
        }
        name = unique("hook-b")
        with server.client(key) as c:
            r = c.put(f"/api/v1/notify/channels/{name}", json={"config": config})
            assert r.status_code == 200, r.text
            listed = {ch["name"]: ch for ch in c.get("/api/v1/notify/channels").json()["items"]}
            assert listed["mail"]["source"] == "toml"
            assert listed["mail"]["options"]["password"] == "********"
            assert listed[name]["source"] == "db"
            assert listed[name]["options"]["secret"] == "********"
            bad = c.put("/api/v1/notify/channels/x", json={"config": {"type": "webhook"}})
            assert bad.status_code == 422 and "'url'" in bad.json()["detail"]
            assert c.put("/api/v1/notify/channels/mail", json={"config": config}).status_code == 422
        _agent_id, agent = server.enroll()
        with agent:
            [a] = send(agent, report("/x/a.jpg", entry=unique("e"), category="A"))
            [b] = send(agent, report("/x/b.jpg", entry=unique("e"), category="B"))
        delivered(server, key, b["incident"], 5)
        delivered(server, key, a["incident"], 4)
        assert len(outbox(server, key, a["incident"])) == 4
        wait_for(
            lambda: [
                h for h in second.hooks if json.loads(h.body)["data"].get("id") == b["incident"]
            ],
            "B's hook",
        )
        assert all(json.loads(h.body)["data"].get("id") != a["incident"] for h in second.hooks)
        with server.client(key) as c:
            test = c.post(f"/api/v1/notify/channels/{name}/test")
            assert test.status_code == 200, test.text
            wait_for(
                lambda: [h for h in second.hooks if json.loads(h.body)["type"] == "test"],
                "the test message",
            )
            assert c.post(f"/api/v1/notify/channels/{name}/disable").status_code == 200
            assert c.post("/api/v1/notify/channels/mail/disable").status_code == 404
    finally:
        second.stop()


def test_email_over_starttls_with_auth(notifying: tuple[Server, str], tmp_path: Path) -> None:
    """STARTTLS to an SMTP server that requires it before AUTH, its certificate checked
    against the channel's `ca_file`; a channel without the CA fails (certificate refused)."""
    server, key = notifying
    context, ca_file = self_signed(tmp_path)
    smtp = Smtp(free_port(), tls=context).start()
    config = {
        "type": "email",
        "host": "127.0.0.1",
        "port": smtp.port,
        "starttls": True,
        "username": SMTP_USER,
        "password": SMTP_PASSWORD,
        "from": "vigil@example.org",
        "to": ["tls@example.org"],
    }
    try:
        with server.client(key) as c:
            good, bad = unique("tls-mail"), unique("tls-nocheck")
            r = c.put(
                f"/api/v1/notify/channels/{good}",
                json={"config": {**config, "ca_file": str(ca_file)}},
            )
            assert r.status_code == 200, r.text
            assert (
                c.put(f"/api/v1/notify/channels/{bad}", json={"config": config}).status_code == 200
            )
            ok = c.post(f"/api/v1/notify/channels/{good}/test").json()["id"]
            refused = c.post(f"/api/v1/notify/channels/{bad}/test").json()["id"]

            def row(row_id: int) -> dict[str, Any]:
                items = c.get("/api/v1/notifications", params={"limit": 1000}).json()["items"]
                return next(i for i in items if i["id"] == row_id)

            wait_for(lambda: row(ok)["status"] == "delivered", "the STARTTLS test message")
            # The module's server also alerts every channel to its agents going silent
            # (silent_after = 2s), so other messages may share this box.
            subjects = [m["Subject"] for m in smtp.box.messages]
            assert subjects.count("[Vigil] test notification") == 1, subjects
            wait_for(lambda: row(refused)["attempts"] >= 1, "a refused attempt")
            assert "certificate" in row(refused)["last_error"].lower()
            for name in (good, bad):
                assert c.post(f"/api/v1/notify/channels/{name}/disable").status_code == 200
    finally:
        smtp.stop()


def test_the_outbox_is_for_admins_only(notifying: tuple[Server, str]) -> None:
    server, _key = notifying
    reviewer = server.user(unique("rev"), "reviewer")
    with server.client(reviewer) as c:
        assert c.get("/api/v1/notifications").status_code == 403
        assert c.get("/api/v1/notify/channels").status_code == 403
        assert c.get("/api/v1/floods").status_code == 403


def test_a_silent_agent_raises_one_incident_per_episode(
    notifying: tuple[Server, str], receivers: Receivers
) -> None:
    server, key = notifying
    host = unique("quiet")
    agent_id, agent = server.enroll(host)
    with agent, server.client(key) as staff:
        assert agent.post("/api/v1/heartbeat", json={"catalog_version": "1"}).status_code == 200

        def silent() -> list[dict[str, Any]]:
            items = staff.get("/api/v1/incidents", params={"host": host}).json()["items"]
            return [i for i in items if i["kind"] == "agent_silent"]

        [incident] = wait_for(silent, "the silent-agent incident")
        assert incident["agent"] == agent_id and incident["detection"] == "server"
        assert incident["path"] == "" and incident["entry"] == {"id": "", "category": None}
        [hook] = wait_for(lambda: hooks_about(receivers, incident["id"]), "its webhook")
        assert hook.verified
        [mail] = wait_for(lambda: receivers.smtp.about(incident["id"]), "its e-mail")
        assert "agent silent" in str(mail["Subject"])
        # Back: the episode ends with a comment, no new incident.
        assert agent.post("/api/v1/heartbeat", json={}).status_code == 200
        detail = staff.get(f"/api/v1/incidents/{incident['id']}").json()
        assert any("heartbeat received" in c["text"] for c in detail["comments"])
        # Silent again: a second episode, a second incident.
        second = wait_for(
            lambda: [i for i in silent() if i["id"] != incident["id"]], "a new episode"
        )
        assert len(second) == 1


def test_heartbeat_conditions_raise_and_end_incidents(notifying: tuple[Server, str]) -> None:
    server, key = notifying
    host = unique("sick")
    _agent_id, agent = server.enroll(host)
    unhealthy = {
        "catalog_error": "signature did not verify",
        "catalog_age_seconds": 3 * 86400,
        "watch": {"healthy": False, "errors": ["inotify watch limit reached"]},
    }
    with agent, server.client(key) as staff:
        for _ in range(2):  # a condition reported twice is still one incident
            assert agent.post("/api/v1/heartbeat", json=unhealthy).status_code == 200
        items = staff.get("/api/v1/incidents", params={"host": host}).json()["items"]
        kinds = sorted(i["kind"] for i in items if i["kind"] != "agent_silent")
        assert kinds == ["catalog_rejected", "catalog_stale", "watcher_unhealthy"]
        rejected = next(i for i in items if i["kind"] == "catalog_rejected")
        delivered(server, key, rejected["id"], 4)
        assert agent.post("/api/v1/heartbeat", json={"catalog_age_seconds": 60}).status_code == 200
        detail = staff.get(f"/api/v1/incidents/{rejected['id']}").json()
        assert [c["text"] for c in detail["comments"]][0].startswith("catalog update rejected")
        assert any(c["text"].startswith("reported well") for c in detail["comments"])
        bad = agent.post("/api/v1/heartbeat", json={"catalog_age_seconds": -1})
        assert bad.status_code == 422


def test_flood_guard_holds_an_entrys_notifications(
    notifying: tuple[Server, str], receivers: Receivers
) -> None:
    server, key = notifying
    entry = unique("logo")
    acks = []
    for n in range(5):
        _agent_id, agent = server.enroll(unique(f"flood{n}"))
        with agent:
            [ack] = send(agent, report(f"/img/logo{n}.png", entry=entry, category="C"))
            acks.append(ack["incident"])
    with server.client(key) as staff:
        [flood] = [f for f in staff.get("/api/v1/floods").json()["items"] if f["entry"] == entry]
        assert flood["state"] == "holding" and flood["hosts"] == 3
        incident = staff.get(f"/api/v1/incidents/{flood['incident']}").json()
        assert incident["kind"] == "entry_flood" and incident["entry"]["id"] == entry
        assert incident["host"] == "3 hosts"
        # The flood's own incident is notified at once ...
        delivered(server, key, flood["incident"], 4)
        # ... the entry's later incidents wait.
        for later in acks[3:]:
            rows = outbox(server, key, later)
            assert {r["status"] for r in rows} == {"held"}, rows
            assert {r["hold"] for r in rows} == {f"flood:{flood['id']}"}
        r = staff.post(f"/api/v1/floods/{flood['id']}/release")
        assert r.status_code == 200 and r.json()["released"] >= 8
        for later in acks[3:]:
            delivered(server, key, later, 4)
        assert staff.post("/api/v1/floods/999999/drop").status_code == 404


def test_a_false_positive_is_suppressed_for_that_file(
    notifying: tuple[Server, str], receivers: Receivers
) -> None:
    server, key = notifying
    entry = unique("e")
    _a, first = server.enroll()
    _b, second = server.enroll()
    with first, second, server.client(key) as staff:
        [one] = send(first, report("/a/same.jpg", entry=entry))
        delivered(server, key, one["incident"], 4)
        r = staff.patch(f"/api/v1/incidents/{one['incident']}", json={"status": "false_positive"})
        assert r.status_code == 200, r.text
        # The same file elsewhere: recorded, counted, notifies no one.
        [two] = send(second, {**report("/a/same.jpg", entry=entry), "path": "/b/copy.jpg"})
        assert two["outcome"] == "created"
        [again] = send(second, {**report("/a/same.jpg", entry=entry), "path": "/b/copy.jpg"})
        assert again["outcome"] == "merged"
        assert staff.get(f"/api/v1/incidents/{two['incident']}").json()["seen_count"] == 2
        assert outbox(server, key, two["incident"]) == []
        # Another file matching the same entry still notifies.
        [other] = send(second, report("/b/other.jpg", entry=entry))
        delivered(server, key, other["incident"], 4)


def test_an_smtp_server_down_gets_the_mail_when_back_once(
    notifying: tuple[Server, str],
) -> None:
    server, key = notifying
    late = Smtp(free_port())
    category = unique("late")
    with server.client(key) as staff:
        config = {
            "type": "email",
            "host": "127.0.0.1",
            "port": late.port,
            "starttls": False,
            "username": "vigil",
            "password": "s3cret-smtp-password",
            "from": "vigil@example.org",
            "to": ["late@example.org"],
            "categories": [category],
        }
        name = unique("late-mail")
        assert (
            staff.put(f"/api/v1/notify/channels/{name}", json={"config": config}).status_code == 200
        )
        _agent_id, agent = server.enroll()
        with agent:
            [ack] = send(agent, report("/late/x.jpg", entry=unique("e"), category=category))
        incident = ack["incident"]

        def failed_twice() -> list[dict[str, Any]]:
            rows = [r for r in outbox(server, key, incident) if r["channel"] == f"db:{name}"]
            return [r for r in rows if r["attempts"] >= 2 and r["status"] == "pending"]

        [row] = wait_for(failed_twice, "two failed attempts")
        assert row["last_error"] and "s3cret" not in row["last_error"]
        late.start()
        try:
            wait_for(lambda: late.about(incident), "the late e-mail")
            rows = delivered(server, key, incident, 5)
            [mine] = [r for r in rows if r["channel"] == f"db:{name}"]
            assert mine["status"] == "delivered" and mine["last_error"] is None
            assert len(late.about(incident)) == 1
        finally:
            late.stop()
        assert staff.post(f"/api/v1/notify/channels/{name}/disable").status_code == 200
    log = (server.home / "server.log").read_text()
    assert f"to channel {name} failed (attempt 1)" in log
    assert f"delivered to channel {name}" in log
    assert "s3cret" not in log


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_restart_delivers_what_was_left_once(kind: str, tmp_path: Path) -> None:
    """Rows left undelivered when the server stops are delivered after it starts again, by
    two server processes sharing the database, each row once."""
    smtp = Smtp(free_port())
    toml = settings_toml(
        "[[notify]]\n"
        'type = "email"\nhost = "127.0.0.1"\n'
        f"port = {smtp.port}\nstarttls = false\n"
        'username = "vigil"\npassword = "s3cret-smtp-password"\n'
        'from = "vigil@example.org"\nto = ["a@example.org"]\n'
    )
    with database(kind) as db:
        with running(tmp_path, db, toml) as server:
            key = server.api_key("admin")
            _agent_id, agent = server.enroll()
            with agent:
                acks = send(agent, *[report(f"/r/{n}.jpg", entry=unique("e")) for n in range(10)])
            incidents = [a["incident"] for a in acks]
            wait_for(
                lambda: all(outbox(server, key, i)[0]["attempts"] >= 1 for i in incidents),
                "a failed attempt of each",
            )
        smtp.start()
        try:
            with serve(tmp_path) as first, serve(tmp_path) as second:
                assert first != second

                def all_sent() -> bool:
                    return all(
                        outbox(url, key, i)[0]["status"] == "delivered"
                        for i in incidents
                        for url in (first, second)
                    )

                wait_for(all_sent, "every row delivered after the restart")
            for incident in incidents:
                assert len(smtp.about(incident)) == 1
        finally:
            smtp.stop()


def test_server_toml_mistakes_stop_the_start(tmp_path: Path) -> None:
    init(tmp_path, "")
    (tmp_path / "server.toml").write_text(
        '[[notify]]\ntype = "webhook"\nurl = "ftp://x"\nsecret = "whsec_dGVzdA=="\n'
    )
    done = run_cli("server", "run", "--home", str(tmp_path), "--listen", f"127.0.0.1:{free_port()}")
    assert done.returncode != 0
    assert str(tmp_path / "server.toml") in done.stderr
    assert "[notify #1] key 'url'" in done.stderr and "http://" in done.stderr
