"""The transactional outbox: notifications written with their cause, sent by a background task.

`enqueue` runs in the transaction that makes an incident, so an incident and its notifications
commit (or roll back) together, and a restart loses none. The sender claims due rows with a
lease: on PostgreSQL the candidates are read `FOR UPDATE SKIP LOCKED`, and on every database a
row is taken only by an UPDATE whose WHERE still finds it free, so two server processes never
both send one row while its lease lives. A row is marked delivered after the channel accepted
it; a process that dies between the two leaves the row to be sent again when the lease ends
(at least once: webhook receivers dedupe by `webhook-id`, the row's stable id).
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from vigil.server import audit, channels
from vigil.server.models import Incident, Notification
from vigil.server.settings import Channel, Settings

log = logging.getLogger("vigil.server.notify")

# A claimed row is the claimer's this long; sends time out well before (delivery.TIMEOUT).
LEASE = timedelta(seconds=120)
# Rows claimed per round.
BATCH = 20
# How often the sender looks for due rows when idle.
POLL_SECONDS = 0.5


class State(StrEnum):
    """Where a notification is."""

    PENDING = "pending"
    HELD = "held"
    DELIVERED = "delivered"
    DROPPED = "dropped"
    # The channel it was for is gone from server.toml or disabled: nothing left to send it to.
    FAILED = "failed"


class Event(StrEnum):
    """What a notification is about."""

    INCIDENT = "incident.created"
    TEST = "test"


def new_uid() -> str:
    """A notification's stable id (the Standard Webhooks `webhook-id`)."""
    return f"msg_{uuid.uuid4().hex}"


def rows_for(
    incident: Any, targets: list[Channel], hold: str | None, now: datetime
) -> list[dict[str, Any]]:
    """The outbox rows (as INSERT values) of `incident` (anything with its id, category and
    hashset) for the channels that want it."""
    return [
        {
            "uid": new_uid(),
            "incident_id": incident.id,
            "event": Event.INCIDENT.value,
            "channel": channel.key,
            "channel_type": channel.type,
            "status": (State.HELD if hold else State.PENDING).value,
            "hold": hold,
            "created_at": now,
            "due_at": now,
            "attempts": 0,
        }
        for channel in targets
        if channel.wants(incident.category, incident.hashset)
    ]


def write(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert outbox rows in one multi-row INSERT (intake may make thousands at once)."""
    if rows:
        session.execute(insert(Notification), rows)


def enqueue(
    session: Session,
    settings: Settings,
    incident: Incident,
    *,
    hold: str | None = None,
    targets: list[Channel] | None = None,
) -> int:
    """One outbox row per channel that wants `incident`, in the caller's transaction.

    With `hold`, the rows wait (held) until an admin releases or drops them. Returns how many
    rows were written.
    """
    if targets is None:
        targets = channels.active(session, settings)
    rows = rows_for(incident, targets, hold, datetime.now(UTC))
    write(session, rows)
    return len(rows)


def enqueue_test(session: Session, channel: Channel, actor: str) -> Notification:
    """A test message through `channel`, sent like any other."""
    now = datetime.now(UTC)
    row = Notification(
        uid=new_uid(),
        incident_id=None,
        event=Event.TEST.value,
        channel=channel.key,
        channel_type=channel.type,
        status=State.PENDING.value,
        created_at=now,
        due_at=now,
        attempts=0,
    )
    session.add(row)
    session.flush()
    audit.record(session, actor, "notify.test", detail={"channel": channel.name, "id": row.id})
    return row


def backoff(settings: Settings, attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failure: doubling, capped, with full jitter
    over its upper half (so a crowd of rows failing together does not retry together)."""
    ceiling = min(
        settings.retry_max.total_seconds(),
        settings.retry_base.total_seconds() * 2 ** min(attempts - 1, 30),
    )
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))


