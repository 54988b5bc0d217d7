"""The Notifications page (admins): channels, the outbox with failures first, entry floods.

Every change goes through the same module functions as the JSON API (vigil.server.channels,
outbox, alerts): the same checks as server.toml, the same audit entries. A channel's settings are
written as the keys of a `[[notify]]` table (TOML), so the page accepts exactly what the file
does; secrets are never sent back to the browser (a secret left out on edit keeps the stored one).
"""

from __future__ import annotations

import json
import tomllib
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Query, Request, status
from sqlalchemy import or_, select
from starlette.responses import Response

from vigil.server import alerts, channels, outbox
from vigil.server.models import Notification
from vigil.server.settings import CHANNEL_TYPES, SECRET_KEYS, SettingsError
from vigil.server.web.deps import PREFIX, Admin, AdminAct, DbSession, render

router = APIRouter(prefix=PREFIX, include_in_schema=False)

PAGE = f"{PREFIX}/notifications"
OUTBOX_PAGE = 100
# Failing rows shown above the outbox (newest first).
FAILURES_SHOWN = 50
NAME_PATTERN = r"^[A-Za-z0-9._-]{1,100}$"


def toml_lines(channel: dict[str, Any]) -> str:
    """A listed channel's settings as `[[notify]]` keys (secrets and empty values left out),
    to edit them in the page."""
    values: dict[str, Any] = {
        **{k: v for k, v in channel["options"].items() if k not in SECRET_KEYS},
        "categories": channel["categories"],
        "sets": channel["sets"],
        "include_path": channel["include_path"],
    }
    lines = []
    for key, value in values.items():
        if value is None or value == []:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int):
            text = str(value)
        else:
            # A JSON string or list of strings is a valid TOML basic string or array.
            text = json.dumps(value, ensure_ascii=False)
        lines.append(f"{key} = {text}")
    return "\n".join(lines)


def _config(kind: str, settings_text: str) -> dict[str, Any]:
    if kind not in CHANNEL_TYPES:
        raise SettingsError(f"type: expected one of {', '.join(CHANNEL_TYPES)}, got {kind!r}")
    try:
        config = tomllib.loads(settings_text)
    except tomllib.TOMLDecodeError as e:
        raise SettingsError(f"settings are not TOML: {e}") from None
    config.pop("name", None)
    config["type"] = kind
    return config


def _failures(s: DbSession) -> list[Notification]:
    # The page's outbox query may have loaded a row before its first attempt failed: refresh
    # the rows this one finds (populate_existing), or a failing row would show as untried.
    return list(
        s.scalars(
            select(Notification)
            .execution_options(populate_existing=True)
            .where(
                or_(
                    Notification.status == outbox.State.FAILED.value,
                    (Notification.status == outbox.State.PENDING.value)
                    & Notification.last_error.is_not(None),
                )
            )
            .order_by(Notification.id.desc())
            .limit(FAILURES_SHOWN)
        )
    )


def _page(
    request: Request,
    s: DbSession,
    me: object,
    code: int = 200,
    state: outbox.State | None = None,
    before: int | None = None,
    **extra: object,
) -> Response:
    listed = channels.listing(s, request.app.state.settings)
    rows, next_before = outbox.page(s, state, None, before, OUTBOX_PAGE)
    return render(
        request,
        "notifications.html",
        me,  # type: ignore[arg-type]
        status_code=code,
        nav="notifications",
        channels=[(c, toml_lines(c)) for c in listed],
        types=CHANNEL_TYPES,
        failures=_failures(s) if state is None and before is None else [],
        rows=rows,
        states=list(outbox.State),
        state=state.value if state else "",
        next_url=(
            str(request.url.include_query_params(before=next_before))
            if next_before is not None
            else None
        ),
        floods=alerts.floods(s),
        **extra,
    )


