"""Driving the dashboard over HTTP as a browser would: login form, cookies, CSRF tokens."""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from support.server import Server

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def form_token(html: str) -> str:
    """The CSRF token a page's forms carry."""
    found = _TOKEN.search(html)
    assert found, "no CSRF token in the page"
    return found.group(1)


class Browser:
    """A cookie-keeping HTTP client for the dashboard of `server` (redirects not followed)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.url, timeout=60, follow_redirects=False)
        self.token = ""

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def login(self, name: str, password: str) -> httpx.Response:
        """Fill in and send the login form; keeps the session's CSRF token on success."""
        page = self.http.get("/ui/login")
        assert page.status_code == 200, page.text
        r = self.http.post(
            "/ui/login",
            data={"username": name, "password": password, "csrf_token": form_token(page.text)},
        )
        if r.status_code == 303:
            self.token = self.http.cookies["vigil_csrf"]
        return r

    def get(self, url: str, **params: Any) -> httpx.Response:
        """A page (`params` added to the query; without any, the URL's own query is kept)."""
        return self.http.get(url, params=params) if params else self.http.get(url)

    def post(self, url: str, data: dict[str, Any] | None = None, **kw: Any) -> httpx.Response:
        """A form, with the session's CSRF token unless `data` names one."""
        body = {"csrf_token": self.token, **(data or {})}
        return self.http.post(url, data=body, **kw)


def staff(server: Server, role: str) -> tuple[str, str]:
    """A new user with `role`: (name, password)."""
    name = f"{role}-{uuid.uuid4().hex[:8]}"
    return name, server.secret("user", "add", name, "--role", role)


def match(
    path: str,
    *,
    category: str = "1",
    entry: str = "e1",
    kind: str = "md5",
    client: str | None = None,
) -> dict[str, Any]:
    """One match report as an agent sends it."""
    digest = hashlib.sha256(path.encode()).hexdigest()
    return {
        "id": uuid.uuid4().hex,
        "path": path,
        "member": None,
        "user": "alice",
        "owner": "alice",
        "client": client,
        "size": 4321,
        "media_type": "image/jpeg",
        "hashset": "police",
        "entry": {"id": entry, "category": category},
        "kind": kind,
        "distance": 0,
        "transform": None,
        "detection": "realtime",
        "seen_at": datetime.now(UTC).isoformat(),
        "fingerprints": {
            "md5": hashlib.md5(path.encode()).hexdigest(),
            "sha1": hashlib.sha1(path.encode()).hexdigest(),
            "sha256": digest,
            "pdq": hashlib.sha256(b"pdq" + path.encode()).hexdigest(),
        },
        "catalog_version": "7",
        "file_times": {"modified": "2026-01-02T03:04:05+00:00", "changed": "2026-01-02T03:04:06Z"},
    }


def incidents(server: Server, *paths: str, host: str | None = None, **kw: Any) -> list[int]:
    """Incidents made the way agents make them (enrol, report); their ids."""
    _, agent = server.enroll(host)
    with agent:
        r = agent.post("/api/v1/incidents", json={"incidents": [match(p, **kw) for p in paths]})
    assert r.status_code == 200, r.text
    return [int(a["incident"]) for a in r.json()["results"]]
