"""Incident pages: the overview with its charts, the list, one incident, its review, export."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Query, Request, status
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from starlette.responses import Response

from vigil.server import audit, exports
from vigil.server import incidents as work
from vigil.server.incidents import Filters, Status
from vigil.server.models import AuditEntry, Incident
from vigil.server.web import charts
from vigil.server.web.deps import PREFIX, DbSession, Reader, ReviewerAct, render

router = APIRouter(prefix=PREFIX, include_in_schema=False)

PAGE = 50
# How long the incidents-per-day chart is reused.
CHART_SECONDS = 60
# The review's workflow: which statuses a reviewer may move an incident to from each.
NEXT: dict[Status, tuple[Status, ...]] = {
    Status.NEW: (Status.IN_REVIEW, Status.FALSE_POSITIVE),
    Status.IN_REVIEW: (Status.CONFIRMED, Status.FALSE_POSITIVE),
    Status.CONFIRMED: (Status.HANDED_TO_POLICE, Status.FALSE_POSITIVE),
    Status.HANDED_TO_POLICE: (),
    # A false positive can be looked at again.
    Status.FALSE_POSITIVE: (Status.IN_REVIEW,),
}
LABELS = {
    Status.NEW: "New",
    Status.IN_REVIEW: "In review",
    Status.CONFIRMED: "Confirmed",
    Status.HANDED_TO_POLICE: "Handed to police",
    Status.FALSE_POSITIVE: "False positive",
}


def _status(value: str | None) -> Status | None:
    if not value:
        return None
    try:
        return Status(value)
    except ValueError:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "unknown status") from None


def _client(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return work.client_address(value)
    except ValueError as e:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(e)) from None


def _since(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_ENTITY, "since: a date like 2026-11-26"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@router.get("/")
def overview(request: Request, s: DbSession, me: Reader) -> Response:
    """Charts: incidents per day by category (loaded after the page), agents' health."""
    return render(
        request,
        "overview.html",
        me,
        nav="overview",
        health=charts.agents_health(s, silent_after=request.app.state.settings.silent_after),
        days=charts.DAYS,
    )


@router.get("/charts/incidents-per-day")
def incidents_per_day(request: Request, s: DbSession, me: Reader) -> Response:
    """The incidents-per-day chart, fetched by the overview once it is shown (htmx).

    It groups every incident of the last 30 days (seconds with a million of them), so it is
    drawn at most once a minute per server process and the page never waits for it.
    """
    cache: dict[str, tuple[float, charts.Chart]] = request.app.state.__dict__.setdefault(
        "dashboard_charts", {}
    )
    entry = cache.get("per_day")
    if entry is None or time.monotonic() - entry[0] > CHART_SECONDS:
        entry = (time.monotonic(), charts.incidents_per_day(s))
        cache["per_day"] = entry
    return render(request, "chart_per_day.html", me, per_day=entry[1], days=charts.DAYS)


@router.get("/incidents")
def incident_list(
    request: Request,
    s: DbSession,
    me: Reader,
    status_: Annotated[str | None, Query(alias="status")] = None,
    host: str | None = None,
    client: str | None = None,
    category: str | None = None,
    since: str | None = None,
    before: int | None = None,
) -> Response:
    """Incidents newest first, filtered, one keyset page at a time (no count of the table)."""
    filters = Filters(
        _status(status_), host or None, category or None, _since(since), _client(client)
    )
    rows, next_before = work.page(s, filters, before, PAGE)
    audit.record(
        s,
        me.principal.actor,
        "incident.list",
        detail={"incidents": [r.id for r in rows], "query": str(request.url.query)},
    )
    query = {
        k: v
        for k, v in {
            "status": status_,
            "host": host,
            "client": client,
            "category": category,
            "since": since,
        }.items()
        if v
    }
    return render(
        request,
        "incidents.html",
        me,
        nav="incidents",
        rows=rows,
        filters=query,
        statuses=list(Status),
        labels=LABELS,
        next_url=(
            str(request.url.include_query_params(before=next_before)) if next_before else None
        ),
        first_url=str(request.url.remove_query_params("before")) if before else None,
    )


def _incident(s: DbSession, incident_id: int) -> Incident:
    incident = s.get(Incident, incident_id)
    if incident is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such incident")
    return incident


def _history(s: DbSession, incident_id: int) -> list[AuditEntry]:
    return list(
        s.scalars(
            select(AuditEntry).where(AuditEntry.incident_id == incident_id).order_by(AuditEntry.id)
        )
    )


def _detail(request: Request, s: DbSession, me: Any, incident: Incident, **extra: Any) -> Response:
    return render(
        request,
        "incident.html",
        me,
        nav="incidents",
        i=incident,
        v=work.view(incident),
        comments=work.comments(s, incident.id),
        history=_history(s, incident.id),
        next_statuses=NEXT[Status(incident.status)],
        labels=LABELS,
        **extra,
    )


@router.get("/incidents/{incident_id}")
def incident_detail(request: Request, s: DbSession, me: Reader, incident_id: int) -> Response:
    """Everything an incident has, its comments and its history; the view is audited."""
    incident = _incident(s, incident_id)
    audit.record(s, me.principal.actor, "incident.view", incident_id=incident.id)
    s.flush()
    return _detail(request, s, me, incident)


@router.post("/incidents/{incident_id}")
def incident_change(
    request: Request,
    s: DbSession,
    me: ReviewerAct,
    incident_id: int,
    new_status: Annotated[str, Form(alias="status")] = "",
    comment: Annotated[str, Form(max_length=10000)] = "",
) -> Response:
    """Move an incident along the workflow and/or comment on it."""
    incident = _incident(s, incident_id)
    target = _status(new_status)
    if target is not None and target not in NEXT[Status(incident.status)]:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"an incident that is {LABELS[Status(incident.status)].lower()} cannot become "
            f"{LABELS[target].lower()}",
        )
    if target is None and not comment.strip():
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "nothing to change")
    work.change(s, incident, me.principal.actor, me.principal.name, target, comment.strip() or None)
    return RedirectResponse(f"{PREFIX}/incidents/{incident.id}", 303)


@router.get("/export")
def export_form(request: Request, me: Reader) -> Response:
    """The export page: confirmed incidents for police tools."""
    return render(
        request, "export.html", me, nav="export", exportable=exports.EXPORTABLE, labels=LABELS
    )


@router.post("/export")
def export_download(
    s: DbSession,
    me: ReviewerAct,
    format: Annotated[str, Form()] = "vics",
    statuses: Annotated[list[str] | None, Form(alias="status")] = None,
) -> Response:
    """Download confirmed incidents as VICS 2.0 JSON or CSV; audited."""
    try:
        chosen = [Status(v) for v in statuses or []]
        body, _count = exports.export(s, format, chosen, me.principal.actor)
    except ValueError as e:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(e)) from e
    return Response(
        body,
        media_type=exports.MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="{exports.filename(format)}"'},
    )
