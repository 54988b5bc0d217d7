"""The dashboard's Notifications page and agents' health from the server's own view, against a
real server process with a real webhook receiver (SQLite and PostgreSQL)."""

from __future__ import annotations

import html
import json
import re
import tomllib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from support.dashboard import Browser, staff
from support.notifying import database, report, running, send, settings_toml
from support.receivers import WEBHOOK_SECRET, WebhookReceiver, wait_for
from support.server import Server, free_port, unique

from vigil.server.models import AuditEntry
from vigil.server.settings import parse_channel
from vigil.server.web.notify_pages import toml_lines

# Real processes over loopback: run in the suite's process-parallel group (scripts/test).
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def notified(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, WebhookReceiver]]:
    """A server with one server.toml webhook channel ("toml-hook"), silent after 2 s, a flood
    from 3 hosts."""
    hook = WebhookReceiver().start()
    toml = settings_toml(
        f'[[notify]]\nname = "toml-hook"\ntype = "webhook"\nurl = "{hook.url}"\n'
        f'secret = "{WEBHOOK_SECRET}"\n',
        silent_after="2s",
        flood_hosts=3,
    )
    home = tmp_path_factory.mktemp(f"webnotify-{request.param}")
    try:
        with database(request.param) as db, running(home, db, toml) as server:
            yield server, hook
    finally:
        hook.stop()


@pytest.fixture(scope="module")
def server(notified: tuple[Server, WebhookReceiver]) -> Server:
    return notified[0]


@pytest.fixture(scope="module")
def hook(notified: tuple[Server, WebhookReceiver]) -> WebhookReceiver:
    return notified[1]


@pytest.fixture
def admin(server: Server) -> Iterator[Browser]:
    with Browser(server) as b:
        assert b.login("admin", server.admin_password).status_code == 303
        yield b


def audited(server: Server, action: str) -> list[AuditEntry]:
    storage = server.storage()
    try:
        with storage.session() as s:
            return list(
                s.scalars(
                    select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
                )
            )
    finally:
        storage.close()


def hook_settings(url: str, **extra: str) -> str:
    return f'url = "{url}"\nsecret = "{WEBHOOK_SECRET}"\n' + "".join(
        f"{k} = {v}\n" for k, v in extra.items()
    )


def test_an_admin_adds_a_webhook_channel_and_its_test_arrives_signed(
    server: Server, hook: WebhookReceiver, admin: Browser
) -> None:
    name = unique("hook")
    page = admin.get("/ui/notifications")
    assert page.status_code == 200 and "toml-hook" in page.text
    r = admin.post(
        "/ui/notifications/channels",
        {"name": name, "type": "webhook", "settings": hook_settings(hook.url)},
    )
    assert r.status_code == 200, r.text
    assert f"Channel {name} added" in r.text
    # The secret is never sent back: "set", masked.
    assert WEBHOOK_SECRET not in r.text and WEBHOOK_SECRET[6:] not in r.text
    assert "set (********)" in r.text
    [added] = [e for e in audited(server, "notify.channel.add") if e.detail["name"] == name]
    assert added.actor == "user:admin" and WEBHOOK_SECRET not in json.dumps(added.detail)

    before = len(hook.hooks)
    r = admin.post(f"/ui/notifications/channels/{name}/test")
    assert r.status_code == 200 and "Test message" in r.text
    [sent] = wait_for(
        lambda: [
            h for h in hook.hooks[before:] if json.loads(h.body)["type"] == "test" and h.verified
        ],
        "the signed test message",
    )
    assert sent.verified, sent.error
    assert audited(server, "notify.test")

    # Edit: a new filter, the secret left out is kept (the next test still arrives signed).
    r = admin.post(
        f"/ui/notifications/channels/{name}",
        {"type": "webhook", "settings": f'url = "{hook.url}"\ncategories = ["A"]\n'},
    )
    assert r.status_code == 200, r.text
    assert "categories: A" in r.text
    # A mistake is refused with the same message server.toml would get.
    bad = admin.post(
        f"/ui/notifications/channels/{name}",
        {"type": "webhook", "settings": 'url = "ftp://x"\n'},
    )
    assert bad.status_code == 422 and "http:// or https://" in bad.text
    not_toml = admin.post(
        "/ui/notifications/channels", {"name": unique("x"), "type": "webhook", "settings": "url ="}
    )
    assert not_toml.status_code == 422 and "not TOML" in not_toml.text
    before = len(hook.hooks)
    assert admin.post(f"/ui/notifications/channels/{name}/test").status_code == 200
    wait_for(
        lambda: [h for h in hook.hooks[before:] if json.loads(h.body)["type"] == "test"],
        "the second test",
    )
    assert all(h.verified for h in hook.hooks[before:])

    r = admin.post(f"/ui/notifications/channels/{name}/disable")
    assert r.status_code == 200 and f"Channel {name} disabled" in r.text
    assert admin.post(f"/ui/notifications/channels/{name}/test").status_code == 404
    assert [e for e in audited(server, "notify.channel.disable") if e.detail["name"] == name]


