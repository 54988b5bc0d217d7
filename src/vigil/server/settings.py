"""`HOME/server.toml`, the operator's file: notification channels, silent agents, flood guard.

Vigil reads it at `vigil server run` start and never writes it. Every mistake (an unknown key, a
wrong type, a bad address or duration) stops the start with a message naming the file, the
table and the key: a typo must not silently turn an alert channel off.

    [server]
    public_url = "https://vigil.example.org"   # links in notifications

    [agents]
    silent_after = "15m"      # no heartbeat this long: an `agent_silent` incident
    stale_after = "24h"       # a catalog older than this on an agent: `catalog_stale`

    [flood]
    hosts = 20                # this many distinct hosts match one entry ...
    window = "10m"            # ... within this: an `entry_flood` incident, notifications held

    [outbox]
    retry_base = "10s"        # first retry after about this long, doubling each attempt
    retry_max = "1h"          # never waiting longer than this between attempts

    [[notify]]
    type = "email"
    ...
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from vigil.errors import VigilError

SETTINGS_FILE = "server.toml"
CHANNEL_TYPES = ("email", "webhook", "syslog")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


class SettingsError(VigilError):
    """server.toml (or a channel stored in the database) says something Vigil cannot use."""


def parse_duration(text: str) -> timedelta:
    """ "15m", "60s", "24h", "2d", "500ms" as a timedelta (ValueError otherwise)."""
    found = _DURATION.match(text) if isinstance(text, str) else None
    if found is None:
        raise ValueError(f'expected a duration such as "60s", "15m", "24h", got {text!r}')
    return timedelta(seconds=float(found.group(1)) * _UNITS[found.group(2)])


@dataclass(frozen=True)
class Channel:
    """One notification channel: where to send, and which incidents (empty filter: all)."""

    name: str
    type: str
    # Where it came from: "toml" (read-only in the dashboard) or "db" (admins edit it).
    source: str
    categories: tuple[str, ...] = ()
    sets: tuple[str, ...] = ()
    include_path: bool = False
    # Type-specific settings, checked: see _EMAIL, _WEBHOOK, _SYSLOG.
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """How outbox rows name this channel."""
        return f"{self.source}:{self.name}"

    def wants(self, category: str | None, hashset: str | None) -> bool:
        """Whether an incident of `category` in `hashset` goes to this channel.

        Incidents the server raises itself (silent agents) carry no category or set; a filter
        on either does not exclude them: those concern every channel.
        """
        if self.categories and category is not None and category not in self.categories:
            return False
        if self.sets and hashset and hashset not in self.sets:
            return False
        return True

    def public(self) -> dict[str, Any]:
        """The channel as the API and dashboard show it: secrets masked."""
        shown = {k: ("********" if k in SECRET_KEYS and v else v) for k, v in self.options.items()}
        return {
            "name": self.name,
            "type": self.type,
            "source": self.source,
            "categories": list(self.categories),
            "sets": list(self.sets),
            "include_path": self.include_path,
            "options": shown,
        }


SECRET_KEYS = frozenset({"password", "secret"})


@dataclass(frozen=True)
class Settings:
    """Everything server.toml sets, with defaults for what it leaves out."""

    public_url: str | None = None
    silent_after: timedelta = timedelta(minutes=15)
    stale_after: timedelta = timedelta(hours=24)
    flood_hosts: int = 20
    flood_window: timedelta = timedelta(minutes=10)
    retry_base: timedelta = timedelta(seconds=10)
    retry_max: timedelta = timedelta(hours=1)
    channels: tuple[Channel, ...] = ()
    # [catalog]: the signed timestamp's life, and how often it is re-signed (vigil.server.publish).
    timestamp_expiry: timedelta = timedelta(hours=1)
    timestamp_resign: timedelta = timedelta(minutes=10)


class _Table:
    """A TOML table being read: every key taken is checked; what is left over is an error."""

    def __init__(self, where: str, table: str, values: Any) -> None:
        self.where = where
        self.table = table
        if not isinstance(values, dict):
            raise self.error(None, f"expected a table, got {type(values).__name__}")
        self.values = dict(values)

    def error(self, key: str | None, message: str) -> SettingsError:
        at = f"[{self.table}]" + (f" key {key!r}" if key else "")
        return SettingsError(f"{self.where}: {at}: {message}")

    def take(
        self, key: str, kind: type | tuple[type, ...], default: Any = ..., *, required: bool = False
    ) -> Any:
        if key not in self.values:
            if required or default is ...:
                raise self.error(key, "is required")
            return default
        value = self.values.pop(key)
        # TOML booleans are not integers here.
        if (
            isinstance(value, bool)
            and kind is not bool
            and not (isinstance(kind, tuple) and bool in kind)
        ):
            raise self.error(key, f"expected {_kind_name(kind)}, got a boolean")
        if not isinstance(value, kind):
            raise self.error(key, f"expected {_kind_name(kind)}, got {type(value).__name__}")
        return value

    def duration(self, key: str, default: timedelta) -> timedelta:
        if key not in self.values:
            return default
        text = self.take(key, str)
        try:
            value = parse_duration(text)
        except ValueError as e:
            raise self.error(key, str(e)) from None
        if value <= timedelta(0):
            raise self.error(key, "must be longer than zero")
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        values = self.take(key, list, [])
        if not all(isinstance(v, str) and v for v in values):
            raise self.error(key, "expected a list of non-empty strings")
        return tuple(values)

    def done(self) -> None:
        if self.values:
            unknown = ", ".join(sorted(self.values))
            raise self.error(None, f"unknown key(s): {unknown}")


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {
        str: "a string",
        int: "an integer",
        bool: "true or false",
        list: "a list",
        dict: "a table",
    }
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def parse_channel(where: str, table: str, values: Any, source: str, default_name: str) -> Channel:
    """A `[[notify]]` table (or a channel stored in the database) checked into a Channel."""
    t = _Table(where, table, values)
    kind = t.take("type", str, required=True)
    if kind not in CHANNEL_TYPES:
        raise t.error("type", f"expected one of {', '.join(CHANNEL_TYPES)}, got {kind!r}")
    name = t.take("name", str, default_name)
    if not _NAME.match(name):
        raise t.error("name", "letters, digits, '.', '_' and '-' only (at most 100)")
    categories = t.strings("categories")
    sets = t.strings("sets")
    include_path = t.take("include_path", bool, False)
    options: dict[str, Any]
    if kind == "email":
        options = _email(t)
    elif kind == "webhook":
        options = _webhook(t)
    else:
        options = _syslog(t)
    t.done()
    return Channel(name, kind, source, categories, sets, include_path, options)


def _email(t: _Table) -> dict[str, Any]:
    host = t.take("host", str, required=True)
    port = t.take("port", int, 587)
    if not 0 < port < 65536:
        raise t.error("port", f"expected a port number, got {port}")
    starttls = t.take("starttls", bool, True)
    username = t.take("username", str, None)
    password = t.take("password", str, None)
    if (username is None) != (password is None):
        raise t.error("password" if username else "username", "username and password go together")
    # A private CA's certificate (PEM) to check the SMTP server's against, else the system's.
    ca_file = t.take("ca_file", str, None)
    if ca_file is not None and not Path(ca_file).is_file():
        raise t.error("ca_file", f"no such file: {ca_file}")
    sender = t.take("from", str, required=True)
    if "@" not in sender:
        raise t.error("from", f"expected an e-mail address, got {sender!r}")
    to = t.strings("to")
    if not to:
        raise t.error("to", "is required: a list of at least one address")
    for address in to:
        if "@" not in address:
            raise t.error("to", f"expected e-mail addresses, got {address!r}")
    return {
        "host": host,
        "port": port,
        "starttls": starttls,
        "username": username,
        "password": password,
        "from": sender,
        "to": list(to),
        "ca_file": ca_file,
    }


def _webhook(t: _Table) -> dict[str, Any]:
    url = t.take("url", str, required=True)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise t.error("url", "expected an http:// or https:// URL")
    secret = t.take("secret", str, required=True)
    if not secret.startswith("whsec_"):
        raise t.error("secret", "expected a Standard Webhooks secret: whsec_ then base64")
    try:
        from standardwebhooks.webhooks import Webhook

        Webhook(secret)
    except Exception:  # noqa: BLE001 - any failure: not a usable secret (never echoed)
        raise t.error("secret", "is not valid base64 after whsec_") from None
    return {"url": url, "secret": secret}


def _syslog(t: _Table) -> dict[str, Any]:
    address = t.take("address", str, required=True)
    parts = urlsplit(address)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in ("udp", "tcp") or not parts.hostname or port is None:
        raise t.error(
            "address", f'expected "udp://HOST:PORT" or "tcp://HOST:PORT", got {address!r}'
        )
    return {"address": address, "protocol": parts.scheme, "host": parts.hostname, "port": port}


def read(home: Path) -> Settings:
    """The settings of the server under `home` (defaults when it has no server.toml)."""
    path = home / SETTINGS_FILE
    if not path.exists():
        return Settings()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise SettingsError(f"{path}: not valid TOML: {e}") from None
    return parse(str(path), data)


def parse(where: str, data: dict[str, Any]) -> Settings:
    """Settings from server.toml's parsed content (`where` names it in errors)."""
    top = dict(data)
    server = _Table(where, "server", top.pop("server", {}))
    public_url = server.take("public_url", str, None)
    if public_url is not None:
        parts = urlsplit(public_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise server.error("public_url", "expected an http:// or https:// URL")
        public_url = public_url.rstrip("/")
    server.done()
    agents = _Table(where, "agents", top.pop("agents", {}))
    silent_after = agents.duration("silent_after", Settings.silent_after)
    stale_after = agents.duration("stale_after", Settings.stale_after)
    agents.done()
    flood = _Table(where, "flood", top.pop("flood", {}))
    flood_hosts = flood.take("hosts", int, Settings.flood_hosts)
    if flood_hosts < 2:
        raise flood.error("hosts", "must be at least 2")
    flood_window = flood.duration("window", Settings.flood_window)
    flood.done()
    outbox = _Table(where, "outbox", top.pop("outbox", {}))
    retry_base = outbox.duration("retry_base", Settings.retry_base)
    retry_max = outbox.duration("retry_max", Settings.retry_max)
    outbox.done()
    catalog = _Table(where, "catalog", top.pop("catalog", {}))
    timestamp_expiry = catalog.duration("timestamp_expiry", Settings.timestamp_expiry)
    timestamp_resign = catalog.duration("timestamp_resign", Settings.timestamp_resign)
    if timestamp_resign >= timestamp_expiry:
        raise catalog.error("timestamp_resign", "must be shorter than timestamp_expiry")
    catalog.done()
    notify = top.pop("notify", [])
    if not isinstance(notify, list):
        raise SettingsError(f"{where}: notify: expected [[notify]] tables")
    channels: list[Channel] = []
    for n, values in enumerate(notify, start=1):
        channel = parse_channel(where, f"notify #{n}", values, "toml", f"notify-{n}")
        if any(c.name == channel.name for c in channels):
            raise SettingsError(
                f"{where}: [notify #{n}] key 'name': {channel.name!r} is used twice"
            )
        channels.append(channel)
    if top:
        raise SettingsError(f"{where}: unknown table(s) or key(s): {', '.join(sorted(top))}")
    return Settings(
        public_url,
        silent_after,
        stale_after,
        flood_hosts,
        flood_window,
        retry_base,
        retry_max,
        tuple(channels),
        timestamp_expiry,
        timestamp_resign,
    )
