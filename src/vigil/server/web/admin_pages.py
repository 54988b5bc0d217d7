"""Admin and audit pages: agents, hash sets, users, the audit log (notifications: notify_pages)."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path, PurePath
from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile, status
from fastapi.responses import RedirectResponse
from sqlalchemy import func, select
from starlette.responses import Response

from vigil.errors import VigilError
from vigil.server import agent_health, audit, enrolment
from vigil.server.accounts import Role, add_user
from vigil.server.models import Agent, AuditEntry, User, WebSession
from vigil.server.storage import ServerError
from vigil.server.web import charts, sessions
from vigil.server.web.deps import PREFIX, Admin, AdminAct, DbSession, Overseer, Reader, render

router = APIRouter(prefix=PREFIX, include_in_schema=False)

AGENTS_PAGE = 200
AUDIT_PAGE = 100
# Copied to disk in pieces: a police list may be hundreds of MB.
UPLOAD_CHUNK = 1 << 20


@router.get("/agents")
def agents(request: Request, s: DbSession, me: Reader, after: str | None = None) -> Response:
    """Agents with their health, catalog version, last heartbeat and spool; by host."""
    query = select(Agent).order_by(Agent.id).limit(AGENTS_PAGE + 1)
    if after:
        query = query.where(Agent.id > after)
    rows = list(s.scalars(query))
    more = len(rows) > AGENTS_PAGE
    rows = rows[:AGENTS_PAGE]
    now = datetime.now(UTC)
    silent_after = request.app.state.settings.silent_after
    found = agent_health.conditions(s, [a.id for a in rows])
    return render(
        request,
        "agents.html",
        me,
        nav="agents",
        rows=[
            (a, agent_health.status(a, found.get(a.id, []), silent_after, now), found.get(a.id, []))
            for a in rows
        ],
        health=charts.agents_health(s, now, silent_after),
        next_url=str(request.url.include_query_params(after=rows[-1].id)) if more else None,
    )


@router.post("/agents/{agent_id}/revoke")
def agent_revoke(s: DbSession, me: AdminAct, agent_id: str) -> Response:
    """Revoke an agent's credential: it is refused everywhere from now on."""
    if not enrolment.revoke(s, agent_id, me.principal.actor):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such live agent")
    return RedirectResponse(f"{PREFIX}/agents", 303)


def _sets_page(request: Request, me: object, code: int = 200, **extra: object) -> Response:
    return render(
        request,
        "hashsets.html",
        me,  # type: ignore[arg-type]
        status_code=code,
        nav="hashsets",
        sets=request.app.state.catalog.sets(),
        **extra,
    )


@router.get("/hashsets")
def hashsets(request: Request, me: Reader) -> Response:
    """Hash sets with their versions, entry counts and categories."""
    return _sets_page(request, me)


@router.post("/hashsets")
def hashset_import(
    request: Request,
    s: DbSession,
    me: AdminAct,
    file: Annotated[UploadFile, File()],
    name: Annotated[str, Form(max_length=200)] = "",
    known_good: Annotated[bool, Form()] = False,
) -> Response:
    """Import an uploaded list through the engine's importer (the same as `vigil hashset import`)."""
    original = PurePath((file.filename or "upload").replace("\\", "/")).name or "upload"
    home: Path = request.app.state.home
    try:
        with tempfile.TemporaryDirectory(dir=home, prefix=".upload-") as tmp:
            path = Path(tmp) / original
            with open(path, "wb") as out:
                while chunk := file.file.read(UPLOAD_CHUNK):
                    out.write(chunk)
            result = request.app.state.catalog.import_file(
                path, name=name.strip() or None, known_good=known_good
            )
    except VigilError as e:
        return _sets_page(request, me, 422, error=f"{original}: {e}")
    info = result.hashset
    audit.record(
        s,
        me.principal.actor,
        "hashset.import",
        detail={
            "hashset": info.name,
            "file": original,
            "entries": info.entries,
            "version": info.version,
            "unchanged": result.unchanged,
            "malformed": result.report.malformed,
        },
    )
    message = (
        f"{info.name}: identical to what is imported; nothing changed"
        if result.unchanged
        else f"Imported {info.name}: {info.entries} entries ({info.format}, version {info.version})"
        + (
            f"; {result.report.malformed} malformed records skipped"
            if result.report.malformed
            else ""
        )
    )
    return _sets_page(request, me, notice=message)


