"""The audit log: every view and change of an incident, every credential made or refused."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from vigil.server.models import AuditEntry

# The actor of a command run on the server's own machine (whoever can run it owns the home).
CLI_ACTOR = "cli"


def record(
    session: Session,
    actor: str,
    action: str,
    *,
    incident_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Add one audit row in the caller's transaction (it commits or rolls back with the act)."""
    session.add(
        AuditEntry(
            at=datetime.now(UTC), actor=actor, action=action, incident_id=incident_id, detail=detail
        )
    )
