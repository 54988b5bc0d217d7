"""The dashboard's wiring: login and logout, static files, error pages, the security headers.

`install(app)` adds all of it to the server's application.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import FastAPI, Form, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from vigil.server.web import admin_pages, incident_pages, notify_pages, security, sessions
from vigil.server.web.deps import (
    HERE,
    PREFIX,
    SESSION_COOKIE,
    AnyAct,
    DbSession,
    LoginRequired,
    render,
)

router = incident_pages.router


def _safe_next(target: str | None) -> str:
    """Where to go after login: only a dashboard page of this server."""
    if target and target.startswith(PREFIX + "/") and not target.startswith("//"):
        return target
    return PREFIX + "/"


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _set_cookie(request: Request, response: Response, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        httponly=True,
        secure=security.is_https(request),
        samesite="lax",
        path="/",
    )


def _login_page(
    request: Request, error: str | None = None, status_code: int = 200, next_: str = ""
) -> Response:
    # Before a session exists the form's token is a plain double-submit pair (cookie and field).
    token = secrets.token_urlsafe(32)
    response = render(
        request,
        "login.html",
        None,
        status_code=status_code,
        csrf_token=token,
        error=error,
        next=next_,
    )
    _set_cookie(request, response, security.CSRF_COOKIE, token)
    return response


@router.get("/login", include_in_schema=False)
def login_form(request: Request, next: str = "") -> Response:
    """The login page."""
    return _login_page(request, next_=_safe_next(next))


@router.post("/login", include_in_schema=False)
def login(
    request: Request,
    s: DbSession,
    username: Annotated[str, Form(max_length=100)],
    password: Annotated[str, Form(max_length=1000)],
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    """Check the password; on success a new session and its cookies."""
    security.check_origin(request)
    cookie = request.cookies.get(security.CSRF_COOKIE, "")
    security.check_token(request, csrf_token, cookie or "-")
    try:
        done = sessions.log_in(s, username, password, _client(request))
    except sessions.TooManyFailures as e:
        minutes = int(e.retry_after.total_seconds() // 60)
        response = _login_page(
            request,
            f"Too many failed logins. Try again in {minutes} minutes.",
            429,
            _safe_next(next),
        )
        response.headers["Retry-After"] = str(int(e.retry_after.total_seconds()))
        return response
    if done is None:
        return _login_page(request, "Wrong user name or password.", 401, _safe_next(next))
    signed, secret = done
    response = RedirectResponse(_safe_next(next), 303)
    _set_cookie(request, response, SESSION_COOKIE, secret)
    _set_cookie(request, response, security.CSRF_COOKIE, signed.csrf_token)
    return response


@router.post("/logout", include_in_schema=False)
def logout(s: DbSession, me: AnyAct) -> Response:
    """End this session."""
    sessions.log_out(s, me)
    response = RedirectResponse(PREFIX + "/login", 303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(security.CSRF_COOKIE, path="/")
    return response


def install(app: FastAPI) -> None:
    """Add the dashboard (pages, static files, error pages, security headers) to `app`."""
    app.include_router(router)
    app.include_router(admin_pages.router)
    app.include_router(notify_pages.router)
    app.mount(PREFIX + "/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.add_middleware(security.SecurityHeaders)

    @app.get("/", include_in_schema=False)
    def root() -> Response:
        return RedirectResponse(PREFIX + "/", 307)

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        target = PREFIX + "/login"
        if request.method == "GET":
            target += "?next=" + request.url.path
        if request.headers.get("hx-request"):
            return Response(status_code=401, headers={"HX-Redirect": target})
        if request.method != "GET":
            return Response("signed out: log in again", status_code=401)
        return RedirectResponse(target, 303)

    @app.exception_handler(StarletteHTTPException)
    async def error_page(request: Request, exc: StarletteHTTPException) -> Response:
        if not request.url.path.startswith(PREFIX + "/") or request.url.path.startswith(
            PREFIX + "/static"
        ):
            return await http_exception_handler(request, exc)
        me = getattr(request.state, "signed_in", None)
        return render(
            request,
            "error.html",
            me,
            status_code=exc.status_code,
            code=exc.status_code,
            message=exc.detail,
        )


__all__ = ["HTTPException", "install", "router"]
