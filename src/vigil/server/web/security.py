"""Security headers on every response, and the CSRF checks of the dashboard's forms.

CSRF: a state-changing request must come from the dashboard's own origin (`Origin`, and
`Sec-Fetch-Site` where the browser sends it) and carry the session's token twice — in the
`vigil_csrf` cookie and in the form field `csrf_token` or the `X-CSRF-Token` header (htmx) — both
equal to the token stored with the session. Anything else is refused with 403.
"""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import HTTPException, Request, status

CSRF_COOKIE = "vigil_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"

# No inline script or style anywhere: htmx and the stylesheet are files of our own.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: under no-referrer browsers send `Origin: null` on form posts,
    # which the CSRF check must refuse.
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
HSTS = "max-age=31536000"


def is_https(request: Request) -> bool:
    """Served over TLS (cookies are then Secure, and HSTS is sent)."""
    return request.url.scheme == "https"


class SecurityHeaders:
    """ASGI middleware: the security headers on every response (API and pages alike).

    Plain ASGI rather than `@app.middleware("http")`: Starlette's BaseHTTPMiddleware streams
    every response through a task and a queue, a large share of a heartbeat's CPU."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.common = [(k.lower().encode(), v.encode()) for k, v in HEADERS.items()]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = list(self.common)
        if scope.get("scheme") == "https":
            extra.append((b"strict-transport-security", HSTS.encode()))
        if scope["path"].startswith("/ui"):
            # Pages name people and incidents: never kept by shared caches or the browser's.
            extra.append((b"cache-control", b"no-store"))

        async def with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend((n, v) for n, v in extra if n not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def _refuse(reason: str) -> HTTPException:
    return HTTPException(status.HTTP_403_FORBIDDEN, f"request refused: {reason}")


def check_origin(request: Request) -> None:
    """Refuse a request a browser says comes from another site."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        raise _refuse(f"cross-site request ({site})")
    origin = request.headers.get("origin")
    if origin is not None:
        own = f"{request.url.scheme}://{request.url.netloc}"
        if origin != own:
            raise _refuse("cross-origin request")


def check_token(request: Request, given: str | None, expected: str) -> None:
    """Refuse unless the cookie and the form (or header) both carry the expected token."""
    cookie = request.cookies.get(CSRF_COOKIE)
    given = given or request.headers.get(CSRF_HEADER)
    if not cookie or not given:
        raise _refuse("missing CSRF token")
    if not (
        hmac.compare_digest(cookie.encode(), expected.encode())
        and hmac.compare_digest(given.encode(), expected.encode())
    ):
        raise _refuse("wrong CSRF token")
