"""Incidents: intake of agents' reports (idempotent, merged per file and entry), pages, review.

One incident per (agent, path, archive member, set, entry): an exact copy matched by MD5, SHA-1
and PDQ of one entry is one incident whose `kind` is the strongest that matched (by the rank in
vigil.kinds) and `kinds` all of them. The agent names each report; a report sent again (the
agent's spool resends what it has no acknowledgement for) is acknowledged and changes nothing.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from types import SimpleNamespace
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from vigil import kinds as kind_registry
from vigil.server import audit
from vigil.server.models import Agent, Comment, Incident, Report

# Largest page of `GET /api/v1/incidents`, and the page size when none is asked for.
PAGE_MAX = 1000
PAGE_DEFAULT = 100


class Status(StrEnum):
    """Where an incident is in its review."""

    NEW = "new"
    IN_REVIEW = "in_review"
    CONFIRMED = "confirmed"
    HANDED_TO_POLICE = "handed_to_police"
    FALSE_POSITIVE = "false_positive"


class Detection(StrEnum):
    """How the match was found."""

    REALTIME = "realtime"
    SCHEDULED = "scheduled"
    MANUAL = "manual"
    GATEWAY = "gateway"


@dataclass
class MatchReport:
    """One match as an agent reports it (fingerprints and metadata only, never content)."""

    report_id: str
    path: str
    hashset: str
    entry_id: str
    kind: str
    detection: Detection
    member: str | None = None
    category: str | None = None
    user: str | None = None
    owner: str | None = None
    client: str | None = None
    size: int | None = None
    media_type: str | None = None
    distance: int | None = None
    transform: str | None = None
    segment: dict[str, Any] | None = None
    seen_at: datetime | None = None
    fingerprints: dict[str, str | None] = field(default_factory=dict)
    catalog_version: str | None = None
    file_times: dict[str, datetime | None] | None = None


# An incident's file times: the report's `file_times` keys and the columns that keep them.
FILE_TIMES = {"modified": "file_modified", "changed": "file_changed", "created": "file_created"}


class Outcome(StrEnum):
    """What intake did with one report."""

    CREATED = "created"
    MERGED = "merged"
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class Received:
    """One report's acknowledgement: its id, the incident it belongs to, what was done."""

    report_id: str
    incident_id: int
    outcome: Outcome


