"""What every dashboard page needs: templates, the signed-in user, role and CSRF checks."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session
from starlette.responses import Response

from vigil.server.accounts import Role
from vigil.server.api.auth import OVERSEERS, READERS, REVIEWERS, session
from vigil.server.web import security, sessions
from vigil.server.web.sessions import SignedIn

SESSION_COOKIE = "vigil_session"
PREFIX = "/ui"
HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))


def _utc(when: datetime | None, seconds: bool = True) -> str:
    """A time as pages show it: UTC whatever the database session's zone."""
    if when is None:
        return ""
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


templates.env.filters["utc"] = _utc

# One transaction per request, committed when the page function returns and so before the answer
# is sent (FastAPI's default would commit after it: a browser following the login redirect could
# then arrive before its session row). Pages render inside the function, so nothing is lazy.
DbSession = Annotated[Session, Depends(session, scope="function")]


class LoginRequired(Exception):
    """No live session: the browser is sent to the login page."""


def signed_in(request: Request, s: DbSession) -> SignedIn:
    """The live session of the request, or LoginRequired."""
    secret = request.cookies.get(SESSION_COOKIE)
    found = sessions.current(s, secret) if secret else None
    if found is None:
        raise LoginRequired()
    request.state.signed_in = found
    return found


def role(*allowed: Role) -> Callable[..., SignedIn]:
    """A dependency: the signed-in user, who must hold one of `allowed` (else 403)."""

    def dependency(me: Annotated[SignedIn, Depends(signed_in)]) -> SignedIn:
        if me.principal.role not in allowed:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"the {me.principal.role.value} role may not do this"
            )
        return me

    return dependency


def csrf(*allowed: Role) -> Callable[..., Coroutine[Any, Any, SignedIn]]:
    """A dependency for a state-changing request: the role check, then the CSRF checks."""

    # A default rather than an annotation: annotations are strings here (PEP 563) and FastAPI
    # resolves them in the module's globals, where `allowed` does not exist.
    checked = Depends(role(*allowed))

    async def dependency(request: Request, me: SignedIn = checked) -> SignedIn:
        security.check_origin(request)
        given = None
        if request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            value = (await request.form()).get(security.CSRF_FIELD)
            given = value if isinstance(value, str) else None
        security.check_token(request, given, me.csrf_token)
        return me

    return dependency


Reader = Annotated[SignedIn, Depends(role(*READERS))]
Overseer = Annotated[SignedIn, Depends(role(*OVERSEERS))]
Admin = Annotated[SignedIn, Depends(role(Role.ADMIN))]
ReviewerAct = Annotated[SignedIn, Depends(csrf(*REVIEWERS))]
AdminAct = Annotated[SignedIn, Depends(csrf(Role.ADMIN))]
AnyAct = Annotated[SignedIn, Depends(csrf(*READERS))]


def render(
    request: Request,
    name: str,
    me: SignedIn | None,
    status_code: int = 200,
    **context: Any,
) -> Response:
    """A page, with who is signed in and the CSRF token its forms carry."""
    return templates.TemplateResponse(
        request,
        name,
        {
            "me": me.principal if me else None,
            "csrf_token": me.csrf_token if me else context.pop("csrf_token", ""),
            "Role": Role,
            "prefix": PREFIX,
            **context,
        },
        status_code=status_code,
    )
