"""Walk files and directory trees: every regular file once, every problem one ScanError."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator, Sequence

from vigil.scan.results import ScanError

S_ISREG = stat.S_ISREG

__all__ = ["walk"]


def walk(
    paths: Sequence[str], *, follow_symlinks: bool = True
) -> Iterator[tuple[str, os.stat_result] | ScanError]:
    """Every regular file under `paths` with its stat, in a stable (sorted) order.

    Symlinks are followed by default. A directory that leads back to one of its own ancestors
    is reported as 'symlink-loop'; a directory already walked by another path (a symlink into
    another part of the tree, an overlapping root) is not walked again and not reported, since
    everything in it was already yielded. Dangling links are 'broken-symlink', missing paths
    'not-found', unreadable directories 'permission', fifos, sockets and devices 'not-regular'
    (never opened: reading a fifo would block); with follow_symlinks=False every symlink is
    reported as 'symlink-skipped'.
    """
    walked: set[tuple[int, int]] = set()
    for root in paths:
        yield from _walk_root(root, follow_symlinks, walked)


def _walk_root(
    root: str, follow: bool, walked: set[tuple[int, int]]
) -> Iterator[tuple[str, os.stat_result] | ScanError]:
    try:
        lst = os.lstat(root)
    except FileNotFoundError:
        yield ScanError(root, None, "not-found", "no such file or directory")
        return
    except OSError as exc:
        yield _os_error(root, exc)
        return
    found = _resolve(root, lst, follow)
    if isinstance(found, ScanError):
        yield found
        return
    if not stat.S_ISDIR(found.st_mode):
        yield _file_or_error(root, found)
        return

    # Depth first without recursion (trees can be deeper than Python's stack): one frame per
    # open directory, holding its sorted remaining entries; `ancestors` are the frames' keys.
    key = (found.st_dev, found.st_ino)
    if key in walked:
        return
    listing = _list(root)
    if isinstance(listing, ScanError):
        yield listing
        return
    walked.add(key)
    stack: list[tuple[tuple[int, int], Iterator[str]]] = [(key, iter(listing))]
    ancestors = {key: root}
    while stack:
        key, names = stack[-1]
        path = next(names, None)
        if path is None:
            stack.pop()
            del ancestors[key]
            continue
        try:
            lst = os.lstat(path)
        except FileNotFoundError:
            yield ScanError(path, None, "vanished", "disappeared while its directory was walked")
            continue
        except OSError as exc:
            yield _os_error(path, exc)
            continue
        if S_ISREG(lst.st_mode):  # the common case, without the calls below
            yield path, lst
            continue
        found = _resolve(path, lst, follow)
        if isinstance(found, ScanError):
            yield found
            continue
        if not stat.S_ISDIR(found.st_mode):
            yield _file_or_error(path, found)
            continue
        sub = (found.st_dev, found.st_ino)
        if sub in ancestors:
            yield ScanError(
                path,
                None,
                "symlink-loop",
                f"leads back to {ancestors[sub]}, a directory it is inside; not walked again",
            )
            continue
        if sub in walked:
            continue  # reached by another path, everything in it was already yielded
        listing = _list(path)
        if isinstance(listing, ScanError):
            yield listing
            continue
        walked.add(sub)
        ancestors[sub] = path
        stack.append((sub, iter(listing)))


def _resolve(path: str, lst: os.stat_result, follow: bool) -> os.stat_result | ScanError:
    """What `path` (lstat `lst`) stands for: itself, or a symlink's target."""
    if not stat.S_ISLNK(lst.st_mode):
        return lst
    if not follow:
        return ScanError(path, None, "symlink-skipped", "symbolic link, not followed")
    try:
        return os.stat(path)
    except FileNotFoundError:
        target = _readlink(path)
        message = f"points to {target!r}, which does not exist"
        return ScanError(path, None, "broken-symlink", message)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return ScanError(
                path, None, "symlink-loop", "symbolic links point at each other in a loop"
            )
        return _os_error(path, exc)


def _file_or_error(path: str, st: os.stat_result) -> tuple[str, os.stat_result] | ScanError:
    if stat.S_ISREG(st.st_mode):
        return path, st
    message = f"a {_kind(st.st_mode)}, not a regular file; not read"
    return ScanError(path, None, "not-regular", message)


def _list(path: str) -> list[str] | ScanError:
    """The directory's entries as paths, sorted by name."""
    try:
        names = os.listdir(path)
    except FileNotFoundError:
        return ScanError(path, None, "vanished", "directory disappeared before it was listed")
    except OSError as exc:
        return _os_error(path, exc)
    names.sort()
    prefix = path if path.endswith(os.sep) else path + os.sep
    return [prefix + name for name in names]


def _os_error(path: str, exc: OSError) -> ScanError:
    if isinstance(exc, PermissionError):
        return ScanError(path, None, "permission", f"permission denied: {exc.strerror}")
    return ScanError(path, None, "unreadable", f"cannot read: {exc.strerror or exc}")


def _readlink(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return "?"


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    return "special file"
