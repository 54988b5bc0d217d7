"""Watching folders: with inotify (Linux), through inotify_simple, which hands over the kernel's
queue-overflow event as it is (watchdog's inotify observer makes no event of it: the agent hooks
it there, see vigil.agent.observer); elsewhere, or when asked, through watchdog's observers. `open_watcher` picks one by `watch_backend`.

Every folder under a root gets a watch, new folders as they appear (and what was written into
them before their watch existed is scanned). A file is reported when it is closed after writing
or moved in. What makes events go missing — the kernel's queue overflowing, a watch lost (a root
deleted or unmounted), the per-user watch limit reached — marks that root dirty: it is rescanned
(through the fingerprint cache, so unchanged files cost a stat) and the trouble is kept for the
heartbeat. The watcher never opens a watched file.
"""

from __future__ import annotations

import errno
import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from vigil.errors import VigilError

log = logging.getLogger("vigil.agent.watch")

# Errors kept for the heartbeat (the server takes at most 20 lines of 500 characters).
HEALTH_ERRORS = 20
# How often lost roots are tried again (a removable medium plugged back in, a folder recreated).
RETRY_SECONDS = 30.0
# How long one read waits for events (it returns at once when there are some): the watcher
# notices a stop within this time, and an idle agent wakes only this often.
READ_MS = 1000


@dataclass
class WatchHealth:
    """What the heartbeat says of watching."""

    healthy: bool = True
    watched: int = 0
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        """The heartbeat's `watch` object."""
        return {"healthy": self.healthy, "watched": self.watched, "errors": self.errors}


# What `watch_backend` may name; "auto" is inotify on Linux, watchdog's native observer elsewhere.
BACKENDS = ("auto", "inotify", "watchdog", "polling")


