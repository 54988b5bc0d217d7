"""Staff and their credentials: users with a role, API keys, enrolment tokens for agents."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.server import audit
from vigil.server.credentials import (
    API_KEY_PREFIX,
    ENROLMENT_PREFIX,
    hash_password,
    new_password,
    new_secret,
    secret_sha256,
)
from vigil.server.models import ApiKey, EnrolmentToken, User
from vigil.server.storage import ServerError

# The first user `vigil server init` makes.
FIRST_ADMIN = "admin"
# How long an enrolment token can be used (once).
ENROLMENT_TOKEN_LIFETIME = timedelta(hours=24)


class Role(StrEnum):
    """What a user may do: admin everything, reviewer work incidents, auditor only read."""

    ADMIN = "admin"
    REVIEWER = "reviewer"
    AUDITOR = "auditor"


@dataclass(frozen=True)
class Principal:
    """The user a request acts for."""

    user_id: int
    name: str
    role: Role

    @property
    def actor(self) -> str:
        """How the audit log names this user."""
        return f"user:{self.name}"


def add_user(session: Session, name: str, role: Role, actor: str = audit.CLI_ACTOR) -> str:
    """Make a user with a generated password; returns the password (shown once, kept hashed)."""
    if session.scalar(select(User.id).where(User.name == name)) is not None:
        raise ServerError(f"a user named {name!r} exists already")
    password = new_password()
    session.add(
        User(
            name=name,
            role=role.value,
            password_hash=hash_password(password),
            created_at=datetime.now(UTC),
        )
    )
    audit.record(session, actor, "user.add", detail={"user": name, "role": role.value})
    return password


def new_api_key(session: Session, user_name: str, actor: str = audit.CLI_ACTOR) -> str:
    """A new API key acting as `user_name`; returns the key (shown once, kept as its hash)."""
    user = session.scalar(select(User).where(User.name == user_name))
    if user is None or user.disabled_at is not None:
        raise ServerError(f"no user named {user_name!r}")
    key = new_secret(API_KEY_PREFIX)
    session.add(
        ApiKey(user_id=user.id, secret_sha256=secret_sha256(key), created_at=datetime.now(UTC))
    )
    audit.record(session, actor, "apikey.add", detail={"user": user_name})
    return key


def new_enrolment_token(
    session: Session,
    lifetime: timedelta = ENROLMENT_TOKEN_LIFETIME,
    actor: str = audit.CLI_ACTOR,
) -> str:
    """A new single-use enrolment token; returns it (shown once, kept as its hash)."""
    token = new_secret(ENROLMENT_PREFIX)
    now = datetime.now(UTC)
    session.add(
        EnrolmentToken(
            secret_sha256=secret_sha256(token), created_at=now, expires_at=now + lifetime
        )
    )
    audit.record(session, actor, "token.add", detail={"expires_at": (now + lifetime).isoformat()})
    return token


def principal_for_key(session: Session, key: str) -> Principal | None:
    """The user an API key acts for; None for an unknown, revoked or disabled one."""
    row = session.execute(
        select(User.id, User.name, User.role)
        .join(ApiKey, ApiKey.user_id == User.id)
        .where(
            ApiKey.secret_sha256 == secret_sha256(key),
            ApiKey.revoked_at.is_(None),
            User.disabled_at.is_(None),
        )
    ).first()
    if row is None:
        return None
    return Principal(row.id, row.name, Role(row.role))


@dataclass(frozen=True)
class ApiKeyInfo:
    """An API key as staff see it: never its secret."""

    id: int
    user: str
    created_at: datetime
    revoked_at: datetime | None


def api_keys(session: Session, user_id: int | None = None) -> list[ApiKeyInfo]:
    """Every API key (of one user when `user_id` is given), newest first."""
    query = (
        select(ApiKey.id, User.name, ApiKey.created_at, ApiKey.revoked_at)
        .join(User, User.id == ApiKey.user_id)
        .order_by(ApiKey.id.desc())
    )
    if user_id is not None:
        query = query.where(ApiKey.user_id == user_id)
    return [ApiKeyInfo(*row) for row in session.execute(query)]


def new_api_key_info(
    session: Session, user_name: str, actor: str = audit.CLI_ACTOR
) -> tuple[ApiKeyInfo, str]:
    """`new_api_key`, with what staff see of it."""
    key = new_api_key(session, user_name, actor)
    session.flush()
    row = session.execute(
        select(ApiKey.id, User.name, ApiKey.created_at, ApiKey.revoked_at)
        .join(User, User.id == ApiKey.user_id)
        .where(ApiKey.secret_sha256 == secret_sha256(key))
    ).one()
    return ApiKeyInfo(*row), key


def revoke_api_key_id(
    session: Session, key_id: int, actor: str, owner: int | None = None
) -> ApiKeyInfo | None:
    """Revoke an API key by its id (only one of `owner`'s when given); the key as it is now,
    None when there is no such key (or not the owner's). Revoking a revoked key changes
    nothing."""
    row = session.get(ApiKey, key_id)
    if row is None or (owner is not None and row.user_id != owner):
        return None
    if row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)
        audit.record(session, actor, "apikey.revoke", detail={"api_key": row.id})
    user = session.get(User, row.user_id)
    return ApiKeyInfo(row.id, user.name if user else "?", row.created_at, row.revoked_at)


def revoke_api_key(session: Session, key: str, actor: str = audit.CLI_ACTOR) -> bool:
    """Revoke an API key; False when there was no such live key."""
    row = session.scalar(
        select(ApiKey).where(
            ApiKey.secret_sha256 == secret_sha256(key), ApiKey.revoked_at.is_(None)
        )
    )
    if row is None:
        return False
    row.revoked_at = datetime.now(UTC)
    audit.record(session, actor, "apikey.revoke", detail={"api_key": row.id})
    return True
