"""The scheduled scan's CPU share: `CpuGovernor` on a real process tree that burns CPU."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time

import pytest

from vigil.agent.priority import BURST_SECONDS, CpuGovernor, stretch_for, workers_for

# Real processes over loopback: run in the suite's process-parallel group (scripts/test).
pytestmark = pytest.mark.e2e

# A parent and two children, each burning a fixed amount of its own CPU time, then exiting 0.
BURN = """
import multiprocessing, sys, time

def burn(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass

if __name__ == "__main__":
    kids = [multiprocessing.Process(target=burn, args=(float(sys.argv[1]),)) for _ in range(2)]
    for k in kids:
        k.start()
    burn(float(sys.argv[1]) / 4)
    for k in kids:
        k.join()
    sys.exit(max(k.exitcode for k in kids))
"""


def test_the_governor_holds_a_tree_to_its_share_and_it_still_finishes() -> None:
    """Three processes that would take every core while they run are held to 0.05 of 2 cores
    (0.1 CPU-second per second: below what they get on this machine however loaded it is, so
    the governor must pause them) over their run: paused, never failed — every one of them
    ends, status 0, its work done. The share is measured from the tree's own CPU times; the
    bound is on that ratio (a loaded machine only lowers it), not on any time."""
    share, cores, work = 0.05, 2, 0.4
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", BURN, str(work)])
    governor = CpuGovernor(proc.pid, share, cores=cores)
    while proc.poll() is None:
        time.sleep(governor.step())
    governor.release()
    elapsed = time.monotonic() - t0
    # The tree's CPU time, all of it: the child and what it reaped, reaped by this process.
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    assert proc.returncode == 0
    assert governor.pauses > 0
    # At least the work asked for was done (2 children x 1 s, the parent 0.25 s).
    assert cpu >= 2 * work + work / 4 - 0.05
    allowed = share * cores * elapsed + share * cores * BURST_SECONDS
    # What one look can overrun (a tick of three processes on two cores) on top of the share.
    assert cpu <= allowed * 1.15 + 0.2, (cpu, elapsed)


def test_workers_and_stretch_for_a_share() -> None:
    cores = os.cpu_count() or 1
    assert workers_for(1.0) == cores
    assert workers_for(0.01) == 1
    # One worker for a share below one core: it runs share x cores of the time.
    share = 0.5 / cores
    assert stretch_for(share) == 2.0
    assert stretch_for(1.0) == 1.0
