"""Notification channels: server.toml's (read-only) and those admins keep in the database.

The dashboard lists both (with their source), adds, updates and disables database channels,
and sends a test message through any; server.toml's cannot be changed from there: the
operator's file is read, never written.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.server import audit
from vigil.server.models import NotifyChannel
from vigil.server.settings import Channel, Settings, SettingsError, parse_channel

DB = "db"
TOML = "toml"


def _from_row(row: NotifyChannel) -> Channel:
    return parse_channel(
        f"database channel {row.name!r}", "notify", {**row.config, "name": row.name}, DB, row.name
    )


def active(session: Session, settings: Settings) -> list[Channel]:
    """Every channel that receives notifications now: server.toml's, then enabled database ones."""
    rows = session.scalars(
        select(NotifyChannel).where(NotifyChannel.disabled_at.is_(None)).order_by(NotifyChannel.id)
    )
    return [*settings.channels, *(_from_row(r) for r in rows)]


def find(session: Session, settings: Settings, key: str) -> Channel | None:
    """The channel an outbox row names ("toml:NAME" or "db:NAME"); None when gone or disabled."""
    source, _, name = key.partition(":")
    if source == TOML:
        return next((c for c in settings.channels if c.name == name), None)
    row = session.scalar(
        select(NotifyChannel).where(NotifyChannel.name == name, NotifyChannel.disabled_at.is_(None))
    )
    return _from_row(row) if row is not None else None


def listing(session: Session, settings: Settings) -> list[dict[str, Any]]:
    """Every channel as the dashboard shows it (secrets masked), disabled ones included."""
    shown = [{**c.public(), "disabled": False} for c in settings.channels]
    for row in session.scalars(select(NotifyChannel).order_by(NotifyChannel.id)):
        shown.append({**_from_row(row).public(), "disabled": row.disabled_at is not None})
    return shown


def _check(settings: Settings, name: str, config: dict[str, Any]) -> Channel:
    if any(c.name == name for c in settings.channels):
        raise SettingsError(f"a channel named {name!r} is in server.toml (read-only here)")
    config = {k: v for k, v in config.items() if k != "name"}
    return parse_channel(f"database channel {name!r}", "notify", {**config, "name": name}, DB, name)


def add(
    session: Session, settings: Settings, name: str, config: dict[str, Any], actor: str
) -> Channel:
    """Store a new channel (checked as a `[[notify]]` table would be)."""
    channel = _check(settings, name, config)
    if session.scalar(select(NotifyChannel.id).where(NotifyChannel.name == name)) is not None:
        raise SettingsError(f"a channel named {name!r} exists already")
    now = datetime.now(UTC)
    stored = {k: v for k, v in config.items() if k != "name"}
    session.add(NotifyChannel(name=name, config=stored, created_at=now, updated_at=now))
    audit.record(session, actor, "notify.channel.add", detail=channel.public())
    return channel


def update(
    session: Session, settings: Settings, name: str, config: dict[str, Any], actor: str
) -> Channel:
    """Replace a database channel's settings (a secret left out keeps the stored one)."""
    row = session.scalar(select(NotifyChannel).where(NotifyChannel.name == name))
    if row is None:
        raise LookupError(f"no database channel named {name!r}")
    merged = {k: v for k, v in config.items() if k != "name"}
    for key in ("password", "secret"):
        if key in row.config and key not in merged and merged.get("type") == row.config["type"]:
            merged[key] = row.config[key]
    channel = _check(settings, name, merged)
    row.config = merged
    row.updated_at = datetime.now(UTC)
    row.disabled_at = None
    audit.record(session, actor, "notify.channel.update", detail=channel.public())
    return channel


def disable(session: Session, name: str, actor: str) -> None:
    """Stop sending through a database channel (kept, so its outbox rows stay explained)."""
    row = session.scalar(select(NotifyChannel).where(NotifyChannel.name == name))
    if row is None:
        raise LookupError(f"no database channel named {name!r}")
    row.disabled_at = datetime.now(UTC)
    audit.record(session, actor, "notify.channel.disable", detail={"name": name})


def named(session: Session, settings: Settings, name: str) -> Channel | None:
    """The active channel called `name` (either source)."""
    return next((c for c in active(session, settings) if c.name == name), None)
