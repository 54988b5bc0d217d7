"""Watching folders through watchdog's observers: its native one (ReadDirectoryChangesW on
Windows, FSEvents on macOS, inotify on Linux) or its polling one (any platform and file system,
network shares included: a stat walk of every root each second).

watchdog's events are mapped to "a file closed after writing or moved in" as well as each
platform allows: a `closed` event (watchdog reports it from inotify only) or a move is scanned at
once; a file created or modified is scanned once it has had no event for SETTLE_SECONDS and its
size and time stopped changing (the observer does not say when a writer closed it). watchdog
watches recursively by itself, new folders included; a new folder or one moved in is also scanned
as a tree (what was written into it before its watch existed).

Lost events: watchdog (7.1) makes no event of the operating systems' signs. FSEvents' flags
kFSEventStreamEventFlagMustScanSubDirs, UserDropped and KernelDropped are on its native events
(`must_scan_subdirs`, `is_user_dropped`, `is_kernel_dropped`) but its emitter maps none of them;
ReadDirectoryChangesW's overflow (a read that returns no bytes) becomes an empty buffer, parsed
as no event; inotify's IN_Q_OVERFLOW makes its watch group rebuild its watches and log a warning.
This module's emitters look at each of these where watchdog has it (see `_fsevents_observer`,
`_windows_observer`, `_inotify_observer`: watchdog's internals, which is why it is pinned to one
minor release) and mark the root dirty: it is rescanned through the fingerprint cache and the
overflow is reported in the heartbeat, as with inotify_simple. A root removed, or an observer
thread that ended, is a lost watch: reported, and watched again when the root is back.

The Windows and macOS observers are watchdog's and are not run by this project's tests (they run
on Linux: watchdog's inotify and polling observers).
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from watchdog import events
from watchdog.events import FileSystemEventHandler

from vigil.agent.watch import READ_MS, RETRY_SECONDS, Watching

log = logging.getLogger("vigil.agent.watch")

# A file created or modified is scanned once it has had no event for this long and its size and
# modification time are the same as at its last event.
SETTLE_SECONDS = 1.0
# How often the polling observer walks the roots.
POLL_SECONDS = 1.0
# What watchdog's inotify observer is asked for (see ObserverWatcher._setup).
INOTIFY_EVENTS = (
    events.FileClosedEvent,
    events.FileCreatedEvent,
    events.FileMovedEvent,
    events.FileDeletedEvent,
    events.DirCreatedEvent,
    events.DirMovedEvent,
    events.DirDeletedEvent,
)


def dropped_events(native_events: Iterable[Any]) -> bool:
    """FSEvents native events (watchdog's `_watchdog_fsevents.NativeEvent`) that say events were
    lost under a path: the kernel or the client dropped some, or a subtree must be scanned again."""
    return any(
        getattr(e, "must_scan_subdirs", False)
        or getattr(e, "is_user_dropped", False)
        or getattr(e, "is_kernel_dropped", False)
        for e in native_events
    )


class ObserverWatcher(Watching):
    """One watchdog watch (recursive) per root, through watchdog's native observer; files to
    scan and dirty roots out."""

    polling = False

    def _setup(self) -> None:
        self.observer = _observer(self.polling, self._events_lost)
        # watchdog's inotify observer asks the kernel for every event (opens, reads, closes
        # without writing: each file the scanner reads) unless given the kinds wanted; a close
        # after writing is its only one that says a file is whole, so modifications are not
        # asked for there. The other observers report no close, and need them.
        self.event_filter = list(INOTIFY_EVENTS) if self._inotify() else None
        self.handler = _Handler(self)
        self.watches: dict[str, Any] = {}  # root -> watchdog's ObservedWatch
        # Files waiting to settle: path -> (time of its last event, (size, mtime) then).
        self.pending: dict[str, tuple[float, tuple[int, int] | None]] = {}
        self.ready: list[str] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()

    # -- watches -----------------------------------------------------------------------------

    def _schedule(self, root: str) -> bool:
        if not os.path.isdir(root):
            self._lose(root, "does not exist")
            return False
        try:
            self.watches[root] = self.observer.schedule(
                self.handler, root, recursive=True, event_filter=self.event_filter
            )
        except OSError as e:
            self._lose(root, f"cannot watch: {e.strerror or e}")
            return False
        return True

    def start(self) -> None:
        """Watch every root (a missing one is lost: tried again later)."""
        for root in self.roots:
            if not self.excluded(root) and self._schedule(root):
                log.info("watching %s (%s)", root, self.kind())
        self.observer.start()

    def _inotify(self) -> bool:
        return not self.polling and sys.platform.startswith("linux")

    def kind(self) -> str:
        """The observer in use, as the log names it."""
        return type(self.observer).__name__

    def _retry_lost(self) -> None:
        for root in sorted(self.lost):
            watch = self.watches.pop(root, None)
            if watch is not None:
                try:
                    self.observer.unschedule(watch)
                except KeyError:
                    pass
            if os.path.isdir(root) and self._schedule(root):
                log.info("watching %s again", root)
                self.on_tree(root, "watch restored")  # before it counts as watched again
                self.lost.discard(root)

    def _check_emitters(self) -> None:
        """An observer thread that ended (its root removed, or an error in it) is a lost watch."""
        current = {id(w): r for r, w in self.watches.items()}
        for emitter in list(self.observer.emitters):
            root = current.get(id(emitter.watch))
            if root is not None and root not in self.lost and not emitter.is_alive():
                self._lose(root, "the observer stopped watching it")

    def _events_lost(self, path: str, what: str) -> None:
        """Called from an emitter's thread when the platform said events were lost."""
        root = self._root_of(os.path.abspath(path)) or path
        self.overflows += 1
        self._trouble(f"{what}: events lost under {root}, rescanned")
        self.on_tree(root, "overflow")

    # -- events ------------------------------------------------------------------------------

    def landed(self, path: str, *, settle: bool) -> None:
        """A file to scan: now (closed after writing, moved in) or once it settled."""
        if self.excluded(path) or self._root_of(path) is None:
            return
        with self._lock:
            if settle:
                self.pending[path] = (time.monotonic(), _identity(path))
            else:
                self.pending.pop(path, None)
                self.ready.append(path)
        self._wake.set()

    def gone(self, path: str) -> None:
        """A file deleted or moved away: nothing to scan."""
        with self._lock:
            self.pending.pop(path, None)

    def folder(self, path: str, why: str) -> None:
        """A folder that appeared (made or moved in): scanned as a tree."""
        if not self.excluded(path) and self._root_of(path) is not None:
            self.on_tree(path, why)

    def folder_gone(self, path: str) -> None:
        if path in self.roots:
            self._lose(path, "removed or unmounted")

    def _due(self) -> tuple[list[str], float]:
        """Files to scan now, and how long until the next pending one may be."""
        now = time.monotonic()
        wait = READ_MS / 1000
        with self._lock:
            files, self.ready = self.ready, []
            for path, (at, ident) in list(self.pending.items()):
                left = at + SETTLE_SECONDS - now
                if left > 0:
                    wait = min(wait, left)
                    continue
                current = _identity(path)
                if current is None:
                    del self.pending[path]  # gone before it settled
                elif current != ident:
                    self.pending[path] = (now, current)  # still being written
                    wait = min(wait, SETTLE_SECONDS)
                else:
                    del self.pending[path]
                    files.append(path)
        return files, wait

    def run(self, stop: threading.Event) -> None:
        """Hand over settled files until `stop` is set."""
        last_retry = time.monotonic()
        while not stop.is_set():
            files, wait = self._due()
            if files:
                self.on_files(files)
            self._check_emitters()
            if self.lost and time.monotonic() - last_retry > RETRY_SECONDS:
                last_retry = time.monotonic()
                self._retry_lost()
            self._wake.wait(wait)
            self._wake.clear()

    def close(self) -> None:
        """Stop the observer and its threads."""
        self.observer.stop()
        if self.observer.is_alive():
            self.observer.join(timeout=10)


class PollingWatcher(ObserverWatcher):
    """The same through watchdog's polling observer (any platform and file system)."""

    polling = True


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns)


