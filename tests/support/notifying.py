"""Fixtures of the notification tests: receivers, and servers with a server.toml of their own
(each on SQLite and on its own PostgreSQL schema)."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from support.receivers import (
    SMTP_PASSWORD,
    SMTP_USER,
    WEBHOOK_SECRET,
    Smtp,
    SyslogListener,
    WebhookReceiver,
)
from support.server import Server, postgres_schema, run_cli, serve, unique

POSTGRES_URL = os.environ.get(
    "VIGIL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
PUBLIC_URL = "https://vigil.test"


@contextmanager
def database(kind: str) -> Iterator[str]:
    """ "" for SQLite under the home; else a PostgreSQL schema of its own, dropped at the end."""
    if kind == "sqlite":
        yield ""
        return
    with postgres_schema(f"vigil_notify_{uuid.uuid4().hex[:8]}") as url:
        yield url


def init(home: Path, db: str) -> tuple[str, object]:
    """`vigil server init` (on `db` when given); the admin's password."""
    args = ["server", "init", "--home", str(home)]
    if db:
        args += ["--db", db]
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip(), done


def email_table(port: int, **extra: str) -> str:
    """A [[notify]] e-mail table for the test SMTP server on `port`."""
    lines = [
        "[[notify]]",
        'type = "email"',
        'host = "127.0.0.1"',
        f"port = {port}",
        "starttls = false",
        f'username = "{SMTP_USER}"',
        f'password = "{SMTP_PASSWORD}"',
        'from = "vigil@example.org"',
        'to = ["security@example.org", "dpo@example.org"]',
    ]
    lines += [f"{k} = {v}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


@dataclass
class Receivers:
    """Everything a server under test notifies."""

    smtp: Smtp
    hook: WebhookReceiver
    udp: SyslogListener
    tcp: SyslogListener

    def toml(self) -> str:
        return (
            email_table(self.smtp.port, name='"mail"')
            + f'\n[[notify]]\nname = "hook"\ntype = "webhook"\nurl = "{self.hook.url}"\n'
            f'secret = "{WEBHOOK_SECRET}"\n'
            f'\n[[notify]]\nname = "syslog-udp"\ntype = "syslog"\naddress = "{self.udp.address}"\n'
            f'\n[[notify]]\nname = "syslog-tcp"\ntype = "syslog"\naddress = "{self.tcp.address}"\n'
        )


def settings_toml(channels: str, *, silent_after: str = "15m", flood_hosts: int = 20) -> str:
    """A whole server.toml: short retries so a test need not wait long."""
    return (
        f'[server]\npublic_url = "{PUBLIC_URL}"\n\n'
        f'[agents]\nsilent_after = "{silent_after}"\n\n'
        f'[flood]\nhosts = {flood_hosts}\nwindow = "10m"\n\n'
        '[outbox]\nretry_base = "300ms"\nretry_max = "1s"\n\n' + channels
    )


@contextmanager
def running(home: Path, db: str, toml: str) -> Iterator[Server]:
    """A server initialised in `home` with `toml` as its server.toml, run until the block ends."""
    password, done = init(home, db)
    (home / "server.toml").write_text(toml)
    with serve(home) as url:
        yield Server(home, url, db, password, done)  # type: ignore[arg-type]


def report(
    path: str, *, entry: str, category: str | None = "A", kind: str = "md5"
) -> dict[str, Any]:
    """One match report as an agent sends it (fingerprints made up from `path`)."""
    seed = path.encode()
    return {
        "id": unique("r"),
        "path": path,
        "user": "alice",
        "size": 1234,
        "media_type": "image/jpeg",
        "hashset": "police",
        "entry": {"id": entry, "category": category},
        "kind": kind,
        "distance": 0,
        "detection": "realtime",
        "seen_at": datetime.now(UTC).isoformat(),
        "fingerprints": {
            "md5": hashlib.md5(seed).hexdigest(),
            "sha1": hashlib.sha1(seed).hexdigest(),
            "sha256": hashlib.sha256(seed).hexdigest(),
        },
    }


def send(agent: httpx.Client, *reports: dict[str, Any]) -> list[dict[str, Any]]:
    """Post a batch of reports; the acknowledgements."""
    r = agent.post("/api/v1/incidents", json={"incidents": list(reports)})
    assert r.status_code == 200, r.text
    results: list[dict[str, Any]] = r.json()["results"]
    return results