def test_a_failed_delivery_shows_with_its_error(server: Server, admin: Browser) -> None:
    name = unique("deadhook")
    # Nobody listens on this port: every attempt fails with a connection error.
    url = f"http://127.0.0.1:{free_port()}/hook"
    r = admin.post(
        "/ui/notifications/channels",
        {"name": name, "type": "webhook", "settings": hook_settings(url)},
    )
    assert r.status_code == 200, r.text
    assert admin.post(f"/ui/notifications/channels/{name}/test").status_code == 200

    def failing() -> str | None:
        page = admin.get("/ui/notifications").text
        section = page.split('id="failures"', 1)
        if len(section) < 2:
            return None
        failures = section[1].split("</table>", 1)[0]
        return failures if f"db:{name}" in failures else None

    failures = wait_for(failing, "the failing delivery on the page")
    row = failures.split(f"db:{name}", 1)[1].split("</tr>", 1)[0]
    assert "ConnectError" in html.unescape(row), row
    # The status filter shows only pending rows, this one among them.
    pending = admin.get("/ui/notifications", status="pending").text
    assert f"db:{name}" in pending
    assert f"db:{name}" not in admin.get("/ui/notifications", status="delivered").text
    assert admin.get("/ui/notifications", status="nonsense").status_code == 422
    # Drop it from the page: it is never tried again.
    row_id = re.findall(r'id="failures-(\d+)"', failures.split(f"db:{name}", 1)[0])[-1]
    assert admin.post(f"/ui/notifications/{row_id}/drop").status_code == 200
    dropped = admin.get("/ui/notifications", status="dropped").text
    assert f'id="outbox-{row_id}"' in dropped
    admin.post(f"/ui/notifications/channels/{name}/disable")


def test_toml_channels_cannot_be_changed_from_the_page(server: Server, admin: Browser) -> None:
    page = admin.get("/ui/notifications").text
    row = page.split('id="channel-toml-hook"', 1)[1].split("</tr>", 1)[0]
    assert "server.toml (read-only)" in row and "/disable" not in row and "<textarea" not in row
    assert WEBHOOK_SECRET not in page
    r = admin.post(
        "/ui/notifications/channels/toml-hook",
        {"type": "webhook", "settings": 'url = "https://elsewhere.example.org/"\n'},
    )
    assert r.status_code == 404 and "server.toml" in r.text
    r = admin.post("/ui/notifications/channels/toml-hook/disable")
    assert r.status_code == 404 and "server.toml" in r.text
    r = admin.post(
        "/ui/notifications/channels",
        {"name": "toml-hook", "type": "webhook", "settings": hook_settings("https://x.test/")},
    )
    assert r.status_code == 422 and "server.toml" in r.text
    assert (server.home / "server.toml").read_text().count("toml-hook") == 1


def test_reviewers_get_403_on_the_page_and_its_forms(server: Server) -> None:
    name, password = staff(server, "reviewer")
    with Browser(server) as b:
        assert b.login(name, password).status_code == 303
        assert b.get("/ui/notifications").status_code == 403
        assert "/ui/notifications" not in b.get("/ui/incidents").text
        for url, data in [
            ("/ui/notifications/channels", {"name": "x", "type": "webhook", "settings": ""}),
            ("/ui/notifications/channels/toml-hook/test", {}),
            ("/ui/notifications/channels/toml-hook/disable", {}),
            ("/ui/notifications/floods/1/release", {}),
            ("/ui/notifications/1/drop", {}),
        ]:
            assert b.post(url, data).status_code == 403, url
    assert not [e for e in audited(server, "notify.test") if e.actor == f"user:{name}"]


def test_csrf_is_refused(server: Server, admin: Browser) -> None:
    name = unique("csrf")
    form = {"name": name, "type": "webhook", "settings": hook_settings("https://x.test/")}
    assert admin.post("/ui/notifications/channels", {**form, "csrf_token": ""}).status_code == 403
    wrong = {**form, "csrf_token": "not-the-token"}
    assert admin.post("/ui/notifications/channels", wrong).status_code == 403
    # Another site's form, even with the token.
    r = admin.post("/ui/notifications/channels", form, headers={"Origin": "https://evil.test"})
    assert r.status_code == 403
    assert name not in admin.get("/ui/notifications").text


