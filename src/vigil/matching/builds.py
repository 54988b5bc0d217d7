"""Compiled builds on disk: immutable, one directory each, a `current` pointer, and a holder.

    builds/
      current                 the id of the newest build (a one-line file, replaced atomically)
      <build id>/             every file of one build; meta.json is written last
      <build id>/.lease       shared-locked by every process that maps the build
      .compile.lock           one compile at a time

A build is never changed after it is written. Publishing one fills a new directory, then replaces
`current` with one atomic rename, so a reader sees the old build or the new one, never a mix. A
process that maps a build holds a shared lock on its `.lease` file for as long as it does; an old
build is removed only when it is not current and nobody holds that lock (on systems without
`fcntl`, only after a grace period). This is libclamav's reference-counted engine, across
processes.

`MatcherHolder` is what a long-running front keeps: `matcher()` returns the build in use, a cheap
`refresh()` (one catalog query, or one small file read) loads a newer build beside it and swaps
one reference. Calls in flight keep the build they started with.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from vigil.matching.matcher import Matcher

if TYPE_CHECKING:
    from vigil.catalog.store import Catalog

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

POINTER = "current"
LEASE = ".lease"
COMPILE_LOCK = ".compile.lock"
# Where locks cannot tell whether a build is mapped, it is kept this long after it was replaced.
GRACE_SECONDS = 3600.0
# One build loaded at a time in a process: NumPy reads each .npy header with ast.literal_eval,
# which CPython 3.11 cannot run in two threads at once ("SystemError: AST constructor recursion
# depth mismatch", seen here with two threads opening builds).
_LOADING = threading.Lock()


class Lease:
    """A shared lock on a build's `.lease` file, held while the build is mapped."""

    def __init__(self, fd: int | None) -> None:
        self._fd = fd

    def release(self) -> None:
        """Let the build be removed (also done when the lease is garbage-collected)."""
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __del__(self) -> None:
        self.release()


