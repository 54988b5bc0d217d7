"""The server's tables: staff and their API keys, enrolment tokens, agents, incidents, audit.

They live beside the catalog's tables when both share a database (`--db URL`); their own
Alembic history is versioned in `vigil_server_version`, apart from the catalog's.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# Constraint names spelled out, so migrations name the same things on every database.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite has no 64-bit autoincrement under BIGINT; PostgreSQL's incident ids may outgrow 32 bits.
IdType = BigInteger().with_variant(Integer, "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp with its time zone on every database (SQLite keeps naive values: UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        # In UTC before it is written: SQLite keeps the wall time and drops the offset, so
        # 10:00+02:00 would read back as 10:00 UTC.
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    """The server's declarative base (its own metadata: the catalog's tables are not ours)."""

    metadata = MetaData(naming_convention=NAMING)


class User(Base):
    """A member of staff: admin, reviewer or auditor."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ApiKey(Base):
    """An API key of a user: SHA-256 of its secret; it acts with the user's role."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class EnrolmentToken(Base):
    """A single-use, expiring token an agent trades for its own credential."""

    __tablename__ = "enrolment_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    agent_id: Mapped[str | None] = mapped_column(String(36), nullable=True)


class Agent(Base):
    """An enrolled agent (or gateway): its credential, and what its last heartbeat said."""

    __tablename__ = "agents"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    enrolled_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_heartbeat: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    catalog_version: Mapped[str | None] = mapped_column(String(100), nullable=True)
    spool_length: Mapped[int | None] = mapped_column(Integer, nullable=True)
    watch: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class Incident(Base):
    """One match on one agent: (agent, path, archive member, set, entry), however often seen."""

    __tablename__ = "incidents"
    __table_args__ = (
        # Keyset pages, newest first, under each filter.
        Index("ix_incidents_status_id", "status", "id"),
        Index("ix_incidents_host_id", "host", "id"),
        Index("ix_incidents_client_id", "client", "id"),
        Index("ix_incidents_category_id", "category", "id"),
        Index("ix_incidents_last_seen", "last_seen"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    # SHA-256 of (agent, path, member, set, entry): paths may be longer than an index key allows.
    identity: Mapped[str] = mapped_column(String(64), unique=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id"))
    status: Mapped[str] = mapped_column(String(20))
    host: Mapped[str] = mapped_column(String(255))
    user: Mapped[str | None] = mapped_column(String(255), nullable=True)
    owner: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # The network address of the machine that fetched or sent the content (a gateway's proxy
    # client); null for agents' incidents.
    client: Mapped[str | None] = mapped_column(String(255), nullable=True)
    path: Mapped[str] = mapped_column(Text)
    member: Mapped[str | None] = mapped_column(Text, nullable=True)
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    media_type: Mapped[str | None] = mapped_column(String(255), nullable=True)
    hashset: Mapped[str] = mapped_column(String(255))
    entry_id: Mapped[str] = mapped_column(String(255))
    category: Mapped[str | None] = mapped_column(String(100), nullable=True)
    kind: Mapped[str] = mapped_column(String(20))
    kinds: Mapped[list[str]] = mapped_column(JSON)
    distance: Mapped[int | None] = mapped_column(Integer, nullable=True)
    transform: Mapped[str | None] = mapped_column(String(50), nullable=True)
    segment: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    detection: Mapped[str] = mapped_column(String(20))
    fingerprints: Mapped[dict[str, Any]] = mapped_column(JSON)
    catalog_version: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # The matched file's times as the agent's stat saw them (the latest report's): last
    # written, inode changed, created where the platform records it. Null for the gateway's.
    file_modified: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    file_changed: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    file_created: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    seen_count: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Report(Base):
    """A report an agent sent, by the id the agent gave it: a resend is known and not counted."""

    __tablename__ = "incident_reports"
    __table_args__ = (UniqueConstraint("agent_id", "report_id"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id"))
    report_id: Mapped[str] = mapped_column(String(100))
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Comment(Base):
    """A reviewer's comment on an incident."""

    __tablename__ = "incident_comments"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    author: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    text: Mapped[str] = mapped_column(Text)


