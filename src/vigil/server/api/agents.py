"""What agents call: enrolment, heartbeats, incident reports; and the agents' list for staff."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, Request, status
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from vigil.server import agent_health, alerts, enrolment, heartbeats
from vigil.server.api import auth
from vigil.server.api.schemas import (
    AgentList,
    AgentView,
    EnrollRequest,
    EnrollResponse,
    HeartbeatRequest,
    IncidentBatch,
    IncidentBatchResponse,
    IncidentReport,
    ReportResult,
)
from vigil.server.incidents import MatchReport, receive
from vigil.server.models import Agent

router = APIRouter(prefix="/api/v1")


@router.post("/enroll", response_model=EnrollResponse, tags=["agents"])
def enroll(body: EnrollRequest, request: Request) -> EnrollResponse:
    """Trade a single-use enrolment token for the agent's own id and credential."""
    metrics = request.app.state.metrics
    try:
        with request.app.state.storage.session() as s:
            done = enrolment.enroll(s, body.token, body.host)
    except enrolment.EnrolmentRefused as e:
        metrics.enrolments.labels("refused").inc()
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(e)) from None
    metrics.enrolments.labels("enrolled").inc()
    repository = request.app.state.repository
    root = repository.root_json() if repository.exists() else None
    return EnrollResponse(agent_id=done.agent_id, credential=done.credential, root=root)


@router.post("/heartbeat", tags=["agents"])
async def heartbeat(
    body: HeartbeatRequest,
    request: Request,
    given: auth.Bearer,
) -> dict[str, str]:
    """An agent's catalog version, spool length and watch health (answered once written)."""
    credential = auth.agent_credential(request, given)
    state = request.app.state
    try:
        await state.heartbeats.submit(
            heartbeats.beat(
                credential,
                body.catalog_version,
                body.spool_length,
                body.watch.model_dump() if body.watch else None,
                catalog_error=body.catalog_error,
                catalog_age_seconds=body.catalog_age_seconds,
            )
        )
    except heartbeats.Refused:
        raise auth.refuse(request, "agent") from None
    except Exception:  # noqa: BLE001 - its batch was not written: the agent sends it again
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "heartbeat not recorded; send it again",
            headers={"Retry-After": "5"},
        ) from None
    state.metrics.heartbeats.inc()
    return {"status": "ok"}


def _match_report(r: IncidentReport) -> MatchReport:
    return MatchReport(
        report_id=r.id,
        path=r.path,
        member=r.member,
        hashset=r.hashset,
        entry_id=r.entry.id,
        category=r.entry.category,
        kind=r.kind,
        detection=r.detection,
        user=r.user,
        owner=r.owner,
        client=r.client,
        size=r.size,
        media_type=r.media_type,
        distance=r.distance,
        transform=r.transform,
        segment=r.segment.model_dump() if r.segment else None,
        seen_at=r.seen_at,
        fingerprints=r.fingerprints.model_dump(),
        catalog_version=r.catalog_version,
        file_times=r.file_times.model_dump() if r.file_times else None,
    )


# Concurrent batches naming the same new incident: the loser's transaction is retried (it then
# finds the incident and merges into it).
INTAKE_ATTEMPTS = 3


@router.post("/incidents", response_model=IncidentBatchResponse, tags=["agents"])
def report_incidents(
    body: IncidentBatch, request: Request, agent: auth.LiveAgent
) -> IncidentBatchResponse:
    """A batch of match reports from an agent; idempotent by each report's id."""
    reports = [_match_report(r) for r in body.incidents]
    storage = request.app.state.storage
    for attempt in range(INTAKE_ATTEMPTS):
        try:
            with storage.session() as s:
                mine = s.get(Agent, agent.id)
                assert mine is not None
                received = receive(s, mine, reports)
                # In the same transaction: an incident commits with its notifications.
                alerts.on_received(s, request.app.state.settings, mine, received)
            break
        except IntegrityError:
            if attempt == INTAKE_ATTEMPTS - 1:
                raise
    for r in received:
        request.app.state.metrics.reports.labels(r.outcome.value).inc()
    return IncidentBatchResponse(
        results=[
            ReportResult(id=r.report_id, incident=r.incident_id, outcome=r.outcome.value)
            for r in received
        ]
    )


@router.get("/agents", response_model=AgentList, tags=["staff"])
def list_agents(
    request: Request,
    s: auth.DbSession,
    principal: auth.Overseer,
) -> AgentList:
    """Every enrolled agent with its health as the server sees it (vigil.server.agent_health)."""
    agents = list(s.scalars(select(Agent).order_by(Agent.host, Agent.id)))
    found = agent_health.conditions(s, [a.id for a in agents])
    silent_after = request.app.state.settings.silent_after
    now = datetime.now(UTC)
    return AgentList(
        items=[
            AgentView(
                id=a.id,
                host=a.host,
                status=agent_health.status(a, found.get(a.id, []), silent_after, now),
                conditions=found.get(a.id, []),
                last_heartbeat=a.last_heartbeat,
                catalog_version=a.catalog_version,
                spool_length=a.spool_length,
            )
            for a in agents
        ]
    )


@router.post("/agents/{agent_id}/revoke", tags=["staff"])
def revoke_agent(
    agent_id: str,
    s: auth.DbSession,
    principal: auth.Admin,
) -> dict[str, str]:
    """Revoke an agent's credential: every later request with it is refused."""
    if not enrolment.revoke(s, agent_id, principal.actor):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such live agent")
    return {"status": "revoked"}
