"""Who a request comes from: a user by API key, or an agent by its own credential.

Both are sent as `Authorization: Bearer SECRET`; an unknown or revoked one is refused (401)
everywhere, a user whose role does not allow the act is refused with 403.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from vigil.server.accounts import Principal, Role, principal_for_key
from vigil.server.credentials import AGENT_PREFIX, API_KEY_PREFIX
from vigil.server.enrolment import agent_for_credential
from vigil.server.models import Agent

bearer = HTTPBearer(auto_error=False, description="An API key or an agent's credential")


def session(request: Request) -> Iterator[Session]:
    """A database session in one transaction for the request."""
    with request.app.state.storage.session() as s:
        yield s


def refuse(request: Request, credential: str) -> HTTPException:
    request.app.state.metrics.auth_refused.labels(credential).inc()
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "unknown or revoked credential",
        headers={"WWW-Authenticate": "Bearer"},
    )


# "function": the transaction commits before the response is sent (FastAPI's default for a
# yield dependency closes it after), so a client's next request sees what the last one did.
DbSession = Annotated[Session, Depends(session, scope="function")]
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def agent_credential(request: Request, given: HTTPAuthorizationCredentials | None) -> str:
    """The agent credential the request carries (refused when it carries none)."""
    if given is None or not given.credentials.startswith(AGENT_PREFIX):
        raise refuse(request, "agent")
    return given.credentials


def agent(request: Request, given: Bearer) -> Agent:
    """The live agent the request comes from (checked in a transaction of its own, so the
    request does not hold a connection through it beside the one its work takes)."""
    credential = agent_credential(request, given)
    with request.app.state.storage.session() as s:
        found = agent_for_credential(s, credential)
    if found is None:
        raise refuse(request, "agent")
    return found


def user(*roles: Role) -> Callable[..., Principal]:
    """A dependency: the user the request acts for, who must hold one of `roles`."""

    def dependency(request: Request, s: DbSession, given: Bearer) -> Principal:
        if given is None or not given.credentials.startswith(API_KEY_PREFIX):
            raise refuse(request, "api_key")
        principal = principal_for_key(s, given.credentials)
        if principal is None:
            raise refuse(request, "api_key")
        if principal.role not in roles:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"the {principal.role.value} role may not do this"
            )
        return principal

    return dependency


# Who may do what.
READERS = (Role.ADMIN, Role.REVIEWER, Role.AUDITOR)
REVIEWERS = (Role.ADMIN, Role.REVIEWER)
OVERSEERS = (Role.ADMIN, Role.AUDITOR)

LiveAgent = Annotated[Agent, Depends(agent)]
Reader = Annotated[Principal, Depends(user(*READERS))]
Reviewer = Annotated[Principal, Depends(user(*REVIEWERS))]
Overseer = Annotated[Principal, Depends(user(*OVERSEERS))]
Admin = Annotated[Principal, Depends(user(Role.ADMIN))]