class AuditEntry(Base):
    """Who did or saw what, when: every view and change of an incident, every credential made."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    # "user:NAME", "agent:ID" or "cli" (a command run on the server's machine).
    actor: Mapped[str] = mapped_column(String(150))
    action: Mapped[str] = mapped_column(String(50))
    incident_id: Mapped[int | None] = mapped_column(IdType, nullable=True, index=True)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


# Notifications, agent health and the flood guard (migration 0002).

# Flood guard and false-positive checks look up an entry's incidents (the flood guard's count
# of distinct hosts from this index alone).
Index("ix_incidents_entry", Incident.hashset, Incident.entry_id, Incident.first_seen, Incident.host)


class NotifyChannel(Base):
    """A notification channel an admin made in the dashboard (server.toml's are not stored)."""

    __tablename__ = "notify_channels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    # The channel as a `[[notify]]` table would say it (checked by vigil.server.settings).
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Notification(Base):
    """The outbox: one message for one channel, written in the transaction that made its cause.

    A sender claims due rows with a lease (so several server processes never send one row
    twice while it lives), sends, and marks it delivered; a failure keeps the error and sets
    the next attempt after an exponential, jittered delay.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_status_due", "status", "due_at"),
        Index("ix_notifications_incident", "incident_id"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    # Stable across retries: the webhook-id receivers dedupe by.
    uid: Mapped[str] = mapped_column(String(40), unique=True)
    # None for a test message.
    incident_id: Mapped[int | None] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), nullable=True
    )
    event: Mapped[str] = mapped_column(String(50))
    # "toml:NAME" or "db:NAME" (vigil.server.settings.Channel.key).
    channel: Mapped[str] = mapped_column(String(120))
    channel_type: Mapped[str] = mapped_column(String(20))
    # pending | held | delivered | dropped | failed
    status: Mapped[str] = mapped_column(String(20))
    hold: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class AgentCondition(Base):
    """An agent's open health episode (silent, catalog rejected, watcher down, stale catalog).

    One row per (agent, condition) while it lasts, pointing at the incident it raised; removed
    when the agent reports itself well again. The primary key keeps it one incident per episode
    even when several server processes notice at once.
    """

    __tablename__ = "agent_conditions"

    agent_id: Mapped[str] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    condition: Mapped[str] = mapped_column(String(30), primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    since: Mapped[datetime] = mapped_column(UTCDateTime())


class EntryFlood(Base):
    """A hash-set entry matched on many hosts at once: its incident and whether it holds alerts."""

    __tablename__ = "entry_floods"
    __table_args__ = (UniqueConstraint("hashset", "entry_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hashset: Mapped[str] = mapped_column(String(255))
    entry_id: Mapped[str] = mapped_column(String(255))
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    # holding | released | dropped
    state: Mapped[str] = mapped_column(String(20))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    hosts: Mapped[int] = mapped_column(Integer)


# The dashboard's tables (vigil.server.web).


class WebSession(Base):
    """A signed-in dashboard session: the cookie holds a random id, this row its SHA-256.

    Server-side so an admin (or logout) can end it at once; idle and absolute expiry are checked
    on every request.
    """

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # The CSRF token of the session's forms (double-submit: cookie and form field must match it).
    csrf_token: Mapped[str] = mapped_column(String(64))
    client: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class LoginFailure(Base):
    """A failed dashboard login: counted per user name and per client address to limit guessing.

    A table rather than memory: the limit survives restarts and holds across server processes.
    """

    __tablename__ = "login_failures"
    __table_args__ = (
        Index("ix_login_failures_user_name_at", "user_name", "at"),
        Index("ix_login_failures_client_at", "client", "at"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    user_name: Mapped[str] = mapped_column(String(100))
    client: Mapped[str] = mapped_column(String(100))


# The dashboard's chart of incidents per day reads a range of first sightings.
Index("ix_incidents_first_seen", Incident.first_seen)
