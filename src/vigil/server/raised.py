"""Incidents the server raises itself: agent health (silent, catalog rejected, watcher down,
stale catalog) and entry floods.

They live in the incident table with the API's incident shape, so reviewers work them and
channels notify them like any match: `kind` names what happened (`agent_silent`,
`catalog_rejected`, `watcher_unhealthy`, `catalog_stale`, `entry_flood`), `detection` is
`server`, and the fields about a matched file are empty (`path` "", no fingerprints); an agent
health incident names its agent and host, an entry flood its set and entry (and, as `agent`
and `host`, the agent whose report crossed the threshold and "N hosts").
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from vigil.server.incidents import Status
from vigil.server.models import Incident

DETECTION = "server"
# How the audit log names the server acting on its own.
ACTOR = "server"


def make(
    session: Session,
    *,
    kind: str,
    key: list[Any],
    agent_id: str,
    host: str,
    at: datetime,
    hashset: str = "",
    entry_id: str = "",
    category: str | None = None,
) -> Incident:
    """Insert one server-raised incident (identity from `key`: one per episode) and load it."""
    identity = hashlib.sha256(json.dumps(["server", kind, *key]).encode()).hexdigest()
    new_id = session.execute(
        insert(Incident).returning(Incident.id),
        [
            {
                "identity": identity,
                "agent_id": agent_id,
                "status": Status.NEW.value,
                "host": host,
                "user": None,
                "owner": None,
                "client": None,
                "path": "",
                "member": None,
                "size": None,
                "media_type": None,
                "hashset": hashset,
                "entry_id": entry_id,
                "category": category,
                "kind": kind,
                "kinds": [kind],
                "distance": None,
                "transform": None,
                "segment": None,
                "detection": DETECTION,
                "fingerprints": {},
                "catalog_version": None,
                "first_seen": at,
                "last_seen": at,
                "seen_count": 1,
                "updated_at": at,
            }
        ],
    ).scalar_one()
    incident = session.get(Incident, new_id)
    assert incident is not None
    return incident
