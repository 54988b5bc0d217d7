"""Request and response bodies. Every request model forbids unknown fields and bounds every
string: nothing an agent sends can carry file content, only fingerprints and metadata."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from vigil import kinds
from vigil.server.incidents import Detection, Status, client_address

PATH_MAX = 4096
NAME_MAX = 255
ID_PATTERN = r"^[A-Za-z0-9._:-]{1,100}$"


class Strict(BaseModel):
    """A request body: unknown fields refused."""

    model_config = ConfigDict(extra="forbid")


def _utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class EnrollRequest(Strict):
    """An agent asking to enrol."""

    token: str = Field(max_length=200)
    host: str = Field(min_length=1, max_length=NAME_MAX)


class EnrollResponse(BaseModel):
    """The enrolled agent's id and its own credential (sent as `Authorization: Bearer`)."""

    agent_id: str
    credential: str
    # The server's TUF root metadata: the agent's trust anchor for signed catalog updates.
    root: dict[str, Any] | None = None


class WatchHealth(Strict):
    """How the agent's watching is doing."""

    healthy: bool
    watched: int | None = Field(default=None, ge=0)
    errors: list[str] = Field(default_factory=list, max_length=20)

    @field_validator("errors")
    @classmethod
    def _short(cls, value: list[str]) -> list[str]:
        if any(len(e) > 500 for e in value):
            raise ValueError("an error line is longer than 500 characters")
        return value


class HeartbeatRequest(Strict):
    """What an agent says of itself each heartbeat."""

    catalog_version: str | None = Field(default=None, max_length=100)
    spool_length: int | None = Field(default=None, ge=0)
    watch: WatchHealth | None = None
    # Why the agent refused its last catalog update (a bad signature, a rolled-back version);
    # null when it took it. An error raises a `catalog_rejected` incident.
    catalog_error: str | None = Field(default=None, max_length=500)
    # How old the agent's catalog is (since the update it holds was published): above
    # `[agents] stale_after` it raises a `catalog_stale` incident.
    catalog_age_seconds: float | None = Field(default=None, ge=0)


class Fingerprints(Strict):
    """The fingerprints of the matched item (lowercase hex)."""

    md5: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")
    sha1: str | None = Field(default=None, pattern=r"^[0-9a-f]{40}$")
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    pdq: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


class EntryRef(Strict):
    """The hash-set entry that matched."""

    id: str = Field(min_length=1, max_length=NAME_MAX)
    category: str | None = Field(default=None, max_length=100)


class Segment(Strict):
    """The part of a video that matched, in seconds."""

    start: float = Field(ge=0)
    end: float = Field(ge=0)


class FileTimes(Strict):
    """The matched file's times from the agent's stat (`created` only where the platform
    records a birth time)."""

    modified: datetime | None = None
    changed: datetime | None = None
    created: datetime | None = None

    @field_validator("modified", "changed", "created")
    @classmethod
    def _times_utc(cls, value: datetime | None) -> datetime | None:
        return _utc(value)


class IncidentReport(Strict):
    """One match, named by the agent (`id`): a resend of the same id is acknowledged, not counted."""

    id: str = Field(pattern=ID_PATTERN)
    path: str = Field(min_length=1, max_length=PATH_MAX)
    member: str | None = Field(default=None, max_length=PATH_MAX)
    user: str | None = Field(default=None, max_length=NAME_MAX)
    owner: str | None = Field(default=None, max_length=NAME_MAX)
    # The network address of the machine that fetched or sent the content (a gateway's proxy
    # client), IPv4 or IPv6; stored in its compressed form. Agents send none.
    client: str | None = Field(default=None, max_length=NAME_MAX)
    size: int | None = Field(default=None, ge=0)
    media_type: str | None = Field(default=None, max_length=NAME_MAX)
    hashset: str = Field(min_length=1, max_length=NAME_MAX)
    entry: EntryRef
    kind: str
    distance: int | None = Field(default=None, ge=0, le=256)
    transform: str | None = Field(default=None, max_length=50)
    segment: Segment | None = None
    detection: Detection
    seen_at: datetime | None = None
    fingerprints: Fingerprints = Field(default_factory=Fingerprints)
    catalog_version: str | None = Field(default=None, max_length=100)
    file_times: FileTimes | None = None

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        if value not in kinds.NAMES:
            raise ValueError(f"kind must be one of {', '.join(kinds.NAMES)}")
        return value

    @field_validator("client")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        return None if value is None else client_address(value)

    @field_validator("seen_at")
    @classmethod
    def _seen_utc(cls, value: datetime | None) -> datetime | None:
        return _utc(value)


# Reports per request: a spool sends its backlog in batches of at most this many.
BATCH_MAX = 1000


class IncidentBatch(Strict):
    """A batch of reports from one agent."""

    incidents: list[IncidentReport] = Field(max_length=BATCH_MAX)


class ReportResult(BaseModel):
    """One report's acknowledgement."""

    id: str
    incident: int
    outcome: str


class IncidentBatchResponse(BaseModel):
    """One acknowledgement per report, in the batch's order."""

    results: list[ReportResult]


class IncidentChange(Strict):
    """A reviewer's change of an incident."""

    status: Status | None = None
    comment: str | None = Field(default=None, max_length=10_000)


class IncidentPage(BaseModel):
    """A page of incidents, newest first, and the URL of the next page (null on the last)."""

    items: list[dict[str, Any]]
    next: str | None


class AgentView(BaseModel):
    """An agent as the API shows it."""

    id: str
    host: str
    # enrolled | ok | silent | revoked (vigil.server.agent_health)
    status: str
    last_heartbeat: datetime | None
    catalog_version: str | None
    spool_length: int | None
    # Open health conditions: agent_silent, catalog_rejected, watcher_unhealthy, catalog_stale.
    conditions: list[str] = []


class AgentList(BaseModel):
    """Every enrolled agent."""

    items: list[AgentView]


class ApiKeyView(BaseModel):
    """An API key as the API shows it (never its secret)."""

    id: int
    user: str
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyList(BaseModel):
    """API keys: all of them for an admin, one's own for other users."""

    items: list[ApiKeyView]


class ApiKeyRequest(BaseModel):
    """A new API key for a user (admins only)."""

    user: str


class ApiKeyCreated(ApiKeyView):
    """A new API key: its secret, shown this once."""

    key: str