class _Handler(FileSystemEventHandler):
    """watchdog's events, mapped (see the module's documentation)."""

    def __init__(self, watcher: ObserverWatcher) -> None:
        super().__init__()
        self.watcher = watcher

    def dispatch(self, event: Any) -> None:
        w = self.watcher
        kind = event.event_type
        src = os.fsdecode(event.src_path)
        if event.is_directory:
            if kind == "created":
                w.folder(src, "new folder")
            elif kind == "moved":
                w.folder(os.fsdecode(event.dest_path), "folder moved in")
            elif kind == "deleted":
                w.folder_gone(src)
            return
        if kind == "closed":
            w.landed(src, settle=False)
        elif kind in ("created", "modified"):
            w.landed(src, settle=True)
        elif kind == "moved":
            w.gone(src)
            w.landed(os.fsdecode(event.dest_path), settle=False)
        elif kind == "deleted":
            w.gone(src)


def _observer(polling: bool, on_lost: Callable[[str, str], None]) -> Any:
    """watchdog's observer for this platform, with this module's emitters where watchdog's keep
    the platform's word that events were lost to themselves."""
    if polling:
        from watchdog.observers.polling import PollingObserver

        return PollingObserver(timeout=POLL_SECONDS)
    if sys.platform == "darwin":
        return _fsevents_observer(on_lost)
    if sys.platform == "win32":
        return _windows_observer(on_lost)
    if sys.platform.startswith("linux"):
        return _inotify_observer(on_lost)
    from watchdog.observers import Observer

    return Observer()