@router.get("/notifications")
def notifications(
    request: Request,
    s: DbSession,
    me: Admin,
    status_: Annotated[str | None, Query(alias="status")] = None,
    before: int | None = None,
) -> Response:
    """Channels, failing deliveries, the outbox (by status, keyset pages) and entry floods."""
    try:
        state = outbox.State(status_) if status_ else None
    except ValueError:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_ENTITY,
            f"status: one of {', '.join(v.value for v in outbox.State)}",
        ) from None
    return _page(request, s, me, state=state, before=before)


@router.post("/notifications/channels")
def channel_add(
    request: Request,
    s: DbSession,
    me: AdminAct,
    name: Annotated[str, Form(pattern=NAME_PATTERN)],
    kind: Annotated[str, Form(alias="type")],
    settings: Annotated[str, Form(max_length=10000)] = "",
) -> Response:
    """Add a database channel, checked as a `[[notify]]` table of server.toml would be."""
    try:
        channels.add(
            s, request.app.state.settings, name, _config(kind, settings), me.principal.actor
        )
    except SettingsError as e:
        return _page(request, s, me, 422, error=str(e))
    return _page(request, s, me, notice=f"Channel {name} added.")


@router.post("/notifications/channels/{name}")
def channel_update(
    request: Request,
    s: DbSession,
    me: AdminAct,
    name: str,
    kind: Annotated[str, Form(alias="type")],
    settings: Annotated[str, Form(max_length=10000)] = "",
) -> Response:
    """Replace a database channel's settings (a secret left out keeps the stored one);
    server.toml's channels are refused (the operator's file is never written)."""
    try:
        channels.update(
            s, request.app.state.settings, name, _config(kind, settings), me.principal.actor
        )
    except LookupError as e:
        return _page(request, s, me, 404, error=_not_editable(request, name, e))
    except SettingsError as e:
        return _page(request, s, me, 422, error=str(e))
    return _page(request, s, me, notice=f"Channel {name} saved.")


def _not_editable(request: Request, name: str, e: LookupError) -> str:
    if any(c.name == name for c in request.app.state.settings.channels):
        return f"the channel {name!r} is in server.toml: change it there (read-only here)"
    return str(e)


@router.post("/notifications/channels/{name}/disable")
def channel_disable(request: Request, s: DbSession, me: AdminAct, name: str) -> Response:
    """Stop sending through a database channel."""
    try:
        channels.disable(s, name, me.principal.actor)
    except LookupError as e:
        return _page(request, s, me, 404, error=_not_editable(request, name, e))
    return _page(request, s, me, notice=f"Channel {name} disabled.")


@router.post("/notifications/channels/{name}/test")
def channel_test(request: Request, s: DbSession, me: AdminAct, name: str) -> Response:
    """Queue a test message through an active channel (either source)."""
    channel = channels.named(s, request.app.state.settings, name)
    if channel is None:
        return _page(request, s, me, 404, error=f"no active channel named {name!r}")
    row = outbox.enqueue_test(s, channel, me.principal.actor)
    return _page(request, s, me, notice=f"Test message {row.id} queued for {name}.")


@router.post("/notifications/{row_id}/release")
def row_release(request: Request, s: DbSession, me: AdminAct, row_id: int) -> Response:
    """Send one held notification now."""
    done = outbox.release(s, [row_id], None, me.principal.actor)
    return _page(request, s, me, notice=f"{done} notification released.")


@router.post("/notifications/{row_id}/drop")
def row_drop(request: Request, s: DbSession, me: AdminAct, row_id: int) -> Response:
    """Never send one held or pending notification."""
    done = outbox.drop(s, [row_id], None, me.principal.actor)
    return _page(request, s, me, notice=f"{done} notification dropped.")


@router.post("/notifications/floods/{flood_id}/{action}")
def flood_settle(
    request: Request, s: DbSession, me: AdminAct, flood_id: int, action: str
) -> Response:
    """Release (send) or drop every notification an entry flood holds."""
    if action not in ("release", "drop"):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "release or drop")
    try:
        done = alerts.settle_flood(s, flood_id, action == "release", me.principal.actor)
    except LookupError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from None
    verb = "released" if action == "release" else "dropped"
    return _page(request, s, me, notice=f"Flood {flood_id}: {done} notifications {verb}.")
