"""The agent's side of the server's HTTP API (docs/server.md): enrolment, heartbeats, incident
batches. Bodies are written here from the documented contract; the server's modules are never
imported (fronts meet only over HTTP)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from vigil.errors import VigilError

# Reports per request (the server accepts up to 1000).
BATCH = 200
TIMEOUT = 30.0


class ServerRefused(VigilError):
    """The server answered, and said no (status and its reason in the message)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _verify(ca_cert: str | Path | None) -> str | bool:
    return str(ca_cert) if ca_cert else True


def _detail(r: httpx.Response) -> str:
    try:
        detail = r.json().get("detail", r.text)
    except ValueError:
        detail = r.text
    return f"{r.status_code}: {str(detail)[:500]}"


def enroll(server: str, token: str, host: str, ca_cert: str | Path | None) -> dict[str, Any]:
    """Trade a single-use token for the agent's id and credential (and the server's TUF root
    metadata when it sends one)."""
    try:
        r = httpx.post(
            server.rstrip("/") + "/api/v1/enroll",
            json={"token": token, "host": host},
            timeout=TIMEOUT,
            verify=_verify(ca_cert),
        )
    except httpx.HTTPError as e:
        raise VigilError(f"cannot reach {server}: {e}") from None
    if r.status_code != 200:
        raise ServerRefused(r.status_code, f"enrolment refused by {server}: {_detail(r)}")
    body: dict[str, Any] = r.json()
    return body


class Connection:
    """An enrolled agent's session with its server."""

    def __init__(self, server: str, credential: str, ca_cert: str | Path | None = None) -> None:
        self._http = httpx.Client(
            base_url=server.rstrip("/"),
            headers={"Authorization": f"Bearer {credential}"},
            timeout=TIMEOUT,
            verify=_verify(ca_cert),
        )

    def heartbeat(self, body: dict[str, Any]) -> None:
        """Say how this agent is doing."""
        r = self._http.post("/api/v1/heartbeat", json=body)
        if r.status_code != 200:
            raise ServerRefused(r.status_code, f"heartbeat refused: {_detail(r)}")

    def report(self, reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send a batch of incident reports; the server's acknowledgement of each, in order.
        Transport errors raise httpx.HTTPError; a refusal raises ServerRefused."""
        r = self._http.post("/api/v1/incidents", json={"incidents": reports})
        if r.status_code != 200:
            raise ServerRefused(r.status_code, f"incidents refused: {_detail(r)}")
        results: list[dict[str, Any]] = r.json()["results"]
        return results

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()