def client_address(value: str) -> str:
    """A client's address as incidents keep it: an IPv4 or IPv6 address in its compressed
    form (`2001:DB8:0::1` is `2001:db8::1`; `::ffff:a.b.c.d` stays IPv6, a zone id stays), so a
    filter finds it however it was written; ValueError for anything else."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f"client: not an IPv4 or IPv6 address: {value[:100]!r}") from None


def identity(agent_id: str, report: MatchReport) -> str:
    """The incident a report belongs to: SHA-256 of (agent, path, member, set, entry), and the
    client for a report that names one (a gateway's: two machines fetching one known image
    through the proxy are two incidents, each naming its own client; an agent's reports name
    none, so their identities are what they always were)."""
    parts = [agent_id, report.path, report.member, report.hashset, report.entry_id]
    if report.client is not None:
        parts.append(report.client)
    return hashlib.sha256(json.dumps(parts).encode("utf-8")).hexdigest()


def _by_rank(names: set[str]) -> list[str]:
    return sorted(names, key=lambda n: kind_registry.kind(n).rank, reverse=True)


def receive(session: Session, agent: Agent, reports: Sequence[MatchReport]) -> list[Received]:
    """Take a batch of reports from `agent` in the caller's transaction; one answer per report.

    Reports of one item in one scan carry the same `seen_at` and count as one sighting
    (`seen_count` grows by one, `kinds` by each kind); a later `seen_at` is a new sighting.
    New incidents and the reports' ids are written with one multi-row INSERT each (ORM objects
    cost more than the database here); existing incidents are merged into as ORM objects.
    """
    now = datetime.now(UTC)
    ids = [r.report_id for r in reports]
    known = {
        report_id: incident_id
        for report_id, incident_id in session.execute(
            select(Report.report_id, Report.incident_id).where(
                Report.agent_id == agent.id, Report.report_id.in_(ids)
            )
        )
    }
    keys = {identity(agent.id, r) for r in reports}
    existing: dict[str, Incident] = {
        i.identity: i for i in session.scalars(select(Incident).where(Incident.identity.in_(keys)))
    }
    created: dict[str, SimpleNamespace] = {}
    # (report id, incident identity, outcome, incident id when already known)
    answers: list[tuple[str, str | None, Outcome, int]] = []
    fresh: list[tuple[str, str]] = []
    for report in reports:
        if report.report_id in known:
            answers.append((report.report_id, None, Outcome.DUPLICATE, known[report.report_id]))
            continue
        seen = report.seen_at or now
        key = identity(agent.id, report)
        target: Incident | SimpleNamespace | None = existing.get(key) or created.get(key)
        if target is None:
            created[key] = _new_incident(agent, report, key, seen, now)
            outcome = Outcome.CREATED
        else:
            _merge(target, report, seen, now)
            outcome = Outcome.MERGED
        # A report id repeated inside one batch is the same report.
        known[report.report_id] = -1
        fresh.append((report.report_id, key))
        answers.append((report.report_id, key, outcome, -1))
    incident_ids = {key: i.id for key, i in existing.items()}
    if created:
        rows = session.execute(
            insert(Incident).returning(Incident.identity, Incident.id),
            [vars(c) for c in created.values()],
        )
        incident_ids.update({key: id_ for key, id_ in rows})
    if fresh:
        session.execute(
            insert(Report),
            [
                {
                    "agent_id": agent.id,
                    "report_id": report_id,
                    "incident_id": incident_ids[key],
                    "received_at": now,
                }
                for report_id, key in fresh
            ],
        )
    by_report = {report_id: incident_ids[key] for report_id, key in fresh}
    return [
        Received(report_id, incident_id if incident_id != -1 else by_report[report_id], outcome)
        for report_id, _key, outcome, incident_id in answers
    ]


def _new_incident(
    agent: Agent, report: MatchReport, key: str, seen: datetime, now: datetime
) -> SimpleNamespace:
    return SimpleNamespace(
        identity=key,
        agent_id=agent.id,
        status=Status.NEW.value,
        host=agent.host,
        user=report.user,
        owner=report.owner,
        client=report.client,
        path=report.path,
        member=report.member,
        size=report.size,
        media_type=report.media_type,
        hashset=report.hashset,
        entry_id=report.entry_id,
        category=report.category,
        kind=report.kind,
        kinds=[report.kind],
        distance=report.distance,
        transform=report.transform,
        segment=report.segment,
        detection=report.detection.value,
        fingerprints={k: v for k, v in report.fingerprints.items() if v is not None},
        catalog_version=report.catalog_version,
        **{column: (report.file_times or {}).get(key) for key, column in FILE_TIMES.items()},
        first_seen=seen,
        last_seen=seen,
        seen_count=1,
        updated_at=now,
    )


def _merge(
    incident: Incident | SimpleNamespace, report: MatchReport, seen: datetime, now: datetime
) -> None:
    if seen != incident.last_seen:
        incident.seen_count += 1
    incident.first_seen = min(incident.first_seen, seen)
    incident.last_seen = max(incident.last_seen, seen)
    kinds = set(incident.kinds) | {report.kind}
    strongest = kind_registry.strongest(kinds)
    if strongest == report.kind and report.kind != incident.kind:
        # How close and under which flip belong to the kind the incident names.
        incident.distance = report.distance
        incident.transform = report.transform
        incident.segment = report.segment
    incident.kind = strongest
    incident.kinds = _by_rank(kinds)
    incident.fingerprints = {
        **incident.fingerprints,
        **{k: v for k, v in report.fingerprints.items() if v is not None},
    }
    for name in ("user", "owner", "client", "size", "media_type", "category", "catalog_version"):
        value = getattr(report, name)
        if value is not None:
            setattr(incident, name, value)
    if report.file_times:
        # The latest report's stat: a file written again since shows its new times.
        for key, column in FILE_TIMES.items():
            setattr(incident, column, report.file_times.get(key))
    incident.updated_at = now


@dataclass(frozen=True)
class Filters:
    """What `GET /api/v1/incidents` narrows to."""

    status: Status | None = None
    host: str | None = None
    category: str | None = None
    since: datetime | None = None
    client: str | None = None


def page(
    session: Session, filters: Filters, before: int | None, limit: int
) -> tuple[list[Incident], int | None]:
    """Incidents newest first, those with an id below `before`; and where the next page starts.

    Keyset pages: each is one index range scan however deep, so a million incidents page as
    fast as ten.
    """
    query = select(Incident).order_by(Incident.id.desc()).limit(limit + 1)
    if before is not None:
        query = query.where(Incident.id < before)
    if filters.status is not None:
        query = query.where(Incident.status == filters.status.value)
    if filters.host is not None:
        query = query.where(Incident.host == filters.host)
    if filters.client is not None:
        query = query.where(Incident.client == filters.client)
    if filters.category is not None:
        query = query.where(Incident.category == filters.category)
    if filters.since is not None:
        query = query.where(Incident.last_seen >= filters.since)
    rows = list(session.scalars(query))
    if len(rows) > limit:
        return rows[:limit], rows[limit - 1].id
    return rows, None


def view(incident: Incident) -> dict[str, Any]:
    """An incident as the API shows it."""
    return {
        "id": incident.id,
        "status": incident.status,
        "host": incident.host,
        "agent": incident.agent_id,
        "user": incident.user,
        "owner": incident.owner,
        "client": incident.client,
        "path": incident.path,
        "member": incident.member,
        "size": incident.size,
        "media_type": incident.media_type,
        "hashset": incident.hashset,
        "entry": {"id": incident.entry_id, "category": incident.category},
        "kind": incident.kind,
        "kinds": list(incident.kinds),
        "distance": incident.distance,
        "transform": incident.transform,
        "segment": incident.segment,
        "detection": incident.detection,
        "first_seen": incident.first_seen.isoformat(),
        "last_seen": incident.last_seen.isoformat(),
        "seen_count": incident.seen_count,
        "fingerprints": {k.name: incident.fingerprints.get(k.name) for k in kind_registry.SINGLE},
        "catalog_version": incident.catalog_version,
        "file_times": _file_times(incident),
    }


def _file_times(incident: Incident) -> dict[str, str | None] | None:
    times = {key: getattr(incident, column) for key, column in FILE_TIMES.items()}
    if all(t is None for t in times.values()):
        return None
    return {key: t.isoformat() if t is not None else None for key, t in times.items()}


def comments(session: Session, incident_id: int) -> list[dict[str, Any]]:
    """An incident's comments, oldest first."""
    rows = session.scalars(
        select(Comment).where(Comment.incident_id == incident_id).order_by(Comment.id)
    )
    return [{"author": c.author, "at": c.at.isoformat(), "text": c.text} for c in rows]


def change(
    session: Session,
    incident: Incident,
    actor: str,
    author: str,
    status: Status | None,
    comment: str | None,
) -> None:
    """Move an incident to `status` and/or add a comment; both written to the audit log."""
    now = datetime.now(UTC)
    detail: dict[str, Any] = {}
    if status is not None and status.value != incident.status:
        detail["status"] = [incident.status, status.value]
        incident.status = status.value
    if comment:
        session.add(Comment(incident_id=incident.id, author=author, at=now, text=comment))
        detail["comment"] = comment
    incident.updated_at = now
    audit.record(session, actor, "incident.update", incident_id=incident.id, detail=detail)


__all__ = [
    "PAGE_DEFAULT",
    "PAGE_MAX",
    "Detection",
    "Filters",
    "MatchReport",
    "Outcome",
    "Received",
    "Status",
    "change",
    "comments",
    "identity",
    "page",
    "receive",
    "view",
]