def _inotify_observer(on_lost: Callable[[str, str], None]) -> Any:
    """watchdog's inotify observer; its watch group's `on_queue_overflow` (called when the kernel
    reports IN_Q_OVERFLOW: watchdog rebuilds its watches and logs it, no event) also marks the
    root dirty."""
    from watchdog.observers.inotify import InotifyEmitter, InotifyObserver

    class Emitter(InotifyEmitter):  # type: ignore[misc]
        def on_thread_start(self) -> None:
            super().on_thread_start()
            group = self._inotify
            if group is None:
                return
            rebuild = group.on_queue_overflow
            root = os.fsdecode(self.watch.path)

            def overflowed() -> None:
                rebuild()
                on_lost(root, "inotify queue overflow")

            group.on_queue_overflow = overflowed  # type: ignore[method-assign]

    class Observer(InotifyObserver):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self._emitter_class = Emitter

    return Observer()


def _fsevents_observer(on_lost: Callable[[str, str], None]) -> Any:  # pragma: no cover - macOS
    from watchdog.observers.fsevents import FSEventsEmitter, FSEventsObserver

    class Emitter(FSEventsEmitter):  # type: ignore[misc]
        def queue_events(self, timeout: float, events: list[Any]) -> None:  # type: ignore[override]
            if dropped_events(events):
                on_lost(os.fsdecode(self.watch.path), "FSEvents dropped events")
            super().queue_events(timeout, events)

    class Observer(FSEventsObserver):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self._emitter_class = Emitter

    return Observer()


class OverflowQueue(queue.Queue):  # type: ignore[type-arg]
    """The queue watchdog's ReadDirectoryChangesW reader puts each read's bytes on (alone, or
    with a flag): the first empty one says the reader started; any later empty one is a read
    that returned no bytes, which is how Windows says its buffer overflowed."""

    def __init__(self, on_overflow: Callable[[], None]) -> None:
        super().__init__()
        self.on_overflow = on_overflow
        self.started = False

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        data = item[0] if isinstance(item, tuple) else item
        if not data:
            if self.started:
                self.on_overflow()
            self.started = True
        super().put(item, block, timeout)


def _windows_observer(on_lost: Callable[[str, str], None]) -> Any:  # pragma: no cover - Windows
    from watchdog.observers import read_directory_changes as rdc
    from watchdog.observers.winapi import DirectoryChangeReader

    class Reader(DirectoryChangeReader):  # type: ignore[misc]
        def __init__(self, path: str, *, recursive: bool) -> None:
            super().__init__(path, recursive=recursive)
            self._buf_queue = OverflowQueue(
                lambda: on_lost(path, "ReadDirectoryChangesW overflowed")
            )

    class Emitter(rdc.WindowsApiEmitter):  # type: ignore[misc]
        def on_thread_start(self) -> None:
            with self._lock:
                reader = Reader(self.watch.path, recursive=self.watch.is_recursive)
                self._reader = reader
            reader.start()

    class Observer(rdc.WindowsApiObserver):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self._emitter_class = Emitter

    return Observer()
