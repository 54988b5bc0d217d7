"""What staff call: incident pages, one incident, its review."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from sqlalchemy.orm import Session

from vigil.server import audit
from vigil.server import incidents as work
from vigil.server.api import auth
from vigil.server.api.schemas import IncidentChange, IncidentPage
from vigil.server.incidents import Filters, Status
from vigil.server.models import Incident

router = APIRouter(prefix="/api/v1", tags=["staff"])


def _client(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return work.client_address(value)
    except ValueError as e:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(e)) from None


@router.get("/incidents", response_model=IncidentPage)
def list_incidents(
    request: Request,
    s: auth.DbSession,
    principal: auth.Reader,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    host: str | None = None,
    client: Annotated[
        str | None, Query(description="The client's address (IPv4 or IPv6)", max_length=255)
    ] = None,
    category: str | None = None,
    since: Annotated[
        datetime | None, Query(description="Only incidents seen at or after this time")
    ] = None,
    before: Annotated[
        int | None, Query(description="Page cursor: incidents with an id below it")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=work.PAGE_MAX)] = work.PAGE_DEFAULT,
) -> Response:
    """Incidents, newest first; `next` is the URL of the next page, null on the last."""
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    filters = Filters(status_, host, category, since, _client(client))
    rows, next_before = work.page(s, filters, before, limit)
    audit.record(
        s,
        principal.actor,
        "incident.list",
        detail={"incidents": [r.id for r in rows], "query": str(request.url.query)},
    )
    next_url = (
        str(request.url.include_query_params(before=next_before))
        if next_before is not None
        else None
    )
    # Serialised here: the rows are already the API's shape, and validating a hundred of them
    # again through the response model cost as much as the query.
    return Response(
        orjson.dumps({"items": [work.view(r) for r in rows], "next": next_url}),
        media_type="application/json",
    )


def _incident(s: Session, incident_id: int) -> Incident:
    incident = s.get(Incident, incident_id)
    if incident is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such incident")
    return incident


@router.get("/incidents/{incident_id}")
def get_incident(
    incident_id: int,
    s: auth.DbSession,
    principal: auth.Reader,
) -> dict[str, Any]:
    """One incident with its comments."""
    incident = _incident(s, incident_id)
    audit.record(s, principal.actor, "incident.view", incident_id=incident.id)
    return {**work.view(incident), "comments": work.comments(s, incident.id)}


@router.patch("/incidents/{incident_id}")
def change_incident(
    incident_id: int,
    body: IncidentChange,
    s: auth.DbSession,
    principal: auth.Reviewer,
) -> dict[str, Any]:
    """Move an incident through its review (`status`) and/or comment on it."""
    incident = _incident(s, incident_id)
    work.change(s, incident, principal.actor, principal.name, body.status, body.comment)
    s.flush()
    return {**work.view(incident), "comments": work.comments(s, incident.id)}
