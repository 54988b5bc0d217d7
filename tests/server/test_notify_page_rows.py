"""The Notifications page's failing deliveries, read while a delivery worker settles rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from support.server import drop

from vigil.server import outbox
from vigil.server.models import Notification
from vigil.server.settings import Settings
from vigil.server.storage import Storage, upgrade
from vigil.server.web.notify_pages import _failures


@pytest.fixture
def migrated(storage: Storage) -> Iterator[Storage]:
    """The server's tables on each database (`storage`), dropped afterwards."""
    upgrade(storage.engine)
    yield storage
    drop(storage)


def test_a_row_that_fails_after_the_outbox_was_read_shows_its_error(migrated: Storage) -> None:
    """The page reads the outbox, then the failing rows, in one session. A row the first query
    loaded untried and the worker settled with an error in between is listed as failing with
    that error and its attempt, not as it was when first read."""
    now = datetime.now(UTC)
    with migrated.session() as s:
        s.add(
            Notification(
                uid=outbox.new_uid(),
                incident_id=None,
                event="test",
                channel="db:deadhook",
                channel_type="webhook",
                status=outbox.State.PENDING.value,
                created_at=now,
                due_at=now,
                attempts=0,
            )
        )
    with migrated.session() as page:
        rows, _ = outbox.page(page, None, None, None, 50)
        assert [(r.attempts, r.last_error) for r in rows] == [(0, None)]
        with migrated.session() as worker:
            (claimed,) = outbox.claim(worker, "worker-1")
            outbox.settle(worker, Settings(), claimed, "worker-1", "ConnectError: refused")
        failing = [(r.channel, r.attempts, r.last_error) for r in _failures(page)]
    assert failing == [("db:deadhook", 1, "ConnectError: refused")]
