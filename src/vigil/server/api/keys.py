"""API keys over the API: list them, make one (admins), revoke one (admins any, users their own).

A key's secret is shown once, when it is made; it is kept as its SHA-256. A revoked key is
refused on the very next request (keys are looked up on every request, not cached).
"""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter, HTTPException, status

from vigil.server import accounts
from vigil.server.accounts import Role
from vigil.server.api import auth
from vigil.server.api.schemas import ApiKeyCreated, ApiKeyList, ApiKeyRequest, ApiKeyView
from vigil.server.storage import ServerError

router = APIRouter(prefix="/api/v1", tags=["staff"])


def _view(info: accounts.ApiKeyInfo) -> ApiKeyView:
    return ApiKeyView(**dataclasses.asdict(info))


@router.get("/apikeys", response_model=ApiKeyList)
def list_keys(s: auth.DbSession, principal: auth.Reader) -> ApiKeyList:
    """Every API key for an admin; one's own for a reviewer or an auditor."""
    owner = None if principal.role is Role.ADMIN else principal.user_id
    return ApiKeyList(items=[_view(k) for k in accounts.api_keys(s, owner)])


@router.post("/apikeys", response_model=ApiKeyCreated, status_code=status.HTTP_201_CREATED)
def make_key(body: ApiKeyRequest, s: auth.DbSession, principal: auth.Admin) -> ApiKeyCreated:
    """A new API key acting as `user` (its secret is in this answer only)."""
    try:
        info, key = accounts.new_api_key_info(s, body.user, principal.actor)
    except ServerError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from None
    return ApiKeyCreated(**dataclasses.asdict(info), key=key)


@router.post("/apikeys/{key_id}/revoke", response_model=ApiKeyView)
def revoke_key(key_id: int, s: auth.DbSession, principal: auth.Reader) -> ApiKeyView:
    """Revoke an API key: every later request with it is refused. An admin may revoke any
    key, another user only their own (someone else's is not found)."""
    owner = None if principal.role is Role.ADMIN else principal.user_id
    info = accounts.revoke_api_key_id(s, key_id, principal.actor, owner)
    if info is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such API key")
    return _view(info)
