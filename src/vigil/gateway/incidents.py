"""Where the gateway's matches go: an enrolled home's durable spool (delivered to the server by
the agent's deliverer), or `DIR/incidents.jsonl` in an unenrolled home.

A report is the agent's (vigil.endpoint.reports.build) with detection `gateway`, the URL as its
path, the authenticated user (X-Client-Username) as `user`, the client's address (X-Client-IP)
as `client` and no `owner`. Its id also covers the client and user, so two clients fetching one
known image are two sightings. A client header that is not an IP address is left out of the
report (the server would refuse the report) and logged; incidents.jsonl keeps it as sent.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from vigil.endpoint import reports
from vigil.scan.results import Match

log = logging.getLogger("vigil.gateway")

INCIDENTS_FILE = "incidents.jsonl"


@dataclass(frozen=True)
class Exchange:
    """Who fetched or sent what, as the proxy told the gateway."""

    url: str
    client: str | None
    user: str | None
    method: str  # RESPMOD (a download) or REQMOD (an upload)


def report(match: Match, exchange: Exchange, catalog_version: str | None) -> dict[str, Any]:
    """The incident report of one match seen through the proxy."""
    body = reports.build(match, "gateway", catalog_version, None, datetime.now(UTC))
    key = "\0".join((reports.report_id(match), exchange.client or "", exchange.user or ""))
    body["id"] = "r-" + hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:40]
    body["user"] = exchange.user[: reports.NAME_MAX] if exchange.user else None
    body["owner"] = None
    body["client"] = address(exchange.client)
    return body


def address(client: str | None) -> str | None:
    """The proxy client's address as reports carry it (compressed, as the server keeps it);
    None when there is none or it is not an IPv4 or IPv6 address."""
    if not client:
        return None
    try:
        return str(ipaddress.ip_address(client))
    except ValueError:
        log.warning("X-Client-IP %r is not an IP address: left out of the report", client[:100])
        return None


class Incidents(Protocol):
    """Takes a match's report and keeps it durably before returning."""

    def add(self, reports: list[dict[str, Any]], exchange: Exchange) -> bool:
        """Keep the reports of one finding (one per kind that matched, strongest first);
        True when it was new."""
        ...

    def close(self) -> None:
        """Release files and connections."""
        ...


class JsonLines:
    """An unenrolled home: one JSON object a line in DIR/incidents.jsonl, written whole and
    synced before the answer goes back to the proxy."""

    def __init__(self, home: Path) -> None:
        self.path = home / INCIDENTS_FILE
        self.lock = threading.Lock()
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def add(self, reports: list[dict[str, Any]], exchange: Exchange) -> bool:
        """Append one line for the finding: the strongest kind's report, every kind that
        matched (`kinds`), the exchange's URL, client, user and ICAP method."""
        line = dict(reports[0])
        line.update(
            kinds=[r["kind"] for r in reports],
            url=exchange.url,
            client=exchange.client,
            user=exchange.user,
            icap=exchange.method,
        )
        data = (json.dumps(line, separators=(",", ":"), ensure_ascii=False) + "\n").encode()
        with self.lock:
            os.write(self.fd, data)
            os.fsync(self.fd)
        return True

    def close(self) -> None:
        """Close the file."""
        os.close(self.fd)


class Spooled:
    """An enrolled home: the agent's durable spool; the deliverer is woken for each report."""

    def __init__(self, home: Path, wake: threading.Event) -> None:
        from vigil.endpoint.spool import Spool

        self.spool = Spool(home)
        self.wake = wake
        self.lock = threading.Lock()

    def add(self, reports: list[dict[str, Any]], exchange: Exchange) -> bool:
        """Spool the reports (committed before return) and wake the deliverer."""
        with self.lock:
            added = self.spool.add(reports) > 0
        self.wake.set()
        return added

    def close(self) -> None:
        """Close the spool's connection."""
        self.spool.close()
