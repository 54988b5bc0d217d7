"""Sending one notification: e-mail (aiosmtplib), webhook (Standard Webhooks), syslog (RFC 5424).

What a message says is built here, from the incident alone. A file's name or path (which could
itself be abusive text) is left out unless the channel sets `include_path = true`. Errors raised
here are kept on the outbox row and logged; none carries a password, secret or webhook URL.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
from datetime import UTC, datetime
from email.message import EmailMessage
from logging.handlers import SysLogHandler
from typing import Any

from vigil.server import incidents as work
from vigil.server.models import Incident
from vigil.server.outbox import Delivery, Event
from vigil.server.settings import Channel, Settings

# Seconds a send may take (well under outbox.LEASE).
TIMEOUT = 30.0
# Structured-data id: 32473 is the enterprise number RFC 5612 sets aside for examples; an
# organisation with its own number can filter on the element name anyway.
SD_ID = "vigil@32473"
APP_NAME = "vigil"

# Incidents the server raises itself, and the words a person reads for them.
SERVER_KINDS = {
    "agent_silent": "agent silent (no heartbeat)",
    "catalog_rejected": "agent rejected a catalog update",
    "watcher_unhealthy": "agent's watcher stopped or unhealthy",
    "catalog_stale": "agent's catalog is stale",
    "entry_flood": "one hash-set entry matched on many hosts",
}


def describe(incident: Incident) -> dict[str, Any]:
    """The facts every message carries: host, category, set, entry, kind, when."""
    return {
        "incident": incident.id,
        "host": incident.host,
        "category": incident.category,
        "set": incident.hashset or None,
        "entry": incident.entry_id or None,
        "kind": incident.kind,
        "detection": incident.detection,
        "first_seen": incident.first_seen.isoformat(),
        "seen_count": incident.seen_count,
    }


def link(settings: Settings, incident: Incident) -> str | None:
    """Where staff open the incident (needs `[server] public_url`)."""
    if settings.public_url is None:
        return None
    return f"{settings.public_url}/incidents/{incident.id}"


def subject(incident: Incident | None) -> str:
    """A message's one-line summary."""
    if incident is None:
        return "[Vigil] test notification"
    if incident.kind in SERVER_KINDS:
        return f"[Vigil] {SERVER_KINDS[incident.kind]}: {incident.host} (incident {incident.id})"
    return (
        f"[Vigil] match on {incident.host}: category {incident.category or '-'}, "
        f"set {incident.hashset} (incident {incident.id})"
    )


def text(delivery: Delivery, settings: Settings) -> str:
    """The plain-text body of an e-mail (and the MSG of a syslog line, on one line)."""
    incident = delivery.incident
    if incident is None:
        return "A test notification from Vigil: this channel works."
    facts = describe(incident)
    lines = [subject(incident).removeprefix("[Vigil] "), ""]
    lines += [f"{k.replace('_', ' ')}: {v}" for k, v in facts.items() if v is not None]
    if delivery.channel is not None and delivery.channel.include_path and incident.path:
        lines.append(f"path: {incident.path}")
        if incident.member:
            lines.append(f"archive member: {incident.member}")
    url = link(settings, incident)
    lines += [
        "",
        f"Open it: {url}" if url else "(set [server] public_url in server.toml for links)",
    ]
    return "\n".join(lines) + "\n"


def body(delivery: Delivery, settings: Settings) -> dict[str, Any]:
    """A webhook's JSON body: the event and the incident in the API's shape."""
    incident = delivery.incident
    data: dict[str, Any] = {}
    if incident is not None:
        data = work.view(incident)
        if delivery.channel is None or not delivery.channel.include_path:
            data["path"] = None
            data["member"] = None
        data["url"] = link(settings, incident)
    return {
        "type": delivery.row.event,
        "timestamp": delivery.row.created_at.isoformat(),
        "data": data,
    }


async def send(delivery: Delivery, settings: Settings) -> None:
    """Deliver one claimed row through its channel (raises on failure)."""
    channel = delivery.channel
    assert channel is not None
    if channel.type == "email":
        await _email(channel, delivery, settings)
    elif channel.type == "webhook":
        await _webhook(channel, delivery, settings)
    else:
        await asyncio.to_thread(_syslog, channel, delivery, settings)