def test_a_flood_is_released_from_the_page(
    server: Server, hook: WebhookReceiver, admin: Browser
) -> None:
    entry = unique("logo")
    acks = []
    for n in range(4):
        _agent_id, agent = server.enroll(unique(f"flood{n}"))
        with agent:
            [ack] = send(agent, report(f"/img/logo{n}.png", entry=entry))
            acks.append(ack["incident"])
    page = admin.get("/ui/notifications").text
    flood_id = page.split(f"/ {entry}", 1)[0].rsplit('id="flood-', 1)[1].split('"', 1)[0]
    row = page.split(f'id="flood-{flood_id}"', 1)[1].split("</tr>", 1)[0]
    # The incident after the flood is held (those before it may have been sent already).
    assert "holding" in row
    count = int(re.findall(r"Release (\d+)", row)[0])
    assert count >= 1
    held = admin.get("/ui/notifications", status="held").text
    assert f"incident {acks[3]}</a>" in held

    r = admin.post(f"/ui/notifications/floods/{flood_id}/release")
    assert r.status_code == 200
    assert f"Flood {flood_id}: {count} notifications released" in r.text
    row = r.text.split(f'id="flood-{flood_id}"', 1)[1].split("</tr>", 1)[0]
    assert "released" in row
    wait_for(
        lambda: [h for h in hook.hooks if json.loads(h.body)["data"].get("id") == acks[3]],
        "the released notification",
    )
    [released] = [e for e in audited(server, "notify.release") if e.detail["hold"]]
    assert released.detail["hold"] == f"flood:{flood_id}" and released.actor == "user:admin"
    assert admin.post("/ui/notifications/floods/999999/drop").status_code == 404


def agents(server: Server, key: str) -> dict[str, dict[str, Any]]:
    with server.client(key) as c:
        r = c.get("/api/v1/agents")
        assert r.status_code == 200, r.text
        return {a["host"]: a for a in r.json()["items"]}


def test_agents_are_silent_after_silent_after_in_the_api_and_pages(
    server: Server, admin: Browser
) -> None:
    key = server.api_key("admin")
    host = unique("quiet")
    _agent_id, agent = server.enroll(host)
    sick = unique("sick")
    _sick_id, sick_agent = server.enroll(sick)
    with agent, sick_agent:
        assert agent.post("/api/v1/heartbeat", json={}).status_code == 200
        # server.toml says 2 s, not the 15 minutes of the default.
        silent = wait_for(
            lambda: (
                (a := agents(server, key)[host])["status"] == "silent"
                and "agent_silent" in a["conditions"]
                and a
            ),
            "the agent to be silent",
        )
        assert silent["conditions"] == ["agent_silent"]
        page = admin.get("/ui/agents").text
        row = page.split(f"<td>{host}</td>", 1)[1].split("</tr>", 1)[0]
        assert "h-silent" in row
        overview = admin.get("/ui/").text
        assert "silent: 0" not in overview
        # A reported problem is listed beside the status (which is about silence only).
        r = sick_agent.post("/api/v1/heartbeat", json={"catalog_error": "bad signature"})
        assert r.status_code == 200
        shown = agents(server, key)[sick]
        assert "catalog_rejected" in shown["conditions"]
        assert shown["status"] in ("ok", "silent")
        page = admin.get("/ui/agents").text
        row = page.split(f"<td>{sick}</td>", 1)[1].split("</tr>", 1)[0]
        assert "catalog_rejected" in row
    with httpx.Client(base_url=server.url) as anonymous:
        assert anonymous.get("/api/v1/agents").status_code == 401


def test_a_channels_settings_are_shown_as_toml_without_secrets() -> None:
    """What the edit form is filled with reads back as the same channel (secret added)."""
    config = {
        "type": "email",
        "host": "smtp.example.org",
        "port": 2525,
        "starttls": False,
        "username": "vigil",
        "password": 'hunter2-"quoted"',
        "from": "vigil@example.org",
        "to": ["a@example.org", "b@example.org"],
        "categories": ["A", "B"],
        "include_path": True,
    }
    channel = parse_channel("test", "notify", {**config, "name": "mail"}, "db", "mail")
    lines = toml_lines(channel.public())
    assert "hunter2" not in lines and "password" not in lines
    back = tomllib.loads(lines)
    again = parse_channel(
        "test", "notify", {**back, "type": "email", "password": config["password"]}, "db", "mail"
    )
    assert again == channel
