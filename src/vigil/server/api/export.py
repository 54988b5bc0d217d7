"""`GET /api/v1/incidents/export`: confirmed incidents as VICS 2.0 or CSV, for police tools.

Registered before the incident routes, so `export` is not read as an incident id.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status

from vigil.server import exports
from vigil.server.api import auth
from vigil.server.incidents import Status

router = APIRouter(prefix="/api/v1", tags=["staff"])


@router.get(
    "/incidents/export",
    responses={200: {"content": {"application/json": {}, "text/csv": {}}}},
)
def export_incidents(
    s: auth.DbSession,
    principal: auth.Reviewer,
    format: Annotated[str, Query(description="vics (VICS 2.0 JSON) or csv")] = "vics",
    status_: Annotated[
        list[Status] | None,
        Query(alias="status", description="confirmed and/or handed_to_police (default both)"),
    ] = None,
) -> Response:
    """Confirmed (and handed-to-police) incidents for police tools (reviewers, admins); audited."""
    try:
        body, _count = exports.export(s, format, status_ or [], principal.actor)
    except exports.ExportError as e:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(e)) from e
    return Response(
        body,
        media_type=exports.MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="{exports.filename(format)}"'},
    )