async def _email(channel: Channel, delivery: Delivery, settings: Settings) -> None:
    import aiosmtplib

    o = channel.options
    message = EmailMessage()
    message["From"] = o["from"]
    message["To"] = ", ".join(o["to"])
    message["Subject"] = subject(delivery.incident)
    # The outbox row's id: a mail client or archive can tell a resend from a new alert.
    message["Message-ID"] = f"<{delivery.row.uid}@vigil>"
    message.set_content(text(delivery, settings))
    await aiosmtplib.send(
        message,
        hostname=o["host"],
        port=o["port"],
        start_tls=o["starttls"],
        username=o["username"],
        password=o["password"],
        cert_bundle=o.get("ca_file"),
        timeout=TIMEOUT,
    )


class WebhookRefused(Exception):
    """The receiver answered with an error status."""


async def _webhook(channel: Channel, delivery: Delivery, settings: Settings) -> None:
    import httpx
    from standardwebhooks.webhooks import Webhook

    payload = json.dumps(body(delivery, settings), separators=(",", ":"))
    now = datetime.now(UTC)
    signature = Webhook(channel.options["secret"]).sign(delivery.row.uid, now, payload)
    headers = {
        "content-type": "application/json",
        "webhook-id": delivery.row.uid,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            response = await client.post(channel.options["url"], content=payload, headers=headers)
    except httpx.HTTPError as e:
        # httpx names the URL in some messages: the URL may hold a token, so only the kind.
        raise WebhookRefused(f"{type(e).__name__} (no answer from the receiver)") from None
    if response.status_code >= 300:
        raise WebhookRefused(f"the receiver answered HTTP {response.status_code}")


def _sd_value(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


class Rfc5424Formatter(logging.Formatter):
    """`VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG` (RFC 5424 after the PRI,
    which SysLogHandler's priority mapping supplies). The record carries `msgid` and `sd`."""

    def __init__(self, hostname: str | None = None) -> None:
        super().__init__()
        self.hostname = (hostname or socket.gethostname() or "-").replace(" ", "_")[:255]

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        msgid = getattr(record, "msgid", "-") or "-"
        sd_items: dict[str, Any] = getattr(record, "sd", {}) or {}
        params = " ".join(f'{k}="{_sd_value(v)}"' for k, v in sd_items.items() if v is not None)
        sd = f"[{SD_ID} {params}]" if params else "-"
        # UTF-8 MSG starts with a byte-order mark (RFC 5424 section 6.4).
        message = "\ufeff" + record.getMessage().replace("\n", " ")
        return f"1 {stamp.replace('+00:00', 'Z')} {self.hostname} {APP_NAME} {os.getpid()} {msgid} {sd} {message}"


class Rfc5424Handler(SysLogHandler):
    """The standard handler's socket and priority mapping; UDP one datagram per message, TCP
    with RFC 6587 octet-counting framing, and failures raised (not printed) so the outbox
    retries them."""

    def emit(self, record: logging.LogRecord) -> None:
        line = self.format(record)
        prio = self.encodePriority(self.facility, self.mapPriority(record.levelname))
        data = f"<{prio}>{line}".encode()
        sock: socket.socket = self.socket  # type: ignore[attr-defined]
        if self.socktype == socket.SOCK_DGRAM:
            sock.sendto(data, self.address)
        else:
            sock.sendall(b"%d " % len(data) + data)


def _syslog(channel: Channel, delivery: Delivery, settings: Settings) -> None:
    o = channel.options
    socktype = socket.SOCK_DGRAM if o["protocol"] == "udp" else socket.SOCK_STREAM
    handler = Rfc5424Handler(
        address=(o["host"], o["port"]), facility=SysLogHandler.LOG_AUTH, socktype=socktype
    )
    try:
        handler.setFormatter(Rfc5424Formatter())
        incident = delivery.incident
        event = delivery.row.event
        sd = {"id": delivery.row.uid, "event": event}
        level = logging.INFO
        if incident is not None:
            sd.update({k: v for k, v in describe(incident).items() if v is not None})
            level = logging.WARNING if incident.kind in SERVER_KINDS else logging.CRITICAL
            url = link(settings, incident)
            if url:
                sd["url"] = url
            if channel.include_path and incident.path:
                sd["path"] = incident.path
        record = logging.LogRecord("vigil", level, __file__, 0, subject(incident), None, None)
        record.msgid = "test" if event == Event.TEST.value else "incident"
        record.sd = sd
        handler.emit(record)
    finally:
        handler.close()
