"""End to end, from a file landing to the people told: a real `vigil agent` watching a folder,
a real `vigil server` (SQLite and PostgreSQL) notifying a real SMTP server (aiosmtpd) and a
webhook receiver that verifies Standard Webhooks signatures, all over loopback."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image, ImageOps
from support.agent import Fleet, drop, incidents, wait_for
from support.notifying import PUBLIC_URL, database, email_table, init, settings_toml
from support.planted import Tree, encode, photo
from support.receivers import WEBHOOK_SECRET, Smtp, WebhookReceiver
from support.server import Server, free_port, run_cli, serve

# Real processes over loopback: run in the suite's process-parallel group (scripts/test).
pytestmark = pytest.mark.e2e

# The promise: a file that lands is an incident in the server's API within 5 seconds.
INCIDENT_SECONDS = 5.0


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def alerting(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, planted: Tree
) -> Iterator[tuple[Server, Smtp, WebhookReceiver]]:
    """A server with the demo list published, e-mailing an aiosmtpd server and posting to a
    webhook receiver of this module's own."""
    smtp = Smtp(free_port()).start()
    hook = WebhookReceiver().start()
    home = tmp_path_factory.mktemp(f"alerting-{request.param}")
    channels = (
        email_table(smtp.port, name='"mail"')
        + f'\n[[notify]]\nname = "hook"\ntype = "webhook"\nurl = "{hook.url}"\n'
        f'secret = "{WEBHOOK_SECRET}"\n'
    )
    try:
        with database(request.param) as db:
            password, done = init(home, db)
            (home / "server.toml").write_text(settings_toml(channels))
            imported = run_cli("--home", str(home), "hashset", "import", str(planted.hashlist))
            assert imported.returncode == 0, imported.stderr
            with serve(home) as url:
                wait_for("the demo list published", lambda: published(url) >= 2)
                yield Server(home, url, db, password, done), smtp, hook  # type: ignore[arg-type]
    finally:
        smtp.stop()
        hook.stop()


def published(url: str) -> int:
    """The catalog version the server publishes (0 before the first)."""
    return int(httpx.get(f"{url}/readyz", timeout=10).json().get("catalog_version") or 0)


def _zip_of(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(name, data)
        z.writestr("readme.txt", "holiday\n")
    return buf.getvalue()


def test_a_file_landing_is_an_incident_an_email_and_a_signed_webhook(
    alerting: tuple[Server, Smtp, WebhookReceiver], planted: Tree, fleet: Fleet
) -> None:
    """A known photo and altered copies (resized, mirrored, in a zip) dropped one by one into a
    watched folder: each is in the API within 5 s with what a reviewer needs, and each incident
    is one e-mail at the SMTP server and one webhook whose signature verifies."""
    server, smtp, hook = alerting
    agent = fleet.enrol(server)
    agent.start()
    agent.wait_ready()
    key = server.api_key("admin")
    rocket, astronaut = photo("rocket"), photo("astronaut")
    half = rocket.resize((rocket.width // 2, rocket.height // 2), Image.Resampling.LANCZOS)
    # (file, member, bytes, entry it copies, expected kind)
    drops: list[tuple[str, str | None, bytes, str, str]] = [
        ("Downloads/IMG_0001.jpg", None, planted.originals["coffee"], "501", "sha256"),
        ("Downloads/rocket-small.png", None, encode(half, "PNG"), "503", "pdq"),
        ("Pictures/mirror.jpg", None, encode(ImageOps.mirror(astronaut), quality=88), "500", "pdq"),
        (
            "Downloads/holiday.zip",
            "IMG_2231.jpg",
            _zip_of("IMG_2231.jpg", planted.originals["chelsea"]),
            "502",
            "sha256",
        ),
    ]
    seen: dict[str, dict[str, Any]] = {}
    for rel, member, data, entry, kind in drops:
        drop(agent.watch / rel, data)
        path = str(agent.watch / rel)

        def arrived(path: str = path) -> dict[str, Any] | None:
            agent.assert_running()
            found = [i for i in incidents(server, key, agent.host) if i["path"] == path]
            return found[0] if found else None

        # An exact copy's reports (MD5, SHA-1, SHA-256, PDQ) are spooled and sent together: its
        # incident is never seen with a weaker kind first.
        incident = wait_for(f"the incident of {rel}", arrived, seconds=INCIDENT_SECONDS)
        assert incident["member"] == member
        assert incident["entry"]["id"] == entry and incident["kind"] == kind
        assert incident["host"] == agent.host and incident["detection"] == "realtime"
        assert incident["status"] == "new" and incident["seen_count"] == 1
        if kind == "sha256":
            assert {"md5", "sha1", "sha256"} <= set(incident["kinds"])
            assert incident["distance"] == 0 and incident["transform"] is None
        else:
            assert incident["fingerprints"]["pdq"] and incident["transform"] is not None
        seen[rel] = incident
    assert seen["Pictures/mirror.jpg"]["transform"] == "flipy"

    for rel, incident in seen.items():
        number = incident["id"]
        [mail] = wait_for(f"the e-mail about {rel}", lambda n=number: smtp.about(n))
        text = mail.get_content()
        assert f"kind: {incident['kind']}" in text  # the strongest kind, from the first message
        assert agent.host in text and f"category: {incident['entry']['category']}" in text
        assert f"{PUBLIC_URL}/incidents/{number}" in text
        assert rel not in mail.as_string()  # no path unless a channel asks for it

        def signed(n: int = number) -> list[Any]:
            return [h for h in hook.hooks if json.loads(h.body)["data"].get("id") == n]

        [delivered] = wait_for(f"the webhook about {rel}", signed)
        assert delivered.verified, delivered.error
        body = json.loads(delivered.body)
        assert body["type"] == "incident.created"
        assert body["data"]["host"] == agent.host and body["data"]["path"] is None
    # One message per incident, to each channel: no duplicates from the four kinds of an
    # exact copy (MD5, SHA-1, SHA-256 and PDQ reports of one file are one incident).
    ids = {i["id"] for i in seen.values()}
    assert sorted(n for n in ids for _ in smtp.about(n)) == sorted(ids)
    mine = [h for h in hook.hooks if json.loads(h.body)["data"].get("id") in ids]
    assert len(mine) == len(ids)
