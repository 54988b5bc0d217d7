"""Admins' notification API: the outbox (status, attempts, errors), held rows, entry floods,
channels (server.toml's read-only, the database's editable), test messages."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import BaseModel, Field

from vigil.server import alerts, channels, outbox
from vigil.server.api import auth
from vigil.server.settings import SettingsError

router = APIRouter(prefix="/api/v1", tags=["notifications"])


class RowIds(BaseModel):
    """Outbox rows to release or drop."""

    ids: list[int] = Field(min_length=1, max_length=1000)


class ChannelBody(BaseModel):
    """A channel as a `[[notify]]` table says it (`type` and its keys; `name` in the path)."""

    config: dict[str, Any]


@router.get("/notifications")
def list_notifications(
    request: Request,
    s: auth.DbSession,
    principal: auth.Admin,
    status_: Annotated[outbox.State | None, Query(alias="status")] = None,
    incident: int | None = None,
    before: int | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Outbox rows newest first, with status, attempts and the last error."""
    rows, next_before = outbox.page(s, status_, incident, before, limit)
    next_url = (
        str(request.url.include_query_params(before=next_before))
        if next_before is not None
        else None
    )
    return {"items": [outbox.view(r) for r in rows], "next": next_url}


@router.post("/notifications/release")
def release_notifications(body: RowIds, s: auth.DbSession, principal: auth.Admin) -> dict[str, int]:
    """Send held rows now."""
    return {"released": outbox.release(s, body.ids, None, principal.actor)}


@router.post("/notifications/drop")
def drop_notifications(body: RowIds, s: auth.DbSession, principal: auth.Admin) -> dict[str, int]:
    """Never send these held or pending rows."""
    return {"dropped": outbox.drop(s, body.ids, None, principal.actor)}


@router.get("/floods")
def list_floods(s: auth.DbSession, principal: auth.Admin) -> dict[str, Any]:
    """Entries that matched on many hosts at once, and the notifications each holds."""
    return {"items": alerts.floods(s)}


def _settle(s: Any, flood_id: int, release: bool, actor: str) -> int:
    try:
        return alerts.settle_flood(s, flood_id, release, actor)
    except LookupError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from None


@router.post("/floods/{flood_id}/release")
def release_flood(flood_id: int, s: auth.DbSession, principal: auth.Admin) -> dict[str, int]:
    """Send every notification the flood holds."""
    return {"released": _settle(s, flood_id, True, principal.actor)}


@router.post("/floods/{flood_id}/drop")
def drop_flood(flood_id: int, s: auth.DbSession, principal: auth.Admin) -> dict[str, int]:
    """Drop every notification the flood holds."""
    return {"dropped": _settle(s, flood_id, False, principal.actor)}


@router.get("/notify/channels")
def list_channels(request: Request, s: auth.DbSession, principal: auth.Admin) -> dict[str, Any]:
    """Every channel with its source (toml: read-only; db: editable), secrets masked."""
    return {"items": channels.listing(s, request.app.state.settings)}


@router.put("/notify/channels/{name}")
def put_channel(
    name: str, body: ChannelBody, request: Request, s: auth.DbSession, principal: auth.Admin
) -> dict[str, Any]:
    """Add a database channel, or replace its settings (a secret left out is kept)."""
    settings = request.app.state.settings
    try:
        if any(c["name"] == name and c["source"] == "db" for c in channels.listing(s, settings)):
            channel = channels.update(s, settings, name, body.config, principal.actor)
        else:
            channel = channels.add(s, settings, name, body.config, principal.actor)
    except SettingsError as e:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(e)) from None
    return channel.public()


@router.post("/notify/channels/{name}/disable")
def disable_channel(name: str, s: auth.DbSession, principal: auth.Admin) -> dict[str, str]:
    """Stop sending through a database channel."""
    try:
        channels.disable(s, name, principal.actor)
    except LookupError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from None
    return {"status": "disabled"}


@router.post("/notify/channels/{name}/test")
def test_channel(
    name: str, request: Request, s: auth.DbSession, principal: auth.Admin
) -> dict[str, Any]:
    """Queue a test message through an active channel; follow it in the outbox."""
    channel = channels.named(s, request.app.state.settings, name)
    if channel is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no active channel named {name!r}")
    return outbox.view(outbox.enqueue_test(s, channel, principal.actor))
