"""Coalesced heartbeats (vigil.server.heartbeats) on a real database, SQLite and PostgreSQL: what
one batch writes and answers, and the batcher that gathers them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import OperationalError
from support.notifying import database, init
from support.server import free_port

from vigil.server import heartbeats, settings
from vigil.server.credentials import AGENT_PREFIX, new_secret, secret_sha256
from vigil.server.models import Agent, AgentCondition, Incident
from vigil.server.settings import Settings
from vigil.server.storage import Storage

# Real processes over loopback: run in the suite's process-parallel group (scripts/test).
pytestmark = pytest.mark.e2e


@pytest.fixture(params=["sqlite", "postgresql"])
def home(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Storage, Settings]]:
    """An initialised server home of the test's own: its database and settings."""
    with database(request.param) as db:
        init(tmp_path, db)
        storage = Storage.open(tmp_path)
        try:
            yield storage, settings.read(tmp_path)
        finally:
            storage.close()


def enrol(storage: Storage, n: int, *, revoked: bool = False) -> list[tuple[str, str]]:
    """`n` agents straight in the database: (id, credential) each."""
    now = datetime.now(UTC)
    made = [(str(uuid.uuid4()), new_secret(AGENT_PREFIX)) for _ in range(n)]
    with storage.engine.begin() as conn:
        conn.execute(
            insert(Agent.__table__),
            [
                {
                    "id": agent_id,
                    "host": f"pc-{agent_id[:8]}",
                    "secret_sha256": secret_sha256(credential),
                    "enrolled_at": now,
                    "revoked_at": now if revoked else None,
                }
                for agent_id, credential in made
            ],
        )
    return made


def agents(storage: Storage, ids: list[str]) -> dict[str, Agent]:
    with storage.session() as s:
        return {a.id: a for a in s.scalars(select(Agent).where(Agent.id.in_(ids)))}


def test_one_batch_records_each_agent_and_refuses_the_others(
    home: tuple[Storage, Settings],
) -> None:
    storage, config = home
    good = enrol(storage, 3)
    ((revoked_id, revoked),) = enrol(storage, 1, revoked=True)
    beats = [
        heartbeats.beat(good[0][1], "7", 0, {"healthy": True, "watched": 12, "errors": []}),
        heartbeats.beat(revoked, "7", 0, None),
        # Nothing but the heartbeat itself: every optional field empty.
        heartbeats.beat(good[1][1], None, None, None),
        heartbeats.beat(new_secret(AGENT_PREFIX), "7", 0, None),
        heartbeats.beat(good[2][1], "6", 41, None),
    ]
    with storage.session() as s:
        results = heartbeats.record(s, config, beats)
    assert results[0] == good[0][0] and results[2] == good[1][0] and results[4] == good[2][0]
    assert isinstance(results[1], heartbeats.Refused)
    assert isinstance(results[3], heartbeats.Refused)

    found = agents(storage, [a for a, _ in good] + [revoked_id])
    first, second, third = (found[a] for a, _ in good)
    assert first.catalog_version == "7" and first.spool_length == 0
    assert first.watch == {"healthy": True, "watched": 12, "errors": []}
    assert second.last_heartbeat is not None and second.catalog_version is None
    assert second.watch is None and second.spool_length is None
    assert third.catalog_version == "6" and third.spool_length == 41
    assert found[revoked_id].last_heartbeat is None


def test_an_agent_twice_in_one_batch_keeps_its_last_word(home: tuple[Storage, Settings]) -> None:
    storage, config = home
    ((agent_id, credential),) = enrol(storage, 1)
    with storage.session() as s:
        results = heartbeats.record(
            s,
            config,
            [heartbeats.beat(credential, "1", 5, None), heartbeats.beat(credential, "2", 0, None)],
        )
    assert results == [agent_id, agent_id]
    (agent,) = agents(storage, [agent_id]).values()
    assert (agent.catalog_version, agent.spool_length) == ("2", 0)


def test_a_condition_in_a_batch_opens_its_episode_alone(home: tuple[Storage, Settings]) -> None:
    storage, config = home
    made = enrol(storage, 4)
    sick_id, sick = made[2]
    beats = [heartbeats.beat(c, "3", 0, None) for _, c in made]
    beats[2] = heartbeats.beat(sick, "3", 0, None, catalog_error="bad signature")
    with storage.session() as s:
        assert heartbeats.record(s, config, beats) == [a for a, _ in made]
    with storage.session() as s:
        open_now = list(s.execute(select(AgentCondition.agent_id, AgentCondition.condition)))
        assert open_now == [(sick_id, "catalog_rejected")]
        (incident,) = s.scalars(select(Incident).where(Incident.agent_id == sick_id))
        assert incident.kind == "catalog_rejected"
    # Well again, in a batch with the others: the episode ends, the others are untouched.
    with storage.session() as s:
        heartbeats.record(s, config, [heartbeats.beat(c, "3", 0, None) for _, c in made])
    with storage.session() as s:
        assert list(s.scalars(select(AgentCondition))) == []
        assert s.scalar(select(Incident).where(Incident.agent_id != sick_id)) is None


def test_the_batcher_writes_concurrent_heartbeats_together(
    home: tuple[Storage, Settings],
) -> None:
    storage, config = home
    made = enrol(storage, 120)
    ((_, revoked),) = enrol(storage, 1, revoked=True)
    batches: list[int] = []

    async def fleet() -> list[str | BaseException]:
        batcher = heartbeats.Batcher(
            storage.session, config, on_batch=lambda size, _seconds: batches.append(size)
        )
        batcher.start()
        try:
            return await asyncio.gather(
                *(
                    batcher.submit(heartbeats.beat(c, "9", n, None))
                    for n, (_, c) in enumerate(made)
                ),
                batcher.submit(heartbeats.beat(revoked, "9", 0, None)),
                return_exceptions=True,
            )
        finally:
            await batcher.stop()

    results = asyncio.run(fleet())
    assert results[:-1] == [a for a, _ in made]
    assert isinstance(results[-1], heartbeats.Refused)
    # Sent at once, written together (one write here: all were waiting when it began).
    assert sum(batches) == 121 and len(batches) < 121
    found = agents(storage, [a for a, _ in made])
    assert [found[a].spool_length for a, _ in made] == list(range(120))


def test_a_batch_that_cannot_be_written_fails_each_of_its_heartbeats(tmp_path: Path) -> None:
    # A database nobody answers on.
    gone = Storage(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test?connect_timeout=5")
    config = settings.read(tmp_path)

    async def fleet() -> list[str | BaseException]:
        batcher = heartbeats.Batcher(gone.session, config)
        batcher.start()
        try:
            return await asyncio.gather(
                *(
                    batcher.submit(heartbeats.beat(new_secret(AGENT_PREFIX), "9", 0, None))
                    for _ in range(3)
                ),
                return_exceptions=True,
            )
        finally:
            await batcher.stop()

    try:
        results = asyncio.run(fleet())
    finally:
        gone.close()
    assert len(results) == 3
    assert all(isinstance(r, OperationalError) for r in results), results
