"""Agents' health as the server itself sees it, for the API and every dashboard page alike.

An agent is `silent` when the server has an open `agent_silent` episode for it (vigil.server.health
raises those) or when it has not been heard from for `[agents] silent_after` (the check runs only
every quarter of that, so the threshold is applied here too and no page shows `ok` in between).
Other open conditions (catalog_rejected, watcher_unhealthy, catalog_stale) are listed beside the
status: they do not change it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, exists, func, select
from sqlalchemy.orm import Session

from vigil.server import enrolment, health
from vigil.server.models import Agent, AgentCondition

REVOKED = "revoked"
SILENT = "silent"
ENROLLED = "enrolled"
OK = "ok"
# The API's status values, in the order the health chart draws them.
STATUSES = (OK, SILENT, ENROLLED, REVOKED)


def conditions(session: Session, agent_ids: Iterable[str]) -> dict[str, list[str]]:
    """The open conditions of each of `agent_ids` (sorted; agents without any left out)."""
    ids = list(agent_ids)
    found: dict[str, list[str]] = {}
    # Chunks keep the IN list within every database's parameter limit.
    for start in range(0, len(ids), 500):
        rows = session.execute(
            select(AgentCondition.agent_id, AgentCondition.condition).where(
                AgentCondition.agent_id.in_(ids[start : start + 500])
            )
        )
        for agent_id, condition in rows:
            found.setdefault(agent_id, []).append(condition)
    return {k: sorted(v) for k, v in found.items()}


def status(agent: Agent, open_conditions: list[str], silent_after: timedelta, now: datetime) -> str:
    """`revoked`, `silent`, `enrolled` (never heard from, not yet silent) or `ok`."""
    if agent.revoked_at is not None:
        return REVOKED
    last = agent.last_heartbeat or agent.enrolled_at
    if health.SILENT in open_conditions or last < now - silent_after:
        return SILENT
    return enrolment.status(agent)


def status_sql(silent_after: timedelta, now: datetime) -> Any:
    """`status` as an SQL expression over Agent (the health chart counts by it)."""
    silent_open = exists().where(
        and_(AgentCondition.agent_id == Agent.id, AgentCondition.condition == health.SILENT)
    )
    last = func.coalesce(Agent.last_heartbeat, Agent.enrolled_at)
    return case(
        (Agent.revoked_at.is_not(None), REVOKED),
        (silent_open, SILENT),
        (last < now - silent_after, SILENT),
        (Agent.last_heartbeat.is_(None), ENROLLED),
        else_=OK,
    )