def _take_lease(directory: Path) -> Lease | None:
    """A shared lease on a build, or None if it is being removed (or is gone)."""
    try:
        fd = os.open(directory / LEASE, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    if fcntl is None:  # pragma: no cover - not POSIX
        return Lease(fd)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return Lease(fd)


class BuildStore:
    """A folder of immutable builds and the pointer to the current one."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # -- reading -----------------------------------------------------------------------------

    def current_id(self) -> str | None:
        """The id of the current build, or None when none was published."""
        try:
            text = (self.root / POINTER).read_text().strip()
        except OSError:
            return None
        return text or None

    def open(self, build_id: str | None = None) -> Matcher | None:
        """Map a build (by default the current one) and hold a lease on it for as long as the
        returned matcher, or any view of it, lives. None when there is no usable build."""
        for _ in range(5):
            wanted = build_id or self.current_id()
            if wanted is None:
                return None
            directory = self.root / wanted
            lease = _take_lease(directory)
            if lease is not None and not (directory / "meta.json").is_file():
                lease.release()  # removed between opening its lease and locking it
                lease = None
            if lease is None:
                if build_id is not None:
                    return None
                continue  # replaced and removed between the two reads: read `current` again
            # Held: nobody can remove the build now (removal takes the lease exclusively).
            with _LOADING:
                matcher = Matcher.load(directory)
            if matcher is None:
                lease.release()
                return None
            matcher.lease = lease
            return matcher
        return None

    # -- writing -----------------------------------------------------------------------------

    def publish(self, matcher: Matcher) -> str:
        """Write a build and make it current; the previous ones are collected when unused."""
        self.root.mkdir(parents=True, exist_ok=True)
        build_id = matcher.build_id
        final = self.root / build_id
        if not (final / "meta.json").is_file():
            tmp = self.root / f".tmp-{build_id}-{uuid.uuid4().hex[:8]}"
            tmp.mkdir()
            try:
                matcher.save(tmp)
                (tmp / LEASE).touch()
                _fsync_tree(tmp)
                shutil.rmtree(final, ignore_errors=True)  # a damaged earlier attempt
                os.rename(tmp, final)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        self._point_at(build_id)
        self.collect()
        return build_id

    def _point_at(self, build_id: str) -> None:
        tmp = self.root / f".{POINTER}.{uuid.uuid4().hex[:8]}"
        with open(tmp, "w") as f:
            f.write(build_id + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.root / POINTER)

    def collect(self) -> list[str]:
        """Remove builds that are not current and that no process maps; their ids."""
        current = self.current_id()
        removed: list[str] = []
        try:
            names = os.listdir(self.root)
        except OSError:
            return removed
        for name in names:
            path = self.root / name
            if name == current or name.startswith(".") or name == POINTER:
                if name.startswith(".tmp-") and _older_than(path, GRACE_SECONDS):
                    shutil.rmtree(path, ignore_errors=True)  # left by a killed compile
                continue
            if path.is_dir() and self._remove_if_unused(path):
                removed.append(name)
        return removed

    def _remove_if_unused(self, path: Path) -> bool:
        """Take the build's lease exclusively (nobody maps it) and, still holding it, move the
        build out of its name; then delete it. A reader that locks the lease after that finds
        no meta.json under the name and reads `current` again."""
        fd: int | None = None
        if fcntl is None:  # pragma: no cover - not POSIX
            if not _older_than(self.root / POINTER, GRACE_SECONDS):
                return False
        else:
            try:
                fd = os.open(path / LEASE, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                pass  # not a complete build
            except OSError:
                return False
            if fd is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    os.close(fd)
                    return False  # mapped by some process
        trash = self.root / f".trash-{path.name}-{uuid.uuid4().hex[:8]}"
        try:
            os.rename(path, trash)
        except OSError:
            return False
        finally:
            if fd is not None:
                os.close(fd)
        shutil.rmtree(trash, ignore_errors=True)
        return True

    def compile_lock(self) -> _FileLock:
        """An exclusive lock: one process compiles at a time, the others then use its build."""
        self.root.mkdir(parents=True, exist_ok=True)
        return _FileLock(self.root / COMPILE_LOCK)

    def for_catalog(self, catalog: Catalog) -> Matcher:
        """The current build if it is of the catalog's generation, else a new compile,
        published (two processes that find it stale compile it once)."""
        generation = catalog.generation()
        found = self.open()
        if found is not None and found.generation == generation:
            return found
        with self.compile_lock():
            found = self.open()
            if found is not None and found.generation == catalog.generation():
                return found
            matcher = Matcher.compile(catalog)
            self.publish(matcher)
        return self.open(matcher.build_id) or matcher


class _FileLock:
    """An exclusive flock on a file, as a context manager (a no-op without fcntl)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def __enter__(self) -> _FileLock:
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        if fcntl is not None:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class MatcherHolder:
    """The build a long-running front matches with, swapped for a newer one without a pause.

    `matcher()` is a plain attribute read: a caller takes the reference once per call (or per
    scan) and keeps using that build even if a newer one is swapped in meanwhile. `refresh()`
    loads the newer build beside the old one (compiling it first when the holder follows a
    catalog), then swaps the reference; the old build is unmapped when its last user is done.
    """

    def __init__(self, store: BuildStore, catalog: Catalog | None = None) -> None:
        self.store = store
        self.catalog = catalog
        self._lock = threading.Lock()
        self._current: Matcher | None = None
        self.swaps = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def matcher(self) -> Matcher:
        """The build in use (loaded or compiled on the first call)."""
        current = self._current
        if current is None:
            self.refresh()
            current = self._current
            if current is None:
                raise LookupError(f"no compiled build under {self.store.root}")
        return current

    def stale(self) -> bool:
        """Whether a newer build exists, or the catalog moved past the build in use."""
        current = self._current
        if current is None:
            return True
        if self.catalog is not None:
            return self.catalog.generation() != current.generation
        return self.store.current_id() not in (None, current.build_id)

    def refresh(self) -> bool:
        """Take a newer build if there is one; True when the build in use changed."""
        with self._lock:  # one refresh at a time; matcher() never waits for it
            if not self.stale():
                # Builds let go by calls that were in flight at the last swap go now.
                self.store.collect()
                return False
            new: Matcher | None = (
                self.store.for_catalog(self.catalog)
                if self.catalog is not None
                else self.store.open()
            )
            if new is None or (
                self._current is not None and new.build_id == self._current.build_id
            ):
                return False
            old, self._current = self._current, new
            self.swaps += 1
        del old
        _release_memory()
        self.store.collect()
        return True

    def poll(self, every: float) -> None:
        """Refresh in a background thread every `every` seconds until `close()`."""
        if self._thread is not None:
            return

        def loop() -> None:
            while not self._stop.wait(every):
                try:
                    self.refresh()
                except Exception:  # noqa: BLE001 - a failed check must not stop the checks
                    log.exception("checking for a newer build failed; the current one stays")

        self._thread = threading.Thread(target=loop, name="vigil-build-poll", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop polling and let the build go."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._current = None
        _release_memory()


def _release_memory() -> None:
    """Give the heap pages the last build freed back to the system (HMA's matchers grew
    50-80 MB per reload). A build holds no reference cycles, so it is freed when its last user
    lets go; no gc.collect() here: a full collection held the GIL 100-200 ms per swap, and
    every call in flight waited for it."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        pass


def _older_than(path: Path, seconds: float) -> bool:
    try:
        return time.time() - path.stat().st_mtime > seconds
    except OSError:
        return False


def _fsync_tree(directory: Path) -> None:
    """Flush a new build to disk before it is named, so a crash leaves it whole or absent."""
    for name in os.listdir(directory):
        path = directory / name
        if path.is_dir():
            _fsync_tree(path)
            continue
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
