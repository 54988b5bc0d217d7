"""What a new incident notifies: the flood guard and false-positive suppression, then the outbox.

Runs in intake's transaction, so an incident and its notifications commit together.

- Flood guard: when one entry (set, entry id) has matched on `[flood] hosts` distinct hosts
  within `[flood] window`, the server raises one `entry_flood` incident about the entry (it is
  notified at once) and holds the notifications of that entry's incidents, those still unsent
  and those to come, until an admin releases or drops them (`/api/v1/floods`). A common logo
  in a bad list entry then costs one alert, not thousands.
- False positives: a new incident whose file (same MD5, SHA-1 or SHA-256; PDQ when no exact
  hash is known) was marked `false_positive` for the same entry is recorded as usual (its
  seen_count grows with later sightings) but notifies no one; the audit log says so.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from vigil.server import audit, channels, outbox, raised
from vigil.server.incidents import Outcome, Received, Status
from vigil.server.models import Agent, EntryFlood, Incident, Notification
from vigil.server.settings import Settings

log = logging.getLogger("vigil.server.notify")

FLOOD = "entry_flood"
HOLDING = "holding"
RELEASED = "released"
DROPPED = "dropped"
EXACT = ("sha256", "sha1", "md5")


def hold_key(flood: EntryFlood) -> str:
    """The `hold` of the outbox rows a flood holds."""
    return f"flood:{flood.id}"


def on_received(
    session: Session, settings: Settings, agent: Agent, received: Sequence[Received]
) -> None:
    """Notifications for the incidents a batch created (merges and resends notify no one)."""
    created = sorted({r.incident_id for r in received if r.outcome is Outcome.CREATED})
    if not created:
        return
    targets = channels.active(session, settings)
    new = list(session.scalars(select(Incident).where(Incident.id.in_(created))))
    by_entry: dict[tuple[str, str], list[Incident]] = {}
    for incident in new:
        by_entry.setdefault((incident.hashset, incident.entry_id), []).append(incident)
    for (hashset, entry_id), group in by_entry.items():
        flood = _flood(session, settings, agent, hashset, entry_id, group, targets)
        hold = hold_key(flood) if flood is not None else None
        false_positives = _false_positives(session, hashset, entry_id)
        for incident in group:
            if any(_same_file(incident.fingerprints, fp) for fp in false_positives):
                audit.record(
                    session,
                    raised.ACTOR,
                    "notify.suppressed",
                    incident_id=incident.id,
                    detail={"reason": "false_positive", "set": hashset, "entry": entry_id},
                )
                continue
            if targets:
                outbox.enqueue(session, settings, incident, hold=hold, targets=targets)


def _same_file(a: dict[str, Any], b: dict[str, Any]) -> bool:
    exact = [k for k in EXACT if a.get(k) and b.get(k)]
    if exact:
        return any(a[k] == b[k] for k in exact)
    return bool(a.get("pdq")) and a.get("pdq") == b.get("pdq")


def _false_positives(session: Session, hashset: str, entry_id: str) -> list[dict[str, Any]]:
    return list(
        session.scalars(
            select(Incident.fingerprints).where(
                Incident.hashset == hashset,
                Incident.entry_id == entry_id,
                Incident.status == Status.FALSE_POSITIVE.value,
            )
        )
    )


def _flood(
    session: Session,
    settings: Settings,
    agent: Agent,
    hashset: str,
    entry_id: str,
    group: list[Incident],
    targets: list[Any],
) -> EntryFlood | None:
    """The entry's holding flood, raised now if this batch crossed the threshold."""
    flood = session.scalar(
        select(EntryFlood).where(EntryFlood.hashset == hashset, EntryFlood.entry_id == entry_id)
    )
    if flood is not None and flood.state == HOLDING:
        return flood
    now = datetime.now(UTC)
    start = now - settings.flood_window
    in_window = (
        Incident.hashset == hashset,
        Incident.entry_id == entry_id,
        Incident.first_seen >= start,
        Incident.detection != raised.DETECTION,
    )
    hosts = session.scalar(select(func.count(func.distinct(Incident.host))).where(*in_window)) or 0
    if hosts < settings.flood_hosts:
        return None
    category = next((i.category for i in group if i.category), None)
    incident = raised.make(
        session,
        kind=FLOOD,
        key=[hashset, entry_id, now.isoformat()],
        agent_id=agent.id,
        host=f"{hosts} hosts",
        at=now,
        hashset=hashset,
        entry_id=entry_id,
        category=category,
    )
    if flood is None:
        flood = EntryFlood(hashset=hashset, entry_id=entry_id)
        session.add(flood)
    flood.incident_id = incident.id
    flood.state = HOLDING
    flood.started_at = now
    flood.hosts = hosts
    session.flush()
    # The flood's own incident is notified at once; the entry's unsent ones wait.
    outbox.enqueue(session, settings, incident, targets=targets)
    session.execute(
        update(Notification)
        .where(
            Notification.status == outbox.State.PENDING.value,
            Notification.incident_id.in_(select(Incident.id).where(*in_window)),
        )
        .values(status=outbox.State.HELD.value, hold=hold_key(flood))
        .execution_options(synchronize_session=False)
    )
    audit.record(
        session,
        raised.ACTOR,
        "notify.flood",
        incident_id=incident.id,
        detail={"set": hashset, "entry": entry_id, "hosts": hosts},
    )
    log.warning(
        "entry %s of set %s matched on %d hosts within %s: incident %s, its notifications held",
        entry_id,
        hashset,
        hosts,
        settings.flood_window,
        incident.id,
    )
    return flood


def floods(session: Session) -> list[dict[str, Any]]:
    """Every entry flood, newest first, with how many notifications it holds."""
    rows = session.scalars(select(EntryFlood).order_by(EntryFlood.started_at.desc()))
    shown = []
    for f in rows:
        held = session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.hold == hold_key(f), Notification.status == outbox.State.HELD.value)
        )
        shown.append(
            {
                "id": f.id,
                "set": f.hashset,
                "entry": f.entry_id,
                "incident": f.incident_id,
                "state": f.state,
                "started_at": f.started_at.isoformat(),
                "hosts": f.hosts,
                "held": held,
            }
        )
    return shown


def settle_flood(session: Session, flood_id: int, release: bool, actor: str) -> int:
    """Release (send) or drop every notification a flood holds; later incidents of the entry
    notify as usual again. How many rows were released or dropped."""
    flood = session.get(EntryFlood, flood_id)
    if flood is None:
        raise LookupError(f"no flood {flood_id}")
    flood.state = RELEASED if release else DROPPED
    if release:
        return outbox.release(session, None, hold_key(flood), actor)
    return outbox.drop(session, None, hold_key(flood), actor)