class Watching:
    """What every backend shares: the roots, the callbacks, lost roots and the trouble kept for
    the heartbeat. A backend adds start(), run(stop) and close()."""

    def __init__(
        self,
        roots: list[str],
        excluded: Callable[[str], bool],
        on_files: Callable[[list[str]], None],
        on_tree: Callable[[str, str], None],
    ) -> None:
        self.roots = [os.path.abspath(r) for r in roots]
        self.excluded = excluded
        self.on_files = on_files
        self.on_tree = on_tree
        self.lost: set[str] = set()  # roots with no watch now
        self.limit_reached = False
        self.errors: deque[str] = deque(maxlen=HEALTH_ERRORS)
        self.overflows = 0
        self._setup()

    def _setup(self) -> None:
        """The backend's own state (made once the shared part is)."""

    def _trouble(self, message: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.errors.append(f"{stamp} {message}"[:500])
        log.warning("%s", message)

    def _lose(self, root: str, why: str) -> None:
        if root not in self.lost:
            # The error first: `health` (another thread) never reports the root lost without
            # saying why.
            self._trouble(f"watch lost on {root}: {why}")
            self.lost.add(root)

    def _watched(self) -> int:
        """Folders (inotify) or roots (watchdog) watched now."""
        return len(self.roots) - len(self.lost)

    def health(self) -> WatchHealth:
        """Watching now: healthy when every root is watched and the limit was not reached."""
        return WatchHealth(
            healthy=not self.lost and not self.limit_reached,
            watched=self._watched(),
            errors=list(self.errors),
        )

    def _root_of(self, path: str) -> str | None:
        for root in self.roots:
            if path == root or path.startswith(root.rstrip(os.sep) + os.sep):
                return root
        return None

    def start(self) -> None:
        raise NotImplementedError

    def run(self, stop: threading.Event) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


def choose(backend: str, platform: str = sys.platform) -> str:
    """The backend `watch_backend` names on this platform ("auto": inotify on Linux, watchdog
    elsewhere); a VigilError for inotify where there is none."""
    if backend == "auto":
        return "inotify" if platform.startswith("linux") else "watchdog"
    if backend == "inotify" and not platform.startswith("linux"):
        raise VigilError(f"watch_backend = 'inotify' is Linux only (this is {platform})")
    return backend


def open_watcher(
    backend: str,
    roots: list[str],
    excluded: Callable[[str], bool],
    on_files: Callable[[list[str]], None],
    on_tree: Callable[[str, str], None],
) -> Watching:
    """The watcher of `backend` ("auto", "inotify", "watchdog" or "polling")."""
    chosen = choose(backend)
    if chosen == "inotify":
        return Watcher(roots, excluded, on_files, on_tree)
    from vigil.agent.observer import ObserverWatcher, PollingWatcher

    kind = PollingWatcher if chosen == "polling" else ObserverWatcher
    return kind(roots, excluded, on_files, on_tree)


class Watcher(Watching):
    """inotify watches on every folder under the roots; files to scan and dirty roots out."""

    def _setup(self) -> None:
        from inotify_simple import INotify, flags

        self.flags = flags
        self.inotify = INotify()
        self.mask = (
            flags.CLOSE_WRITE
            | flags.MOVED_TO
            | flags.CREATE
            | flags.DELETE_SELF
            | flags.MOVE_SELF
            | flags.UNMOUNT
            | flags.ONLYDIR
            | flags.DONT_FOLLOW
            | flags.EXCL_UNLINK
        )
        self.paths: dict[int, str] = {}
        self._lock = threading.Lock()

    # -- watches -----------------------------------------------------------------------------

    def _add(self, directory: str) -> bool:
        """Watch one folder; False when it cannot be (gone, not a folder, limit)."""
        try:
            wd = self.inotify.add_watch(directory, self.mask)
        except OSError as e:
            if e.errno == errno.ENOSPC:
                if not self.limit_reached:
                    self._trouble(
                        "inotify watch limit reached (fs.inotify.max_user_watches): "
                        f"{directory} and others unwatched, covered by rescans only"
                    )
                self.limit_reached = True
            elif e.errno not in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                self._trouble(f"cannot watch {directory}: {e.strerror}")
            return False
        with self._lock:
            self.paths[wd] = directory
        return True

    def add_tree(self, top: str) -> int:
        """Watch `top` and every folder under it (not following symlinks); how many."""
        if self.excluded(top):
            return 0
        if not self._add(top):
            return 0
        n = 1
        for dirpath, dirnames, _ in os.walk(top, onerror=None, followlinks=False):
            keep = []
            for d in dirnames:
                sub = os.path.join(dirpath, d)
                if not self.excluded(sub) and self._add(sub):
                    keep.append(d)
                    n += 1
            dirnames[:] = keep
        return n

    def start(self) -> None:
        """Watch every root (a missing one is lost: tried again later)."""
        for root in self.roots:
            if not os.path.isdir(root):
                self._lose(root, "does not exist")
                continue
            log.info("watching %s (%d folders)", root, self.add_tree(root))

    def _retry_lost(self) -> None:
        for root in sorted(self.lost):
            if os.path.isdir(root):
                n = self.add_tree(root)
                if not n:
                    continue  # gone again, or not watchable: tried again later
                log.info("watching %s again (%d folders)", root, n)
                # The rescan is handed over before the root counts as watched again: whoever
                # sees it healthy also sees its rescan asked for.
                self.on_tree(root, "watch restored")
                self.lost.discard(root)

    def _watched(self) -> int:
        with self._lock:
            return len(self.paths)

    # -- events ------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Read events until `stop` is set."""
        last_retry = time.monotonic()
        while not stop.is_set():
            events = self.inotify.read(timeout=READ_MS)
            if events:
                self._handle(events)
            if self.lost and time.monotonic() - last_retry > RETRY_SECONDS:
                last_retry = time.monotonic()
                self._retry_lost()

    def _handle(self, events: list) -> None:  # type: ignore[type-arg]
        f = self.flags
        files: list[str] = []
        for ev in events:
            if ev.mask & f.Q_OVERFLOW:
                self.overflows += 1
                self._trouble("inotify queue overflow: events lost, every root rescanned")
                for root in self.roots:
                    if root not in self.lost:
                        self.add_tree(root)  # folders made during the overflow
                        self.on_tree(root, "overflow")
                continue
            with self._lock:
                directory = self.paths.get(ev.wd)
            if directory is None:
                continue
            if ev.mask & f.IGNORED:
                with self._lock:
                    self.paths.pop(ev.wd, None)
                if directory in self.roots:
                    self._lose(directory, "removed or unmounted")
                continue
            if ev.mask & (f.DELETE_SELF | f.MOVE_SELF | f.UNMOUNT):
                if directory in self.roots:
                    self._lose(directory, "moved, removed or unmounted")
                continue
            path = os.path.join(directory, ev.name) if ev.name else directory
            if ev.mask & f.ISDIR:
                if ev.mask & (f.CREATE | f.MOVED_TO) and not self.excluded(path):
                    # Its files may be written before its watch exists: scan it once watched.
                    self.add_tree(path)
                    self.on_tree(path, "new folder")
                continue
            if ev.mask & (f.CLOSE_WRITE | f.MOVED_TO) and not self.excluded(path):
                files.append(path)
        if files:
            self.on_files(files)

    def close(self) -> None:
        """Drop every watch."""
        self.inotify.close()
