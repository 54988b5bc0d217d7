"""Watch overflow: more events than the kernel queues; every known file is still found."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from support.agent import Fleet, drop, incidents, wait_for
from support.planted import Tree
from support.server import Server

# Real processes over loopback: run in the suite's process-parallel group (scripts/test).
pytestmark = pytest.mark.e2e

QUEUE = Path("/proc/sys/fs/inotify/max_queued_events")
SMALL_QUEUE = 16


@contextmanager
def small_queue() -> Iterator[bool]:
    """The kernel's inotify queue lowered for inotify instances made inside the block, where
    the test may (root, writable /proc/sys), and restored at its end: the limit is global, so
    the block is kept to an agent's start (an instance keeps the size it was made with). False
    where it may not: the test overflows the default queue by volume then."""
    try:
        before = QUEUE.read_text()
        QUEUE.write_text(f"{SMALL_QUEUE}\n")
    except OSError:
        yield False
        return
    try:
        yield True
    finally:
        QUEUE.write_text(before)


def test_overflow_is_rescanned(agent_server: Server, fleet: Fleet, planted: Tree) -> None:
    """A flood of files beyond the inotify queue: the overflow is seen, reported in the
    heartbeat, and the rescan finds every known file among them."""
    _flood(agent_server, fleet, planted, "inotify")


@pytest.mark.parametrize("agent_server", ["sqlite"], indirect=True)
def test_overflow_is_rescanned_through_watchdog(
    agent_server: Server, fleet: Fleet, planted: Tree
) -> None:
    """The same through watchdog's inotify observer (`watch_backend = "watchdog"`), which
    rebuilds its watches on an overflow and says nothing more: the agent's emitter hears it,
    reports it and rescans."""
    _flood(agent_server, fleet, planted, "watchdog")


def _flood(agent_server: Server, fleet: Fleet, planted: Tree, backend: str) -> None:
    agent = fleet.enrol(agent_server, toml=f'watch_backend = "{backend}"\n')
    known = (planted.root / "docs/report.txt").read_bytes()
    plain = b"nothing to see here\n"
    expected = set()
    # The folders first, watched from the start; then the daemon is stopped while the files
    # land in them (as a machine under load may hold it off the CPU), so the kernel's queue
    # overflows for certain: a watcher that keeps up would drain it.
    with small_queue() as lowered:
        flood = 300 if lowered else 20_000
        folders = sorted({i // 100 for i in range(flood)})
        for n in folders:
            (agent.watch / f"flood/{n}").mkdir(parents=True)
        agent.start()
        agent.wait_ready()
    assert agent.status()["watch_backend"] == backend
    if backend == "inotify":  # one watch per folder (watchdog's health counts roots)
        status = json.loads((agent.home / "agent" / "status.json").read_text())
        assert status["watch"]["watched"] >= 2 + len(folders)
    assert agent.proc is not None
    os.kill(agent.proc.pid, signal.SIGSTOP)
    try:
        for i in range(flood):
            if i % 15 == 7:
                path = agent.watch / f"flood/{i // 100}/{i:05d}.jpg"
                drop(path, known)
                expected.add(str(path))
            else:
                drop(agent.watch / f"flood/{i // 100}/{i:05d}.txt", plain + str(i).encode())
    finally:
        os.kill(agent.proc.pid, signal.SIGCONT)
    key = agent_server.api_key("admin")

    def found() -> bool:
        return expected <= {i["path"] for i in incidents(agent_server, key, agent.host)}

    wait_for(f"the {len(expected)} known files' incidents", found)

    # The overflow is counted in the daemon's status (written each heartbeat); the watch health's
    # error line may already be gone again once the rescan made the root whole.
    def overflowed() -> bool:
        daemon = json.loads((agent.home / "agent" / "status.json").read_text())
        errors = (daemon.get("watch") or {}).get("errors") or []
        return daemon.get("overflows", 0) >= 1 or any("overflow" in e for e in errors)

    wait_for("the overflow in the status", overflowed)