@router.post("/hashsets/{name}/remove")
def hashset_remove(request: Request, s: DbSession, me: AdminAct, name: str) -> Response:
    """Remove a hash set from the catalog."""
    try:
        info = request.app.state.catalog.remove(name)
    except VigilError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from e
    audit.record(
        s, me.principal.actor, "hashset.remove", detail={"hashset": name, "entries": info.entries}
    )
    return RedirectResponse(f"{PREFIX}/hashsets", 303)


def _users_page(
    request: Request, s: DbSession, me: object, code: int = 200, **extra: object
) -> Response:
    now = datetime.now(UTC)
    live = dict(
        s.execute(
            select(WebSession.user_id, func.count())
            .where(
                WebSession.revoked_at.is_(None),
                WebSession.expires_at > now,
                WebSession.last_seen_at > now - sessions.IDLE,
            )
            .group_by(WebSession.user_id)
        )
        .tuples()
        .all()
    )
    return render(
        request,
        "users.html",
        me,  # type: ignore[arg-type]
        status_code=code,
        nav="users",
        users=list(s.scalars(select(User).order_by(User.name))),
        live=live,
        roles=list(Role),
        **extra,
    )


@router.get("/users")
def users(request: Request, s: DbSession, me: Admin) -> Response:
    """Staff, their roles and live sessions."""
    return _users_page(request, s, me)


@router.post("/users")
def user_add(
    request: Request,
    s: DbSession,
    me: AdminAct,
    name: Annotated[str, Form(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._@-]+$")],
    role: Annotated[Role, Form()],
) -> Response:
    """Add a user; the generated password is shown once, on this answer only."""
    try:
        password = add_user(s, name, role, actor=me.principal.actor)
    except ServerError as e:
        return _users_page(request, s, me, 409, error=str(e))
    s.flush()
    return _users_page(request, s, me, created=(name, password))


def _user(s: DbSession, user_id: int, me: object) -> User:
    user = s.get(User, user_id)
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such user")
    return user


def _not_self(user: User, me: AdminAct, what: str) -> None:
    # An admin who demotes or disables themselves may leave nobody able to undo it.
    if user.id == me.principal.user_id:
        raise HTTPException(status.HTTP_409_CONFLICT, f"you cannot {what} yourself")


@router.post("/users/{user_id}/role")
def user_role(s: DbSession, me: AdminAct, user_id: int, role: Annotated[Role, Form()]) -> Response:
    """Change a user's role (their sessions carry the new role from the next request)."""
    user = _user(s, user_id, me)
    _not_self(user, me, "change the role of")
    audit.record(
        s,
        me.principal.actor,
        "user.role",
        detail={"user": user.name, "role": [user.role, role.value]},
    )
    user.role = role.value
    return RedirectResponse(f"{PREFIX}/users", 303)


@router.post("/users/{user_id}/disable")
def user_disable(s: DbSession, me: AdminAct, user_id: int) -> Response:
    """Disable a user: no login, no API key, every session ended."""
    user = _user(s, user_id, me)
    _not_self(user, me, "disable")
    if user.disabled_at is None:
        user.disabled_at = datetime.now(UTC)
        ended = sessions.revoke_all(s, user.id)
        audit.record(
            s, me.principal.actor, "user.disable", detail={"user": user.name, "sessions": ended}
        )
    return RedirectResponse(f"{PREFIX}/users", 303)


@router.post("/users/{user_id}/sessions/revoke")
def user_sessions_revoke(s: DbSession, me: AdminAct, user_id: int) -> Response:
    """End every session of a user (they must log in again)."""
    user = _user(s, user_id, me)
    ended = sessions.revoke_all(s, user.id)
    audit.record(
        s, me.principal.actor, "session.revoke", detail={"user": user.name, "sessions": ended}
    )
    return RedirectResponse(f"{PREFIX}/users", 303)


@router.get("/audit")
def audit_log(
    request: Request,
    s: DbSession,
    me: Overseer,
    actor: str | None = None,
    action: str | None = None,
    before: int | None = None,
) -> Response:
    """The audit log, newest first, by actor and/or action; keyset pages."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(AUDIT_PAGE + 1)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if action:
        query = query.where(AuditEntry.action == action)
    if before is not None:
        query = query.where(AuditEntry.id < before)
    rows = list(s.scalars(query))
    more = len(rows) > AUDIT_PAGE
    rows = rows[:AUDIT_PAGE]
    return render(
        request,
        "audit.html",
        me,
        nav="audit",
        rows=rows,
        filters={"actor": actor or "", "action": action or ""},
        next_url=str(request.url.include_query_params(before=rows[-1].id)) if more else None,
    )
