"""The dashboard over HTTP against a real server process: login, sessions, CSRF, roles, audit,
pages and exports (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, select, text
from support.dashboard import Browser, form_token, incidents, staff
from support.server import Server, run_cli, serve, unique

from vigil.server.models import AuditEntry, Incident, User
from vigil.server.web.sessions import FAILURES_PER_CLIENT

# Real processes over loopback: run in the suite's process-parallel group (scripts/test).
pytestmark = pytest.mark.e2e

POSTGRES_URL = os.environ.get(
    "VIGIL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def audit_rows(server: Server, **where: object) -> list[AuditEntry]:
    """Audit entries matching `where` (column = value), oldest first."""
    storage = server.storage()
    try:
        with storage.session() as s:
            q = select(AuditEntry).order_by(AuditEntry.id)
            for column, value in where.items():
                q = q.where(getattr(AuditEntry, column) == value)
            return list(s.scalars(q))
    finally:
        storage.close()


def user_id_of(server: Server, name: str) -> int:
    storage = server.storage()
    try:
        with storage.session() as s:
            found = s.scalar(select(User.id).where(User.name == name))
            assert found is not None
            return found
    finally:
        storage.close()


def incident_status(server: Server, incident_id: int) -> str:
    storage = server.storage()
    try:
        with storage.session() as s:
            found = s.get(Incident, incident_id)
            assert found is not None
            return found.status
    finally:
        storage.close()


@pytest.fixture(scope="module")
def admin(server: Server) -> tuple[str, str]:
    return "admin", server.admin_password


def test_login_logout_and_audit(server: Server) -> None:
    name, password = staff(server, "reviewer")
    with Browser(server) as b:
        r = b.get("/ui/incidents")
        assert r.status_code == 303 and r.headers["location"] == "/ui/login?next=/ui/incidents"
        r = b.login(name, password)
        assert r.status_code == 303, r.text
        cookie = r.headers.get_list("set-cookie")
        session_cookie = next(c for c in cookie if c.startswith("vigil_session="))
        assert "HttpOnly" in session_cookie and "SameSite=lax" in session_cookie
        assert b.get("/ui/incidents").status_code == 200
        assert b.get("/ui/").status_code == 200
        secret = b.http.cookies["vigil_session"]
        assert b.post("/ui/logout").status_code == 303
        # The old cookie is dead on the server, not just deleted in the browser.
        b.http.cookies.set("vigil_session", secret)
        assert b.get("/ui/incidents").status_code == 303
    actions = [e.action for e in audit_rows(server, actor=f"user:{name}")]
    assert actions[:2] == ["login", "incident.list"] and "logout" in actions
    log = (server.home / "server.log").read_text()
    assert password not in log and secret not in log


def test_wrong_password_is_refused_and_audited(server: Server) -> None:
    name, password = staff(server, "reviewer")
    with Browser(server) as b:
        r = b.login(name, password + "x")
        assert r.status_code == 401
        assert "Wrong user name or password" in r.text
        assert "vigil_session" not in b.http.cookies
        assert b.get("/ui/incidents").status_code == 303
    (failed,) = audit_rows(server, actor=f"user:{name}", action="login.failed")
    assert failed.detail == {"client": "127.0.0.1"}
    assert password not in (server.home / "server.log").read_text()


def test_login_rate_limit_per_user_name(server: Server) -> None:
    name, password = staff(server, "auditor")
    with Browser(server) as b:
        for _ in range(5):
            assert b.login(name, "guess").status_code == 401
        # Even the right password waits now.
        r = b.login(name, password)
        assert r.status_code == 429
        assert "Too many failed logins" in r.text
        assert int(r.headers["retry-after"]) > 0
    assert audit_rows(server, actor=f"user:{name}", action="login.limited")
    # Another user from the same address is not locked out by it.
    other, other_password = staff(server, "auditor")
    with Browser(server) as b:
        assert b.login(other, other_password).status_code == 303


def test_revoked_sessions_and_disabled_users_are_logged_out(
    server: Server, admin: tuple[str, str]
) -> None:
    name, password = staff(server, "reviewer")
    with Browser(server) as user, Browser(server) as boss:
        assert user.login(name, password).status_code == 303
        assert boss.login(*admin).status_code == 303
        assert name in boss.get("/ui/users").text
        user_id = user_id_of(server, name)
        r = boss.post(f"/ui/users/{user_id}/sessions/revoke")
        assert r.status_code == 303, r.text
        assert user.get("/ui/incidents").status_code == 303
        # A new login works; disabling the user ends it and refuses the next login.
        assert user.login(name, password).status_code == 303
        assert user.get("/ui/incidents").status_code == 200
        assert boss.post(f"/ui/users/{user_id}/disable").status_code == 303
        assert user.get("/ui/incidents").status_code == 303
        assert user.login(name, password).status_code == 401
    actions = {e.action for e in audit_rows(server, actor="user:admin")}
    assert {"session.revoke", "user.disable"} <= actions


def test_csrf_is_refused(server: Server) -> None:
    name, password = staff(server, "reviewer")
    (incident,) = incidents(server, "/csrf.jpg")
    url = f"/ui/incidents/{incident}"
    with Browser(server) as b:
        assert b.login(name, password).status_code == 303
        # No token at all.
        r = b.http.post(url, data={"status": "in_review"})
        assert r.status_code == 403 and "missing CSRF token" in r.text
        # A wrong one.
        assert b.post(url, {"status": "in_review", "csrf_token": "x" * 43}).status_code == 403
        # The right token in the form but not in the cookie (another browser's cookie).
        cookie = b.http.cookies["vigil_csrf"]
        b.http.cookies.set("vigil_csrf", "y" * 43)
        assert b.post(url, {"status": "in_review", "csrf_token": cookie}).status_code == 403
        b.http.cookies.set("vigil_csrf", cookie)
        # The right token from another site.
        evil = {"Origin": "https://evil.example"}
        assert b.post(url, {"status": "in_review"}, headers=evil).status_code == 403
        cross = {"Sec-Fetch-Site": "cross-site"}
        assert b.post(url, {"status": "in_review"}, headers=cross).status_code == 403
        assert incident_status(server, incident) == "new"
        # The token as htmx sends it (header) from the same origin works.
        r = b.http.post(
            url,
            data={"status": "in_review"},
            headers={
                "X-CSRF-Token": b.token,
                "Origin": server.url,
                "Sec-Fetch-Site": "same-origin",
            },
        )
        assert r.status_code == 303, r.text
    assert incident_status(server, incident) == "in_review"
    with Browser(server) as b:
        # The login form too: no pre-session token, no login.
        b.http.get("/ui/login")
        r = b.http.post("/ui/login", data={"username": name, "password": password})
        assert r.status_code == 403


def test_roles_are_enforced_on_the_server(server: Server, admin: tuple[str, str]) -> None:
    (incident,) = incidents(server, "/roles.jpg")
    url = f"/ui/incidents/{incident}"
    reviewer, auditor = staff(server, "reviewer"), staff(server, "auditor")
    with Browser(server) as b:
        assert b.login(*reviewer).status_code == 303
        assert b.get("/ui/users").status_code == 403
        r = b.post("/ui/users", {"name": unique("mallory"), "role": "admin"})
        assert r.status_code == 403
        assert b.get("/ui/audit").status_code == 403
        assert b.post("/ui/hashsets/police/remove").status_code == 403
        assert b.get("/ui/notifications").status_code == 403
        assert b.post(url, {"status": "in_review", "comment": "looking"}).status_code == 303
    with Browser(server) as b:
        assert b.login(*auditor).status_code == 303
        assert b.get(url).status_code == 200
        assert b.get("/ui/audit").status_code == 200
        r = b.post(url, {"status": "confirmed"})
        assert r.status_code == 403 and "auditor role may not" in r.text
        assert b.post("/ui/export", {"format": "csv"}).status_code == 403
        assert b.get("/ui/users").status_code == 403
    assert incident_status(server, incident) == "in_review"
    with Browser(server) as b:
        assert b.login(*admin).status_code == 303
        assert b.get("/ui/users").status_code == 200
        assert b.get("/ui/notifications").status_code == 200
    with httpx.Client(base_url=server.url) as anonymous:
        assert anonymous.post(url, data={"status": "confirmed"}).status_code == 401


def test_view_and_changes_are_audited_and_shown(server: Server) -> None:
    (incident,) = incidents(server, "/home/alice/audited.jpg", category="2")
    name, password = staff(server, "reviewer")
    url = f"/ui/incidents/{incident}"
    with Browser(server) as b:
        assert b.login(name, password).status_code == 303
        page = b.get(url)
        assert page.status_code == 200
        for text in (
            "/home/alice/audited.jpg",
            "police",
            "e1",
            "realtime",
            "md5",
            "alice",
            "4,321",
        ):
            assert text in page.text
        assert b.post(url, {"status": "confirmed"}).status_code == 409  # not from "new"
        for step in ("in_review", "confirmed", "handed_to_police"):
            assert b.post(url, {"status": step, "comment": f"now {step}"}).status_code == 303
        page = b.get(url)
        assert "now handed_to_police" in page.text and "Handed to police" in page.text
        assert b.post(url, {"status": "", "comment": "  "}).status_code == 422
    rows = audit_rows(server, incident_id=incident)
    mine = [(e.action, (e.detail or {}).get("status")) for e in rows if e.actor == f"user:{name}"]
    assert mine == [
        ("incident.view", None),
        ("incident.update", ["new", "in_review"]),
        ("incident.update", ["in_review", "confirmed"]),
        ("incident.update", ["confirmed", "handed_to_police"]),
        ("incident.view", None),
    ]


def test_incident_list_filters_and_pages(server: Server) -> None:
    host = unique("listhost")
    made = incidents(server, *(f"/list/{n}.jpg" for n in range(60)), host=host, category="3")
    name, password = staff(server, "auditor")
    with Browser(server) as b:
        assert b.login(name, password).status_code == 303
        seen: list[int] = []
        r = b.get("/ui/incidents", host=host, category="3", status="new")
        for _ in range(len(made)):
            assert r.status_code == 200, r.text
            seen += [int(x) for x in re.findall(r'href="/ui/incidents/(\d+)"', r.text)]
            more = re.search(r'href="([^"]+)" rel="next"', r.text)
            if not more:
                break
            r = b.get(more.group(1).replace("&amp;", "&"))
        else:
            raise AssertionError("the pages never end")
        assert seen == sorted(made, reverse=True)
        r = b.get("/ui/incidents", host=host, category="nope")
        assert "No incidents match" in r.text
        assert b.get("/ui/incidents", client="not-an-address").status_code == 422
        assert b.get("/ui/incidents", status="lost").status_code == 422
        assert b.get("/ui/incidents", since="yesterday").status_code == 422
        assert b.get("/ui/incidents/999999999").status_code == 404


def test_the_client_address_in_the_list_and_on_the_page(server: Server) -> None:
    host = unique("gwhost")
    (gateway,) = incidents(server, "http://photos.test/c.jpg", host=host, client="2001:db8::44")
    (local,) = incidents(server, "/home/alice/c.jpg", host=host)
    with Browser(server) as b:
        assert b.login(*staff(server, "auditor")).status_code == 303
        page = b.get(f"/ui/incidents/{gateway}")
        assert page.status_code == 200
        assert "<dt>Client</dt><dd>2001:db8::44</dd>" in page.text
        assert (
            "<dt>File times</dt><dd>written 2026-01-02T03:04:05+00:00, "
            "changed 2026-01-02T03:04:06+00:00</dd>"
        ) in page.text
        assert "<dt>Client</dt><dd>—</dd>" in b.get(f"/ui/incidents/{local}").text
        listed = b.get("/ui/incidents", host=host, client="2001:DB8:0::44")
        assert listed.status_code == 200
        ids = [int(x) for x in re.findall(r'href="/ui/incidents/(\d+)"', listed.text)]
        assert ids == [gateway]
        assert "client 2001:db8::44" in listed.text
        assert 'value="2001:DB8:0::44"' in listed.text  # the filter as typed stays in its box


def test_export_of_confirmed_incidents(server: Server, admin: tuple[str, str]) -> None:
    host = unique("exporthost")
    confirmed, handed, fresh = incidents(
        server, "/e/confirmed.jpg", "/e/handed.jpg", "/e/new.jpg", host=host, client="192.0.2.9"
    )
    key = server.api_key("admin")
    with server.client(key) as c:
        for i, steps in ((confirmed, ["confirmed"]), (handed, ["confirmed", "handed_to_police"])):
            for step in steps:
                assert c.patch(f"/api/v1/incidents/{i}", json={"status": step}).status_code == 200
        r = c.get("/api/v1/incidents/export", params={"format": "vics"})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/json")
        doc = json.loads(r.text)
        assert doc["@odata.context"].endswith("2.0.xml/US/$metadata#Media")
        media = {m["MediaID"]: m for m in doc["value"]}
        assert confirmed in media and handed in media and fresh not in media
        m = media[confirmed]
        assert m["MD5"] == m["MD5"].upper() and len(m["MD5"]) == 32
        assert m["Category"] == 1
        assert m["MediaFiles"][0]["FilePath"] == "/e/confirmed.jpg"
        assert m["MediaFiles"][0]["SourceID"] == host
        # VICS's file times: Written (modified) and Change (inode changed); no birth time known.
        assert m["MediaFiles"][0]["Written"] == "2026-01-02T03:04:05+00:00"
        assert m["MediaFiles"][0]["Change"] == "2026-01-02T03:04:06+00:00"
        assert "Created" not in m["MediaFiles"][0]
        only = c.get("/api/v1/incidents/export", params={"format": "csv", "status": "confirmed"})
        assert only.status_code == 200
        rows = list(csv.DictReader(io.StringIO(only.text)))
        ids = {int(row["id"]) for row in rows}
        assert confirmed in ids and handed not in ids and fresh not in ids
        row = next(row for row in rows if int(row["id"]) == confirmed)
        assert row["path"] == "/e/confirmed.jpg" and row["host"] == host and row["md5"]
        assert row["client"] == "192.0.2.9" and row["owner"] == "alice"
        assert (row["file_modified"], row["file_created"]) == ("2026-01-02T03:04:05+00:00", "")
        bad = c.get("/api/v1/incidents/export", params={"format": "csv", "status": "new"})
        assert bad.status_code == 422
        assert c.get("/api/v1/incidents/export", params={"format": "xml"}).status_code == 422
    with server.client(server.user(unique("aud"), "auditor")) as c:
        assert c.get("/api/v1/incidents/export").status_code == 403
    with Browser(server) as b:
        assert b.login(*admin).status_code == 303
        assert b.get("/ui/export").status_code == 200
        r = b.post("/ui/export", {"format": "csv", "status": ["confirmed", "handed_to_police"]})
        assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
        ids = {int(row["id"]) for row in csv.DictReader(io.StringIO(r.text))}
        assert {confirmed, handed} <= ids and fresh not in ids
    exported = audit_rows(server, action="incident.export")
    assert len(exported) >= 3
    assert {confirmed, handed} <= set(exported[-1].detail["incidents"])  # type: ignore[index]


def test_security_headers_everywhere(server: Server) -> None:
    with httpx.Client(base_url=server.url) as c:
        for path in ("/healthz", "/ui/login", "/api/v1/incidents", "/ui/static/vigil.css"):
            r = c.get(path)
            csp = r.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
            assert "unsafe-inline" not in csp
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["referrer-policy"] == "same-origin"
            # Plain HTTP here: HSTS only over HTTPS.
            assert "strict-transport-security" not in r.headers
        page = c.get("/ui/login").text
        assert "<script>" not in page and "style=" not in page and " on" + "click" not in page


def test_users_hashsets_agents_audit_pages(server: Server, admin: tuple[str, str]) -> None:
    lists = Path(__file__).resolve().parents[3] / "shared" / "formats"
    name = unique("web-set")
    with Browser(server) as b:
        assert b.login(*admin).status_code == 303
        # A new user: the password is shown once and works.
        newbie = unique("newbie")
        r = b.post("/ui/users", {"name": newbie, "role": "auditor"})
        assert r.status_code == 200, r.text
        password = re.search(r'id="new-password">([^<]+)<', r.text)
        assert password is not None
        assert b.post("/ui/users", {"name": newbie, "role": "auditor"}).status_code == 409
        assert b.post("/ui/users", {"name": "bad name!", "role": "auditor"}).status_code == 422
        with Browser(server) as other:
            assert other.login(newbie, password.group(1)).status_code == 303
        # A hash list uploaded goes through the engine's importer.
        sample = (lists / "example.md5sum.txt").read_bytes()
        r = b.post(
            "/ui/hashsets",
            {"name": name},
            files={"file": ("example.md5sum.txt", sample, "text/plain")},
        )
        assert r.status_code == 200, r.text
        assert f"Imported {name}" in r.text
        r = b.post("/ui/hashsets", {}, files={"file": ("junk.bin", b"\x00\x01 not a list", "x/y")})
        assert r.status_code == 422 and "junk.bin" in r.text
        assert name in b.get("/ui/hashsets").text
        assert b.post(f"/ui/hashsets/{name}/remove").status_code == 303
        assert name not in b.get("/ui/hashsets").text
        agent_id, agent = server.enroll(unique("agenthost"))
        agent.close()
        page = b.get("/ui/agents")
        assert agent_id in page.text and "<svg" in page.text
        assert b.post(f"/ui/agents/{agent_id}/revoke").status_code == 303
        page = b.get("/ui/audit", action="hashset.import")
        assert page.status_code == 200 and name in page.text
        overview = b.get("/ui/")
        assert (
            "Incidents per day" in overview.text and "/ui/charts/incidents-per-day" in overview.text
        )
        chart = b.get("/ui/charts/incidents-per-day")
        assert chart.status_code == 200 and "<rect" in chart.text and "<html" not in chart.text
    with server.client() as c:
        listed = c.get(
            "/api/v1/agents", headers={"Authorization": f"Bearer {server.api_key('admin')}"}
        )
        assert [a["status"] for a in listed.json()["items"] if a["id"] == agent_id] == ["revoked"]
    actions = {e.action for e in audit_rows(server, actor="user:admin")}
    assert {"user.add", "hashset.import", "hashset.remove", "agent.revoke"} <= actions


def test_login_page_token_is_not_a_session(server: Server) -> None:
    with httpx.Client(base_url=server.url) as c:
        page = c.get("/ui/login")
        token = form_token(page.text)
        assert c.cookies["vigil_csrf"] == token
        assert c.get("/ui/incidents").status_code == 303


@pytest.fixture(params=["sqlite", "postgresql"])
def lone_home(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, str]]:
    """A server home of this test's own (its address gets locked out): (home, admin password)."""
    home = tmp_path_factory.mktemp("lone-server")
    args = ["server", "init", "--home", str(home)]
    schema = f"vigil_web_lone_{os.getpid()}"
    admin = None
    if request.param == "postgresql":
        admin = create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1))
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        sep = "&" if "?" in POSTGRES_URL else "?"
        args += ["--db", f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"]
    init = run_cli(*args)
    assert init.returncode == 0, init.stderr
    yield home, init.stdout.strip()
    if admin is not None:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


def test_login_rate_limit_per_address_survives_a_restart(lone_home: tuple[Path, str]) -> None:
    home, password = lone_home
    with serve(home) as url:
        server = Server(home, url, "", password, None)  # type: ignore[arg-type]
        with Browser(server) as b:
            for n in range(FAILURES_PER_CLIENT):
                assert b.login(f"nobody-{n}", "guess").status_code == 401
            # The address is locked out, for every name, even with the right password.
            r = b.login("admin", password)
            assert r.status_code == 429 and "Too many failed logins" in r.text
    with serve(home) as url:
        server = Server(home, url, "", password, None)  # type: ignore[arg-type]
        with Browser(server) as b:
            assert b.login("admin", password).status_code == 429


def test_idle_and_old_sessions_end(server: Server) -> None:
    from vigil.server.credentials import secret_sha256
    from vigil.server.models import WebSession
    from vigil.server.web.sessions import ABSOLUTE, IDLE

    def age(secret: str, **moved: object) -> None:
        storage = server.storage()
        try:
            with storage.session() as s:
                row = s.scalar(
                    select(WebSession).where(WebSession.secret_sha256 == secret_sha256(secret))
                )
                assert row is not None
                for column, value in moved.items():
                    setattr(row, column, value)
        finally:
            storage.close()

    name, password = staff(server, "auditor")
    now = datetime.now(UTC)
    with Browser(server) as idle, Browser(server) as old:
        assert idle.login(name, password).status_code == 303
        assert old.login(name, password).status_code == 303
        assert idle.get("/ui/incidents").status_code == 200
        age(idle.http.cookies["vigil_session"], last_seen_at=now - IDLE - timedelta(seconds=1))
        # Used within the idle time, but logged in longer ago than any session may last.
        age(old.http.cookies["vigil_session"], expires_at=now - timedelta(seconds=1))
        assert idle.get("/ui/incidents").status_code == 303
        assert old.get("/ui/incidents").status_code == 303
    assert ABSOLUTE > IDLE
