"""Low priority for scheduled scans: the lowest CPU niceness and the idle I/O class, so a busy
machine pauses the scan rather than the other way round; and `CpuGovernor`, which holds the scan's
whole process tree to `cpu_share` of the cores by suspending it while it is over its share.

Niceness alone does not bound a scan on an idle machine (nice 19 takes every idle cycle), and a
scan's worker count alone does not either: one worker is one whole core, which on 2 cores is a
share of 0.5 for `cpu_share = 0.25`, plus the scan's own process. The governor measures what the
tree used (psutil: its processes' CPU times) every TICK_SECONDS and stops the tree (SIGSTOP on
POSIX, NtSuspendProcess on Windows, through psutil) until its credit is back: a leaky bucket
filled at `cpu_share` x cores per second, which may hold at most BURST_SECONDS of it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import platform
import time
from typing import Any

log = logging.getLogger("vigil.agent.priority")

# ioprio_set(2) has no wrapper in the C library or in Python: its number per architecture.
_IOPRIO_SET = {"x86_64": 251, "aarch64": 30, "i686": 289, "i386": 289, "armv7l": 314}
_IOPRIO_WHO_PROCESS = 1
_IOPRIO_CLASS_IDLE = 3
_IOPRIO_CLASS_SHIFT = 13
NICE = 19


def idle_io() -> bool:
    """Put this process in the idle I/O scheduling class; False where that is not possible."""
    number = _IOPRIO_SET.get(platform.machine())
    if number is None:
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    done = libc.syscall(number, _IOPRIO_WHO_PROCESS, 0, _IOPRIO_CLASS_IDLE << _IOPRIO_CLASS_SHIFT)
    return bool(done == 0)


def lower() -> None:
    """Nice 19 and idle I/O for this process (and the workers it starts after)."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, NICE)
    except OSError as e:
        log.warning("cannot lower the CPU priority: %s", e)
    if not idle_io():
        log.warning("cannot use the idle I/O class here")


def workers_for(cpu_share: float) -> int:
    """Worker processes of a scheduled scan for a share of the machine's cores (at least one)."""
    return max(1, int(cpu_share * (os.cpu_count() or 1)))


def stretch_for(cpu_share: float) -> float:
    """How much longer than its CPU time an item of a scheduled scan may take: its workers share
    cpu_share x cores between them (the governor suspends them for the rest)."""
    return max(1.0, workers_for(cpu_share) / (cpu_share * (os.cpu_count() or 1)))


# How often the governor looks at the tree's CPU time and for new processes in it. Where the
# kernel lists a task's children (/proc/PID/task/TID/children, Linux) that costs a few small
# reads; elsewhere psutil finds children by reading every process's parent (a few ms), so new
# processes are looked for every REFRESH_SECONDS only.
TICK_SECONDS = 0.1
REFRESH_SECONDS = 2.0
# The most a tree may run ahead of its share (seconds of its share's CPU time): a scan that waited
# on the disk or on a busy machine does not bank credit for a burst later.
BURST_SECONDS = 0.25


def _proc_children(pid: int) -> list[int] | None:
    """The children of `pid` as the kernel lists them per task; None where it does not."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    out: list[int] = []
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                out.extend(int(c) for c in f.read().split())
        except FileNotFoundError:
            if not os.path.exists(f"/proc/{pid}/task/{tid}"):
                continue  # the thread ended
            return None  # a kernel without CONFIG_PROC_CHILDREN
        except OSError:
            continue
    return out


class CpuGovernor:
    """Holds the process tree under `pid` to `share` of `cores` (default: every core)."""

    def __init__(self, pid: int, share: float, cores: int | None = None) -> None:
        import psutil

        self.psutil = psutil
        self.root = psutil.Process(pid)
        self.rate = share * (cores or os.cpu_count() or 1)  # CPU seconds per second allowed
        self.credit = 0.0
        self.suspended = False
        self.pauses = 0  # times the tree was suspended
        self.procs: dict[int, Any] = {pid: self.root}
        self.kernel_lists = _proc_children(pid) is not None
        self.last_refresh = 0.0
        self.last = time.monotonic()
        self.used = self._cpu()

    def _refresh(self) -> None:
        """The processes in the tree now."""
        self.last_refresh = time.monotonic()
        pids: list[int] = []
        if self.kernel_lists:
            todo = [self.root.pid]
            while todo:
                kids = _proc_children(todo.pop())
                if kids is None:
                    continue  # ended meanwhile
                pids += kids
                todo += kids
        else:
            try:
                pids = [p.pid for p in self.root.children(recursive=True)]
            except self.psutil.Error:
                pids = []
        procs = {self.root.pid: self.root}
        for pid in pids:
            known = self.procs.get(pid)
            if known is None:
                try:
                    known = self.psutil.Process(pid)
                except self.psutil.Error:
                    continue
            procs[pid] = known
        self.procs = procs

    def _cpu(self) -> float:
        """CPU seconds used by the tree so far (children it reaped included)."""
        total = 0.0
        for p in self.procs.values():
            try:
                t = p.cpu_times()
            except self.psutil.Error:
                continue  # ended: its time is in its parent's children_* once reaped
            total += t.user + t.system
            if p is self.root:
                total += t.children_user + t.children_system
        return total

    def step(self) -> float:
        """Look at the tree once: suspend it while it is over its share, resume it when it is
        not; how long to wait before the next step."""
        now = time.monotonic()
        if self.kernel_lists or now - self.last_refresh >= REFRESH_SECONDS:
            self._refresh()
        used = self._cpu()
        # A process that ended between two looks takes its time away from the sum until its
        # parent reaps it: never a negative use.
        spent, self.used = max(0.0, used - self.used), max(used, self.used)
        self.credit = min(
            self.credit + self.rate * (now - self.last) - spent, self.rate * BURST_SECONDS
        )
        self.last = now
        if self.credit < 0:
            if not self.suspended:
                self._signal(suspend=True)
                self.pauses += 1
            return min(1.0, -self.credit / self.rate)
        if self.suspended:
            self._signal(suspend=False)
        return TICK_SECONDS

    def release(self) -> None:
        """Resume the tree (before it is told to stop, or when the scan ends)."""
        if self.suspended:
            self._signal(suspend=False)

    def _signal(self, *, suspend: bool) -> None:
        if suspend and not self.kernel_lists:
            self._refresh()  # new processes first seen now are stopped too
        for p in list(self.procs.values()):
            try:
                p.suspend() if suspend else p.resume()
            except self.psutil.Error:
                pass
        self.suspended = suspend
