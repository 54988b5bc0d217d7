"""Agents' health as incidents: silent (no heartbeat for `silent_after`), a rejected catalog
update, a stopped or unhealthy watcher, a stale catalog.

Each condition is one episode per agent: an `AgentCondition` row holds its incident while it
lasts (its primary key keeps it one, even with several server processes checking), and the
heartbeat that shows the agent well again ends it with a comment on the incident. The incident
notifies like any other (see vigil.server.raised for its shape).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vigil.server import audit, outbox, raised
from vigil.server.models import Agent, AgentCondition, Comment, Incident
from vigil.server.settings import Settings

log = logging.getLogger("vigil.server.health")

SILENT = "agent_silent"
CATALOG_REJECTED = "catalog_rejected"
WATCHER_UNHEALTHY = "watcher_unhealthy"
CATALOG_STALE = "catalog_stale"
# Conditions a heartbeat reports (silence is noticed by the server's own check).
REPORTED = (CATALOG_REJECTED, WATCHER_UNHEALTHY, CATALOG_STALE)
AUTHOR = "vigil"


def open_condition(
    session: Session,
    settings: Settings,
    agent: Agent,
    condition: str,
    since: datetime,
    detail: str,
) -> Incident:
    """Start an episode: its incident, its condition row and the incident's notifications."""
    incident = raised.make(
        session,
        kind=condition,
        key=[agent.id, since.isoformat()],
        agent_id=agent.id,
        host=agent.host,
        at=since,
    )
    session.add(Comment(incident_id=incident.id, author=AUTHOR, at=since, text=detail))
    session.add(
        AgentCondition(agent_id=agent.id, condition=condition, incident_id=incident.id, since=since)
    )
    session.flush()
    outbox.enqueue(session, settings, incident)
    audit.record(
        session,
        raised.ACTOR,
        "agent.condition",
        incident_id=incident.id,
        detail={"agent": agent.id, "host": agent.host, "condition": condition},
    )
    log.warning("agent %s (%s): %s, incident %s", agent.id, agent.host, condition, incident.id)
    return incident


def close_condition(session: Session, row: AgentCondition, now: datetime, why: str) -> None:
    """End an episode: the incident is kept (and its review), updated with when it ended."""
    incident = session.get(Incident, row.incident_id)
    if incident is not None:
        incident.last_seen = now
        incident.updated_at = now
        session.add(Comment(incident_id=incident.id, author=AUTHOR, at=now, text=why))
    session.delete(row)
    log.info("agent %s: %s ended (%s)", row.agent_id, row.condition, why)


def reported_conditions(
    settings: Settings,
    *,
    catalog_error: str | None,
    catalog_age_seconds: float | None,
    watch: dict[str, Any] | None,
) -> dict[str, str]:
    """The conditions a heartbeat reports, each with what to say of it (empty: all well)."""
    reported: dict[str, str] = {}
    if catalog_error:
        reported[CATALOG_REJECTED] = f"catalog update rejected: {catalog_error}"
    if watch is not None and not watch.get("healthy", True):
        errors = "; ".join(watch.get("errors") or []) or "no detail"
        reported[WATCHER_UNHEALTHY] = f"watcher stopped or unhealthy: {errors}"
    stale = settings.stale_after.total_seconds()
    if catalog_age_seconds is not None and catalog_age_seconds > stale:
        reported[CATALOG_STALE] = (
            f"catalog {timedelta(seconds=int(catalog_age_seconds))} old "
            f"(stale after {settings.stale_after})"
        )
    return reported


def open_conditions(session: Session, agent_id: str) -> dict[str, AgentCondition]:
    """The agent's open episodes, by condition."""
    return {
        c.condition: c
        for c in session.scalars(select(AgentCondition).where(AgentCondition.agent_id == agent_id))
    }


def on_heartbeat(
    session: Session,
    settings: Settings,
    agent: Agent,
    reported: dict[str, str],
    conditions: dict[str, AgentCondition],
) -> None:
    """After a heartbeat (in its transaction): end silence; open or end reported conditions."""
    now = datetime.now(UTC)
    if SILENT in conditions:
        close_condition(
            session, conditions[SILENT], now, f"heartbeat received at {now.isoformat()}"
        )
    for condition in REPORTED:
        if condition in reported and condition not in conditions:
            open_condition(session, settings, agent, condition, now, reported[condition])
        elif condition not in reported and condition in conditions:
            close_condition(
                session, conditions[condition], now, f"reported well at {now.isoformat()}"
            )


def silent_agents(session: Session, settings: Settings, now: datetime) -> list[str]:
    """Live agents with no heartbeat for `silent_after` and no open silence episode."""
    last = func.coalesce(Agent.last_heartbeat, Agent.enrolled_at)
    return list(
        session.scalars(
            select(Agent.id)
            .outerjoin(
                AgentCondition,
                and_(AgentCondition.agent_id == Agent.id, AgentCondition.condition == SILENT),
            )
            .where(
                Agent.revoked_at.is_(None),
                last < now - settings.silent_after,
                AgentCondition.agent_id.is_(None),
            )
        )
    )


def check_silent(sessions: Callable[[], Any], settings: Settings) -> int:
    """Raise an incident for each newly silent agent (one transaction each); how many."""
    now = datetime.now(UTC)
    with sessions() as s:
        candidates = silent_agents(s, settings, now)
    raised_count = 0
    for agent_id in candidates:
        try:
            with sessions() as s:
                agent = s.get(Agent, agent_id)
                # Read again in this transaction: a heartbeat may have come meanwhile.
                if agent is None or agent.revoked_at is not None:
                    continue
                last = agent.last_heartbeat or agent.enrolled_at
                if last >= now - settings.silent_after:
                    continue
                since = last + settings.silent_after
                open_condition(
                    s,
                    settings,
                    agent,
                    SILENT,
                    since,
                    f"no heartbeat since {last.isoformat()} (silent after {settings.silent_after})",
                )
            raised_count += 1
        except IntegrityError:
            # Another server process raised it first.
            continue
    return raised_count


def interval(settings: Settings) -> float:
    """How often to look for silent agents: a quarter of `silent_after`, 0.5 s to 30 s."""
    return min(30.0, max(0.5, settings.silent_after.total_seconds() / 4))


async def watch_silence(sessions: Callable[[], Any], settings: Settings) -> None:
    """Check for silent agents until cancelled."""
    while True:
        try:
            await asyncio.to_thread(check_silent, sessions, settings)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the database may be away for a while
            log.exception("the silent-agent check failed")
        await asyncio.sleep(interval(settings))