def claim(session: Session, owner: str, limit: int = BATCH) -> list[int]:
    """Take up to `limit` due rows for `owner` (a lease); their ids."""
    now = datetime.now(UTC)
    free = (Notification.lease_until.is_(None)) | (Notification.lease_until < now)
    candidates = list(
        session.scalars(
            select(Notification.id)
            .where(Notification.status == State.PENDING.value, Notification.due_at <= now, free)
            .order_by(Notification.due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    taken = []
    for row_id in candidates:
        done = session.execute(
            update(Notification)
            .where(Notification.id == row_id, Notification.status == State.PENDING.value, free)
            .values(lease_owner=owner, lease_until=now + LEASE)
            .execution_options(synchronize_session=False)
        )
        if done.rowcount == 1:  # type: ignore[attr-defined]
            taken.append(row_id)
    return taken


def settle(
    session: Session,
    settings: Settings,
    row_id: int,
    owner: str,
    error: str | None,
    *,
    final: bool = False,
) -> None:
    """Record one attempt of a claimed row: delivered, or failed with its error (retried later,
    or not at all when `final`)."""
    row = session.get(Notification, row_id)
    if row is None or row.lease_owner != owner:
        return
    now = datetime.now(UTC)
    row.attempts += 1
    row.last_attempt_at = now
    row.lease_owner = None
    row.lease_until = None
    if error is None:
        row.status = State.DELIVERED.value
        row.delivered_at = now
        row.last_error = None
        return
    row.last_error = error[:2000]
    if final:
        row.status = State.FAILED.value
    else:
        row.due_at = now + backoff(settings, row.attempts)


def view(row: Notification) -> dict[str, Any]:
    """An outbox row as the API and dashboard show it."""

    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "id": row.id,
        "uid": row.uid,
        "incident": row.incident_id,
        "event": row.event,
        "channel": row.channel,
        "channel_type": row.channel_type,
        "status": row.status,
        "hold": row.hold,
        "attempts": row.attempts,
        "last_error": row.last_error,
        "created_at": iso(row.created_at),
        "due_at": iso(row.due_at),
        "last_attempt_at": iso(row.last_attempt_at),
        "delivered_at": iso(row.delivered_at),
    }


def page(
    session: Session,
    status: State | None,
    incident_id: int | None,
    before: int | None,
    limit: int,
) -> tuple[list[Notification], int | None]:
    """Outbox rows newest first (keyset pages, as incidents)."""
    query = select(Notification).order_by(Notification.id.desc()).limit(limit + 1)
    if status is not None:
        query = query.where(Notification.status == status.value)
    if incident_id is not None:
        query = query.where(Notification.incident_id == incident_id)
    if before is not None:
        query = query.where(Notification.id < before)
    rows = list(session.scalars(query))
    if len(rows) > limit:
        return rows[:limit], rows[limit - 1].id
    return rows, None


def release(session: Session, row_ids: list[int] | None, hold: str | None, actor: str) -> int:
    """Send held rows (by id, or all under one hold) now; how many."""
    return _unhold(session, row_ids, hold, actor, State.PENDING)


def drop(session: Session, row_ids: list[int] | None, hold: str | None, actor: str) -> int:
    """Never send these held or pending rows; how many."""
    return _unhold(session, row_ids, hold, actor, State.DROPPED)


def _unhold(
    session: Session, row_ids: list[int] | None, hold: str | None, actor: str, to: State
) -> int:
    allowed = [State.HELD.value] if to is State.PENDING else [State.HELD.value, State.PENDING.value]
    query = update(Notification).where(Notification.status.in_(allowed))
    if row_ids is not None:
        query = query.where(Notification.id.in_(row_ids))
    if hold is not None:
        query = query.where(Notification.hold == hold)
    values: dict[str, Any] = {"status": to.value}
    if to is State.PENDING:
        values["due_at"] = datetime.now(UTC)
    done = session.execute(query.values(**values).execution_options(synchronize_session=False))
    count = int(done.rowcount)  # type: ignore[attr-defined]
    audit.record(
        session,
        actor,
        f"notify.{'release' if to is State.PENDING else 'drop'}",
        detail={"ids": row_ids, "hold": hold, "count": count},
    )
    return count


@dataclass
class Delivery:
    """What the sender needs to send one row: the row, its incident, its channel."""

    row: Notification
    incident: Incident | None
    channel: Channel | None


class Sender:
    """The background task that delivers due outbox rows (one per server process)."""

    def __init__(
        self,
        sessions: Callable[[], Any],
        settings: Settings,
        send: Callable[[Delivery, Settings], Any],
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.send = send
        self.owner = f"{uuid.uuid4().hex[:16]}-{secrets.token_hex(4)}"
        self.wake = asyncio.Event()

    def _claim(self) -> list[Delivery]:
        with self.sessions() as s:
            ids = claim(s, self.owner)
        if not ids:
            return []
        with self.sessions() as s:
            rows = list(s.scalars(select(Notification).where(Notification.id.in_(ids))))
            found = []
            for row in rows:
                incident = s.get(Incident, row.incident_id) if row.incident_id else None
                found.append(Delivery(row, incident, channels.find(s, self.settings, row.channel)))
            s.expunge_all()
        return found

    def _settle(self, row_id: int, error: str | None, final: bool) -> None:
        with self.sessions() as s:
            settle(s, self.settings, row_id, self.owner, error, final=final)

    async def one(self, delivery: Delivery) -> None:
        """Send one claimed row and record the outcome."""
        row = delivery.row
        if delivery.channel is None:
            error = f"channel {row.channel} is no longer configured"
            log.warning("notification %s not sent: %s", row.id, error)
            await asyncio.to_thread(self._settle, row.id, error, True)
            return
        try:
            await self.send(delivery, self.settings)
        except Exception as e:  # noqa: BLE001 - any failure is kept on the row and retried
            error = f"{type(e).__name__}: {e}"
            log.warning(
                "notification %s to channel %s failed (attempt %d): %s",
                row.id,
                delivery.channel.name,
                row.attempts + 1,
                error,
            )
            await asyncio.to_thread(self._settle, row.id, error, False)
            return
        log.info("notification %s delivered to channel %s", row.id, delivery.channel.name)
        await asyncio.to_thread(self._settle, row.id, None, False)

    def let_go(self) -> int:
        """Give back the leases this sender holds (at shutdown: a send cut short is retried
        by the next process at once, not after the lease); how many."""
        with self.sessions() as s:
            done = s.execute(
                update(Notification)
                .where(Notification.lease_owner == self.owner)
                .values(lease_owner=None, lease_until=None)
                .execution_options(synchronize_session=False)
            )
            return int(done.rowcount)  # type: ignore[attr-defined]

    async def run(self) -> None:
        """Deliver due rows until cancelled."""
        while True:
            try:
                batch = await asyncio.to_thread(self._claim)
                if batch:
                    await asyncio.gather(*(self.one(d) for d in batch))
                    continue
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the database may be away for a while
                log.exception("the notification sender could not read the outbox")
            self.wake.clear()
            try:
                await asyncio.wait_for(self.wake.wait(), POLL_SECONDS)
            except TimeoutError:
                pass
