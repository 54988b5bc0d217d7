"""Agents: enrolment by a single-use token, their own credential, revocation (heartbeats:
vigil.server.heartbeats)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from vigil.server import audit
from vigil.server.credentials import AGENT_PREFIX, new_secret, secret_sha256
from vigil.server.models import Agent, EnrolmentToken


class EnrolmentRefused(Exception):
    """The token is unknown, used or expired (the agent is told no more than that)."""


@dataclass(frozen=True)
class Enrolled:
    """What an agent receives at enrolment: its id and its own credential."""

    agent_id: str
    credential: str


def enroll(session: Session, token: str, host: str) -> Enrolled:
    """Trade a live enrolment token for a new agent and its credential (the token is spent)."""
    now = datetime.now(UTC)
    agent_id = str(uuid.uuid4())
    # One statement both checks and spends the token: two agents racing for it cannot both win.
    spent = session.execute(
        update(EnrolmentToken)
        .where(
            EnrolmentToken.secret_sha256 == secret_sha256(token),
            EnrolmentToken.used_at.is_(None),
            EnrolmentToken.expires_at > now,
        )
        .values(used_at=now, agent_id=agent_id)
        .execution_options(synchronize_session=False)
    )
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        raise EnrolmentRefused("enrolment token unknown, used or expired")
    credential = new_secret(AGENT_PREFIX)
    session.add(
        Agent(id=agent_id, host=host, secret_sha256=secret_sha256(credential), enrolled_at=now)
    )
    audit.record(session, f"agent:{agent_id}", "agent.enroll", detail={"host": host})
    return Enrolled(agent_id, credential)


def agent_for_credential(session: Session, credential: str) -> Agent | None:
    """The live agent holding `credential`; None for an unknown or revoked one."""
    return session.scalar(
        select(Agent).where(
            Agent.secret_sha256 == secret_sha256(credential), Agent.revoked_at.is_(None)
        )
    )


def revoke(session: Session, agent_id: str, actor: str) -> bool:
    """Revoke an agent's credential; False when there is no such live agent."""
    agent = session.get(Agent, agent_id)
    if agent is None or agent.revoked_at is not None:
        return False
    agent.revoked_at = datetime.now(UTC)
    audit.record(session, actor, "agent.revoke", detail={"agent": agent_id, "host": agent.host})
    return True


def status(agent: Agent) -> str:
    """An agent's status as the API names it."""
    if agent.revoked_at is not None:
        return "revoked"
    if agent.last_heartbeat is None:
        return "enrolled"
    return "ok"
