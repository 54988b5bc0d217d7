"""The signed catalog for enrolled agents: TUF metadata and targets, as static files.

Only a live agent credential may read them (the hash lists are not public); names are plain
file names looked up in the repository's own directories, never paths.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import FileResponse

from vigil.server.api import auth

router = APIRouter(prefix="/tuf", tags=["catalog"])


def _serve(request: Request, kind: str, name: str) -> FileResponse:
    path = request.app.state.repository.file(kind, name)
    if path is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no {kind} file {name!r}")
    media = "application/json" if kind == "metadata" else "application/octet-stream"
    return FileResponse(path, media_type=media, headers={"Cache-Control": "no-store"})


@router.get("/metadata/{name}")
def metadata(name: str, request: Request, agent: auth.LiveAgent) -> FileResponse:
    """A TUF metadata file (`N.root.json`, `timestamp.json`, `N.snapshot.json`, ...)."""
    return _serve(request, "metadata", name)


@router.get("/targets/{name}")
def target(name: str, request: Request, agent: auth.LiveAgent) -> FileResponse:
    """A catalog bundle, by its hash-prefixed name."""
    return _serve(request, "targets", name)
