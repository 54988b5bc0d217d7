"""Agents' heartbeats, coalesced: many agents' heartbeats written in one statement.

A fleet of 30,000 agents heartbeating each minute sends 500 a second. Written one transaction
each, the database's per-statement and per-commit work dominates; here each server process
gathers the heartbeats that arrive within `WINDOW` and writes them together: on PostgreSQL one
`UPDATE agents ... FROM unnest(...)` (the same statement text whatever the batch's size, so it is
prepared once), elsewhere an executemany. The same transaction reads the batch's open health
conditions in one query; only an agent whose heartbeat opens or ends an episode is loaded and
goes through vigil.server.health. A heartbeat is answered once its batch committed: an
acknowledged heartbeat is durable, and a batch that failed fails each of its requests (the agent
sends again), so nothing is lost silently.

The credential is checked by the UPDATE itself (`secret_sha256` and not revoked): a revocation
holds from the next batch on, with no cache to wait out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import anyio
from sqlalchemy import JSON, Table, bindparam, select, text, update
from sqlalchemy.orm import Session

from vigil.server import health
from vigil.server.credentials import secret_sha256
from vigil.server.models import Agent, AgentCondition
from vigil.server.settings import Settings

log = logging.getLogger("vigil.server.heartbeats")

# How long a batch gathers heartbeats before it is written (at most this many writes a second,
# per server process), and the most a batch holds.
WINDOW = 0.1
MAX_BATCH = 2000
# Agent ids per IN list (within every database's parameter limit).
CHUNK = 500


@dataclass(frozen=True)
class Beat:
    """One heartbeat as an agent sent it (its credential kept only as the stored hash)."""

    secret_sha256: str
    catalog_version: str | None
    spool_length: int | None
    watch: dict[str, Any] | None
    catalog_error: str | None = None
    catalog_age_seconds: float | None = None


class Refused(Exception):
    """A heartbeat with an unknown or revoked credential."""


def beat(
    credential: str,
    catalog_version: str | None,
    spool_length: int | None,
    watch: dict[str, Any] | None,
    *,
    catalog_error: str | None = None,
    catalog_age_seconds: float | None = None,
) -> Beat:
    """A heartbeat of the agent holding `credential`."""
    return Beat(
        secret_sha256(credential),
        catalog_version,
        spool_length,
        watch,
        catalog_error,
        catalog_age_seconds,
    )


# PostgreSQL: the whole batch as four arrays; one plan whatever the batch's size.
_PG_UPDATE = text(
    """
    UPDATE agents SET last_heartbeat = :now, catalog_version = b.catalog_version,
        spool_length = b.spool_length, watch = b.watch
    FROM unnest(CAST(:shas AS text[]), CAST(:versions AS text[]), CAST(:spools AS integer[]),
                CAST(:watches AS json[])) AS b(secret_sha256, catalog_version, spool_length, watch)
    WHERE agents.secret_sha256 = b.secret_sha256 AND agents.revoked_at IS NULL
    RETURNING agents.id, agents.secret_sha256
    """
)


def _write_postgresql(session: Session, beats: list[Beat], now: datetime) -> dict[str, str]:
    import json

    rows = session.execute(
        _PG_UPDATE,
        {
            "now": now,
            "shas": [b.secret_sha256 for b in beats],
            "versions": [b.catalog_version for b in beats],
            "spools": [b.spool_length for b in beats],
            "watches": [None if b.watch is None else json.dumps(b.watch) for b in beats],
        },
    )
    return {sha: agent_id for agent_id, sha in rows}


def _write_generic(session: Session, beats: list[Beat], now: datetime) -> dict[str, str]:
    table = cast(Table, Agent.__table__)
    session.execute(
        update(table)
        .where(table.c.secret_sha256 == bindparam("b_sha"), table.c.revoked_at.is_(None))
        .values(
            last_heartbeat=now,
            catalog_version=bindparam("b_version"),
            spool_length=bindparam("b_spool"),
            watch=bindparam("b_watch", type_=JSON),
        ),
        [
            {
                "b_sha": b.secret_sha256,
                "b_version": b.catalog_version,
                "b_spool": b.spool_length,
                "b_watch": b.watch,
            }
            for b in beats
        ],
    )
    # Read in the same transaction, after the write: the write lock is held, so a revocation
    # cannot slip in between.
    found: dict[str, str] = {}
    shas = [b.secret_sha256 for b in beats]
    for start in range(0, len(shas), CHUNK):
        for agent_id, sha in session.execute(
            select(Agent.id, Agent.secret_sha256).where(
                Agent.secret_sha256.in_(shas[start : start + CHUNK]), Agent.revoked_at.is_(None)
            )
        ):
            found[sha] = agent_id
    return found


def _open_conditions(session: Session, agent_ids: list[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(agent_ids), CHUNK):
        for row in session.scalars(
            select(AgentCondition).where(
                AgentCondition.agent_id.in_(agent_ids[start : start + CHUNK])
            )
        ):
            found.setdefault(row.agent_id, {})[row.condition] = row
    return found


def record(session: Session, settings: Settings, beats: list[Beat]) -> list[str | Exception]:
    """Write `beats` in `session`'s transaction; for each, the agent's id or why it failed
    (Refused: unknown or revoked credential)."""
    now = datetime.now(UTC)
    # The last word of an agent that sent twice within one batch is the one kept.
    latest = list({b.secret_sha256: b for b in beats}.values())
    if session.get_bind().dialect.name == "postgresql":
        agents = _write_postgresql(session, latest, now)
    else:
        agents = _write_generic(session, latest, now)
    conditions = _open_conditions(session, list(agents.values()))
    failed: dict[str, Exception] = {}
    for b in latest:
        agent_id = agents.get(b.secret_sha256)
        if agent_id is None:
            continue
        reported = health.reported_conditions(
            settings,
            catalog_error=b.catalog_error,
            catalog_age_seconds=b.catalog_age_seconds,
            watch=b.watch,
        )
        open_now = conditions.get(agent_id, {})
        if not reported and not open_now:
            continue
        # An episode opens or ends: in a savepoint, so one agent's failure (another server
        # process opening the same episode at once) fails its heartbeat alone.
        try:
            with session.begin_nested():
                agent = session.get(Agent, agent_id)
                assert agent is not None
                health.on_heartbeat(session, settings, agent, reported, open_now)
        except Exception as e:  # noqa: BLE001 - reported to that agent's request only
            log.warning("agent %s: heartbeat's health not recorded: %s", agent_id, e)
            failed[b.secret_sha256] = e
    results: list[str | Exception] = []
    for b in beats:
        if b.secret_sha256 in failed:
            results.append(failed[b.secret_sha256])
        elif b.secret_sha256 in agents:
            results.append(agents[b.secret_sha256])
        else:
            results.append(Refused("unknown or revoked credential"))
    return results


@dataclass
class _Waiting:
    beat: Beat
    answer: asyncio.Future[str]


@dataclass
class Batcher:
    """Gathers a server process's heartbeats and writes them together (see the module's text).

    `submit` waits until the heartbeat's batch committed and returns the agent's id.
    """

    sessions: Callable[[], Any]
    settings: Settings
    window: float = WINDOW
    max_batch: int = MAX_BATCH
    # Observed after each write: the batch's size and how long its write took.
    on_batch: Callable[[int, float], None] | None = None
    _pending: list[_Waiting] = field(default_factory=list)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None
    _stopping: bool = False

    def start(self) -> None:
        """Begin writing batches (in the running event loop)."""
        self._task = asyncio.create_task(self._run(), name="vigil-heartbeats")

    async def submit(self, b: Beat) -> str:
        """Record `b` with its batch; the agent's id (Refused, or the batch's error)."""
        if self._task is None or self._task.done():
            raise RuntimeError("the heartbeat writer is not running")
        answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._pending.append(_Waiting(b, answer))
        self._wake.set()
        return await answer

    async def stop(self) -> None:
        """Write what is pending, then stop."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        last = 0.0
        while True:
            if not self._pending:
                if self._stopping:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            # Gather for what is left of the window since the last write began.
            delay = last + self.window - time.monotonic()
            if delay > 0 and len(self._pending) < self.max_batch and not self._stopping:
                await asyncio.sleep(delay)
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            last = time.monotonic()
            await self._write(batch)

    async def _write(self, batch: list[_Waiting]) -> None:
        beats = [w.beat for w in batch]

        def write() -> list[str | Exception]:
            with self.sessions() as s:
                return record(s, self.settings, beats)

        started = time.perf_counter()
        try:
            # The write runs in a worker thread; the event loop keeps taking requests.
            results = await anyio.to_thread.run_sync(write)
        except Exception as e:  # noqa: BLE001 - the batch's requests are told, none lost
            log.warning("a batch of %d heartbeats was not recorded: %s", len(batch), e)
            results = [e] * len(batch)
        if self.on_batch is not None:
            self.on_batch(len(batch), time.perf_counter() - started)
        for waiting, result in zip(batch, results, strict=True):
            if waiting.answer.done():  # the request went away meanwhile
                continue
            if isinstance(result, Exception):
                waiting.answer.set_exception(result)
            else:
                waiting.answer.set_result(result)
