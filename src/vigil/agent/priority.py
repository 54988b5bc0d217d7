"""Low priority for scheduled scans: the lowest CPU niceness and the idle I/O class, so a busy
machine pauses the scan rather than the other way round."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import platform

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
