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
    # Only what is needed here (loading whole incidents cost as much as the intake itself).
    new = list(
        session.execute(
            select(
                Incident.id,
                Incident.hashset,
                Incident.entry_id,
                Incident.category,
                Incident.fingerprints,
            ).where(Incident.id.in_(created))
        )
    )
    by_entry: dict[tuple[str, str], list[Any]] = {}
    for incident in new:
        by_entry.setdefault((incident.hashset, incident.entry_id), []).append(incident)
    # One query each for the batch's entries (a batch may name a thousand of them), per set:
    # `hashset = ? AND entry_id IN (...)` walks the (hashset, entry_id, first_seen) index.
    sets: dict[str, list[str]] = {}
    for hashset, entry_id in by_entry:
        sets.setdefault(hashset, []).append(entry_id)
    holding: dict[tuple[str, str], EntryFlood] = {}
    hosts: dict[tuple[str, str], int] = {}
    false_positives: dict[tuple[str, str], list[dict[str, Any]]] = {}
    start = datetime.now(UTC) - settings.flood_window
    for hashset, entry_ids in sets.items():
        for found in session.scalars(
            select(EntryFlood).where(
                EntryFlood.hashset == hashset, EntryFlood.entry_id.in_(entry_ids)
            )
        ):
            holding[(hashset, found.entry_id)] = found
        entries = (Incident.hashset == hashset, Incident.entry_id.in_(entry_ids))
        for entry_id, count in session.execute(
            select(Incident.entry_id, func.count(func.distinct(Incident.host)))
            # Read from the index alone (hashset, entry_id, first_seen, host); the entry's own
            # flood incident ("N hosts") is taken off below.
            .where(*entries, Incident.first_seen >= start)
            .group_by(Incident.entry_id)
        ):
            hosts[(hashset, entry_id)] = count
        for entry_id, fingerprints in session.execute(
            select(Incident.entry_id, Incident.fingerprints).where(
                *entries, Incident.status == Status.FALSE_POSITIVE.value
            )
        ):
            false_positives.setdefault((hashset, entry_id), []).append(fingerprints)
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for (hashset, entry_id), group in by_entry.items():
        flood = holding.get((hashset, entry_id))
        if flood is None or flood.state != HOLDING:
            count = hosts.get((hashset, entry_id), 0)
            if flood is not None and flood.started_at >= start:
                count -= 1
            flood = (
                _raise_flood(
                    session, settings, agent, flood, hashset, entry_id, group, count, targets
                )
                if count >= settings.flood_hosts
                else None
            )
        hold = hold_key(flood) if flood is not None else None
        for incident in group:
            known = false_positives.get((hashset, entry_id), [])
            if any(_same_file(incident.fingerprints, fp) for fp in known):
                audit.record(
                    session,
                    raised.ACTOR,
                    "notify.suppressed",
                    incident_id=incident.id,
                    detail={"reason": "false_positive", "set": hashset, "entry": entry_id},
                )
                continue
            rows += outbox.rows_for(incident, targets, hold, now)
    outbox.write(session, rows)


def _same_file(a: dict[str, Any], b: dict[str, Any]) -> bool:
    exact = [k for k in EXACT if a.get(k) and b.get(k)]
    if exact:
        return any(a[k] == b[k] for k in exact)
    return bool(a.get("pdq")) and a.get("pdq") == b.get("pdq")


def _raise_flood(
    session: Session,
    settings: Settings,
    agent: Agent,
    flood: EntryFlood | None,
    hashset: str,
    entry_id: str,
    group: list[Any],
    hosts: int,
    targets: list[Any],
) -> EntryFlood:
    """The entry crossed the threshold: its incident, its (re)started flood, held rows."""
    now = datetime.now(UTC)
    in_window = (
        Incident.hashset == hashset,
        Incident.entry_id == entry_id,
        Incident.first_seen >= now - settings.flood_window,
        Incident.detection != raised.DETECTION,
    )
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
