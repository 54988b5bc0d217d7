"""The dashboard in headless Chromium (Debian's, driven by Playwright) against a real server:
log in, find an incident, review it to the end with comments, find it in the audit log.

Screenshots of the pages go to $VIGIL_TEST_ARTIFACTS (default: test-artifacts/ at the top of the
repository) for people to look at.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright
from support.dashboard import incidents, staff
from support.server import Server, unique

# Real processes over loopback: run in the suite's process-parallel group (scripts/test).
pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Each Playwright wait (ms): generous, the machine is shared.
WAIT_MS = 60_000
expect.set_options(timeout=WAIT_MS)


def artifacts() -> Path:
    """Where screenshots are kept."""
    default = Path(__file__).resolve().parents[2] / "test-artifacts"
    path = Path(os.environ.get("VIGIL_TEST_ARTIFACTS", default))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (scripts/test does)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Console:
    """Errors the page logged (a CSP violation is one) and uncaught script errors."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("console", self._message)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))

    def _message(self, msg: ConsoleMessage) -> None:
        if msg.type in ("error", "warning") and (
            msg.type == "error" or "Content Security Policy" in msg.text
        ):
            self.errors.append(msg.text)


def log_in(page: Page, server: Server, name: str, password: str) -> None:
    page.goto(f"{server.url}/ui/incidents")
    expect(page).to_have_url(f"{server.url}/ui/login?next=/ui/incidents")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Incidents")).to_be_visible()


def test_review_an_incident_in_the_browser(server: Server, chromium: Browser) -> None:
    host = unique("ws")
    ids = incidents(server, "/home/alice/Pictures/holiday.jpg", host=host, category="1")
    incidents(server, *(f"/srv/share/scan-{n}.png" for n in range(8)), category="2", kind="pdq")
    (incident,) = ids
    name, password = staff(server, "reviewer")
    shots = artifacts()
    db = "postgresql" if server.db else "sqlite"
    context = chromium.new_context(viewport={"width": 1360, "height": 900})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    console = Console(page)
    try:
        log_in(page, server, name, password)
        row = page.locator("#incidents tbody tr", has_text=host)
        expect(row).to_have_count(1)
        expect(row.locator(".status")).to_have_text("New")
        page.screenshot(path=shots / f"incident-list-{db}.png", full_page=True)

        row.get_by_role("link", name=str(incident)).click()
        expect(page.get_by_role("heading", name=f"Incident #{incident}")).to_be_visible()
        expect(page.locator("dd.path").first).to_have_text("/home/alice/Pictures/holiday.jpg")
        steps = [
            ("In review", "Looking at it: known entry, exact MD5."),
            ("Confirmed", "Matches the police list; informed the manager."),
            ("Handed to police", "Case EXAMPLE-1 handed over."),
        ]
        for button, comment in steps:
            page.get_by_label("Comment").fill(comment)
            page.get_by_role("button", name=button, exact=True).click()
            expect(page.locator("h1 .status")).to_have_text(button)
            expect(page.locator("ul.comments")).to_contain_text(comment)
        # The end of the workflow: no further step offered.
        expect(page.get_by_role("button", name="Confirmed", exact=True)).to_have_count(0)
        page.screenshot(path=shots / f"incident-detail-{db}.png", full_page=True)

        page.get_by_role("link", name="Overview").click()
        expect(page.get_by_role("heading", name="Overview")).to_be_visible()
        # Fetched by htmx after the page: the script runs under the CSP.
        expect(page.locator("#per-day svg.chart rect.c0").first).to_be_visible()
        page.screenshot(path=shots / f"overview-{db}.png", full_page=True)
        page.get_by_role("button", name="Log out").click()
        expect(page.get_by_role("button", name="Log in")).to_be_visible()

        # The auditor sees the review in the audit log.
        auditor, auditor_password = staff(server, "auditor")
        page.goto(f"{server.url}/ui/incidents")
        page.get_by_label("User name").fill(auditor)
        page.get_by_label("Password").fill(auditor_password)
        page.get_by_role("button", name="Log in").click()
        page.get_by_role("link", name="Audit log").click()
        page.get_by_label("Actor").fill(f"user:{name}")
        page.get_by_label("Action").fill("incident.update")
        page.get_by_role("button", name="Filter").click()
        rows = page.locator("#audit tbody tr")
        expect(rows).to_have_count(3)
        expect(rows.first).to_contain_text("confirmed → handed_to_police")
        expect(rows.first.get_by_role("link", name=f"#{incident}")).to_be_visible()
        page.screenshot(path=shots / f"audit-log-{db}.png", full_page=True)
        # The auditor is offered no review.
        rows.first.get_by_role("link", name=f"#{incident}").click()
        expect(
            page.get_by_text("Your role can read this incident but not change it.")
        ).to_be_visible()
    finally:
        context.close()
    assert console.errors == []


def test_notifications_page_in_the_browser(server: Server, chromium: Browser) -> None:
    """An admin adds a webhook channel on the Notifications page; a screenshot of it."""
    db = "postgresql" if server.db else "sqlite"
    name = unique("siem")
    context = chromium.new_context(viewport={"width": 1360, "height": 900})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    console = Console(page)
    try:
        log_in(page, server, "admin", server.admin_password)
        page.get_by_role("link", name="Notifications").click()
        expect(page.get_by_role("heading", name="Notifications")).to_be_visible()
        page.get_by_label("Name", exact=True).fill(name)
        page.get_by_label("Type").select_option("webhook")
        page.get_by_label("Settings (TOML)").fill(
            'url = "https://siem.example.org/hooks/vigil"\n'
            'secret = "whsec_dGVzdC1zZWNyZXQtZm9yLXZpZ2lsLXdlYmhvb2tz"\n'
            'categories = ["1"]\n'
        )
        page.get_by_role("button", name="Add channel").click()
        expect(page.get_by_role("status")).to_contain_text(f"Channel {name} added")
        row = page.locator(f"#channel-{name}")
        expect(row).to_contain_text("set (********)")
        expect(row).not_to_contain_text("dGVzdC1zZWNyZXQ")
        page.screenshot(path=artifacts() / f"notifications-{db}.png", full_page=True)
    finally:
        context.close()
    assert console.errors == []
