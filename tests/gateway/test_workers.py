"""The gateway's fingerprinting processes (`vigil.gateway.workers`): jobs and their exceptions
come back, a job over its time has its worker killed and replaced, a crash is reported and
replaced, a caller that goes away leaves its worker to finish; every worker, first or
replacement, is forked by the zygote, not by the (threaded) gateway; a stop signal sent to the
whole process group leaves them running until the gateway closes them. Then the same through a
real `vigil gateway run`: a body over `--object-seconds` passes, counted, and the next is
fingerprinted by a new worker."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.gateway import Conn, respmod, start_gateway
from support.planted import Tree

from vigil.errors import VigilError
from vigil.gateway.workers import WorkerDied, Workers


class Refused(VigilError):
    pass


def task(job: tuple[str, Any]) -> Any:
    """What the test workers do, by name."""
    what, arg = job
    if what == "echo":
        return arg
    if what == "ids":
        return os.getpid(), os.getppid()
    if what == "sleep":
        time.sleep(arg)
        return os.getpid()
    if what == "meet":  # wait (up to 30 s) until `n` jobs are running at once, in `folder`
        folder, n = arg
        Path(folder, str(os.getpid())).touch()
        deadline = time.monotonic() + 30
        while len(os.listdir(folder)) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        return os.getpid(), len(os.listdir(folder)) >= n
    if what == "until":  # wait until a file exists
        while not os.path.exists(arg):
            time.sleep(0.01)
        return os.getpid()
    if what == "raise":
        raise Refused(arg)
    if what == "crash":
        os.kill(os.getpid(), signal.SIGSEGV)
    raise AssertionError(what)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def ended(pid: int) -> bool:
    """The process is gone (a kill takes effect, and the zygote's child is reaped, a little
    later than the signal is sent)."""
    deadline = time.monotonic() + 30
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    return not alive(pid)


@pytest.fixture
def workers() -> Iterator[Workers[tuple[str, Any], Any]]:
    w: Workers[tuple[str, Any], Any] = Workers(2, task)
    yield w
    w.close()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_results_and_exceptions_come_back(workers: Workers[tuple[str, Any], Any]) -> None:
    async def go() -> None:
        big = os.urandom(3_000_000)
        assert await workers.run(("echo", big), 30) == big
        with pytest.raises(Refused, match="not this one"):
            await workers.run(("raise", "not this one"), 30)
        # Two jobs at once run in the two workers, neither of them the test's process.
        ids = await asyncio.gather(*(workers.run(("ids", None), 30) for _ in range(2)))
        pids = {pid for pid, _ in ids}
        assert len(pids) == 2 and os.getpid() not in pids
        assert {parent for _, parent in ids} != {os.getpid()}  # forked by the zygote

    run(go())
    assert workers.replaced == 0


def both_serve(workers: Workers[tuple[str, Any], Any], folder: Path) -> Any:
    """Two jobs that can only end when both run at once: the pids that ran them."""
    folder.mkdir()
    return asyncio.gather(*(workers.run(("meet", (str(folder), 2)), 60) for _ in range(2)))


def test_a_job_over_its_time_is_killed_and_its_worker_replaced(
    workers: Workers[tuple[str, Any], Any], tmp_path: Path
) -> None:
    async def go() -> None:
        before = set(workers.pids)
        with pytest.raises(TimeoutError):
            await workers.run(("sleep", 60), 0.5)
        after = set(workers.pids)
        gone = before - after
        assert len(gone) == 1 and len(after) == 2
        assert ended(gone.pop())
        # Both workers (one new) take jobs, and the new one is the zygote's child too.
        met = await both_serve(workers, tmp_path / "meet")
        assert {pid for pid, _ in met} == after and all(ok for _, ok in met)
        parents = {
            parent
            for _, parent in await asyncio.gather(
                *(workers.run(("ids", None), 30) for _ in range(4))
            )
        }
        assert len(parents) == 1 and os.getpid() not in parents

    run(go())
    assert workers.replaced == 1


def test_a_crash_is_reported_and_replaced(workers: Workers[tuple[str, Any], Any]) -> None:
    async def go() -> None:
        with pytest.raises(WorkerDied):
            await workers.run(("crash", None), 30)
        assert await workers.run(("echo", "after"), 30) == "after"
        assert len(workers.pids) == 2

    run(go())
    assert workers.replaced == 1


def test_a_caller_that_goes_away_leaves_its_worker_to_finish(
    workers: Workers[tuple[str, Any], Any], tmp_path: Path
) -> None:
    async def go() -> None:
        before = set(workers.pids)
        release = tmp_path / "release"
        job = asyncio.ensure_future(workers.run(("until", str(release)), 30))
        await asyncio.sleep(0.2)
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job
        # The other worker serves meanwhile; once the job ends, both serve at once: the one
        # that held the cancelled job finished it and came back, nobody was killed.
        assert await workers.run(("echo", 1), 30) == 1
        release.touch()
        met = await both_serve(workers, tmp_path / "meet")
        assert {pid for pid, _ in met} == before == set(workers.pids)
        assert all(ok for _, ok in met)

    run(go())
    assert workers.replaced == 0


def test_a_stop_signal_to_the_group_leaves_workers_to_the_gateway(
    workers: Workers[tuple[str, Any], Any],
) -> None:
    """systemd (KillMode=control-group) and a terminal's Ctrl-C signal every process: the
    workers keep serving the requests the gateway finishes, and end when it closes them."""

    async def go() -> None:
        for pid in workers.pids:
            os.kill(pid, signal.SIGTERM)
            os.kill(pid, signal.SIGINT)
        await asyncio.sleep(0.2)
        assert await workers.run(("echo", "still here"), 30) == "still here"

    run(go())
    pids = workers.pids
    workers.close()
    assert all(ended(p) for p in pids)


def test_a_body_over_object_seconds_passes_counted_and_the_next_is_checked(
    tmp_path: Path, catalog_home: Path, planted: Tree
) -> None:
    from PIL import Image

    home = tmp_path / "home"
    shutil.copytree(catalog_home, home)
    g = start_gateway(
        home, "--mode", "block", "--workers", "1", "--object-seconds", "0.1", metrics=True
    )
    try:
        known = planted.originals["astronaut"]
        huge = io.BytesIO()
        Image.open(io.BytesIO(known)).resize((7000, 7000)).save(huge, "PNG", compress_level=1)
        with Conn(g.port, timeout=120) as c:
            slow = respmod(c, g.port, huge.getvalue(), url="http://slow.test/huge.png")
            assert slow.status == 204  # passed: its fingerprint took too long
            fast = respmod(c, g.port, known, url="http://fast.test/known.jpg")
            assert fast.status == 200 and fast.http_status == 403  # a new worker blocks it
        text = httpx.get(f"http://127.0.0.1:{g.metrics_port}/metrics", timeout=30).text
        assert 'vigil_gateway_passes_total{reason="timeout"} 1.0' in text
        assert "vigil_gateway_workers_replaced_total 1.0" in text
        assert "fingerprinting took over 0.1s: passed" in g.log_text()
    finally:
        assert g.stop() == 0
