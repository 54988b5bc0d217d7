"""Signing in to the dashboard: passwords, server-side sessions, limits on guessing.

The cookie carries a random session id; the database keeps only its SHA-256 (as for API keys),
so a copy of the database opens no session. A session ends at logout, when an admin revokes the
user's sessions or disables the user, after `IDLE` without a request, and `ABSOLUTE` after login
whatever happens.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from vigil.server import audit
from vigil.server.accounts import Principal, Role
from vigil.server.credentials import hash_password, secret_sha256, verify_password
from vigil.server.models import LoginFailure, User, WebSession

IDLE = timedelta(minutes=30)
ABSOLUTE = timedelta(hours=12)
# A session's last use is written at most this often (not on every page).
TOUCH_EVERY = timedelta(minutes=1)
# Failed logins allowed in `FAILURE_WINDOW` per user name, and per client address (higher: one
# address may be a NAT in front of a whole office).
FAILURE_WINDOW = timedelta(minutes=15)
FAILURES_PER_USER = 5
FAILURES_PER_CLIENT = 20
SESSION_BYTES = 32

# Checked against when the user name is unknown, so a wrong name costs as long as a wrong
# password and the timing does not say which names exist.
_DUMMY_HASH: list[str] = []


def _dummy_hash() -> str:
    if not _DUMMY_HASH:
        _DUMMY_HASH.append(hash_password(secrets.token_urlsafe(16)))
    return _DUMMY_HASH[0]


@dataclass(frozen=True)
class SignedIn:
    """A live session: who, and the token its forms must carry."""

    principal: Principal
    session_id: int
    csrf_token: str


class TooManyFailures(Exception):
    """Too many failed logins for this user name or from this address: try again later."""

    def __init__(self, retry_after: timedelta) -> None:
        super().__init__("too many failed logins")
        self.retry_after = retry_after


def _limited(session: Session, name: str, client: str, now: datetime) -> bool:
    since = now - FAILURE_WINDOW
    by_user = session.scalar(
        select(func.count())
        .select_from(LoginFailure)
        .where(LoginFailure.user_name == name, LoginFailure.at >= since)
    )
    by_client = session.scalar(
        select(func.count())
        .select_from(LoginFailure)
        .where(LoginFailure.client == client, LoginFailure.at >= since)
    )
    return (by_user or 0) >= FAILURES_PER_USER or (by_client or 0) >= FAILURES_PER_CLIENT


def log_in(session: Session, name: str, password: str, client: str) -> tuple[SignedIn, str] | None:
    """Check a password and open a session: (the session, the cookie's secret); None if wrong.

    Raises TooManyFailures before checking anything once the limit is reached. Every attempt,
    good or bad, goes to the audit log (the password never does).
    """
    now = datetime.now(UTC)
    name = name.strip()[:100]
    client = client[:100]
    if _limited(session, name, client, now):
        audit.record(session, f"user:{name}", "login.limited", detail={"client": client})
        raise TooManyFailures(FAILURE_WINDOW)
    user = session.scalar(select(User).where(User.name == name))
    good = verify_password(password, user.password_hash if user else _dummy_hash())
    if user is None or not good or user.disabled_at is not None:
        session.add(LoginFailure(at=now, user_name=name, client=client))
        # Old failures no longer count; clear them as new ones come.
        session.execute(delete(LoginFailure).where(LoginFailure.at < now - FAILURE_WINDOW))
        audit.record(session, f"user:{name}", "login.failed", detail={"client": client})
        return None
    secret = secrets.token_urlsafe(SESSION_BYTES)
    csrf = secrets.token_urlsafe(SESSION_BYTES)
    row = WebSession(
        secret_sha256=secret_sha256(secret),
        user_id=user.id,
        csrf_token=csrf,
        client=client,
        created_at=now,
        last_seen_at=now,
        expires_at=now + ABSOLUTE,
    )
    session.add(row)
    session.execute(delete(LoginFailure).where(LoginFailure.user_name == name))
    session.flush()
    principal = Principal(user.id, user.name, Role(user.role))
    audit.record(session, principal.actor, "login", detail={"client": client, "session": row.id})
    return SignedIn(principal, row.id, csrf), secret


def current(session: Session, secret: str) -> SignedIn | None:
    """The live session a cookie names; None when unknown, revoked, idle or expired."""
    now = datetime.now(UTC)
    found = session.execute(
        select(WebSession, User)
        .join(User, User.id == WebSession.user_id)
        .where(WebSession.secret_sha256 == secret_sha256(secret))
    ).first()
    if found is None:
        return None
    row, user = found
    if (
        row.revoked_at is not None
        or user.disabled_at is not None
        or now >= row.expires_at
        or now - row.last_seen_at >= IDLE
    ):
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
    return SignedIn(Principal(user.id, user.name, Role(user.role)), row.id, row.csrf_token)


def log_out(session: Session, signed_in: SignedIn) -> None:
    """End this session."""
    session.execute(
        update(WebSession)
        .where(WebSession.id == signed_in.session_id)
        .values(revoked_at=datetime.now(UTC))
    )
    audit.record(session, signed_in.principal.actor, "logout")


def revoke_all(session: Session, user_id: int) -> int:
    """End every live session of a user; how many there were."""
    now = datetime.now(UTC)
    result = session.execute(
        update(WebSession)
        .where(
            WebSession.user_id == user_id,
            WebSession.revoked_at.is_(None),
            WebSession.expires_at > now,
        )
        .values(revoked_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)
