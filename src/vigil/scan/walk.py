"""Walk files and directory trees: every regular file once, every problem one ScanError, every
entry with no content to check one Skipped."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator, Sequence

from vigil.scan.results import ScanError, Skipped

S_ISREG = stat.S_ISREG

__all__ = ["walk"]


def walk(
    paths: Sequence[str], *, follow_symlinks: bool = True
) -> Iterator[tuple[str, os.stat_result] | ScanError]:
    """Every regular file under `paths` with its stat, in a stable (sorted) order.

    Errors (content that could not be checked) are ScanErrors: missing paths 'not-found',
    unreadable directories 'permission', entries gone while walked 'vanished'. What has no
    content to check is Skipped (a ScanError too, see there): fifos, sockets and devices
    'not-regular' (never opened: reading a fifo would block), dangling links 'broken-symlink', a
    directory that leads back to one of its own ancestors or links that point at each other
    'symlink-loop', a directory already walked by another path (a symlink into another part of
    the tree, an overlapping root) 'already-walked', since everything in it was already yielded.
    Symlinks are followed by default; with follow_symlinks=False every symlink is skipped as
    'symlink-skipped'.
    """
    walked: dict[tuple[int, int], str] = {}
    for root in paths:
        yield from _walk_root(root, follow_symlinks, walked)


def _walk_root(
    root: str, follow: bool, walked: dict[tuple[int, int], str]
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
        yield _file_or_error(root, lst, found)
        return

    # Depth first without recursion (trees can be deeper than Python's stack): one frame per
    # open directory, holding its sorted remaining entries; `ancestors` are the frames' keys.
    key = (found.st_dev, found.st_ino)
    if key in walked:
        yield _already_walked(root, walked[key])
        return
    listing = _list(root)
    if isinstance(listing, ScanError):
        yield listing
        return
    walked[key] = root
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
            yield _file_or_error(path, lst, found)
            continue
        sub = (found.st_dev, found.st_ino)
        if sub in ancestors:
            yield Skipped(
                path,
                None,
                "symlink-loop",
                f"leads back to {ancestors[sub]}, a directory it is inside; not walked again",
            )
            continue
        if sub in walked:
            yield _already_walked(path, walked[sub])
            continue
        listing = _list(path)
        if isinstance(listing, ScanError):
            yield listing
            continue
        walked[sub] = path
        ancestors[sub] = path
        stack.append((sub, iter(listing)))


def _resolve(path: str, lst: os.stat_result, follow: bool) -> os.stat_result | ScanError:
    """What `path` (lstat `lst`) stands for: itself, or a symlink's target."""
    if not stat.S_ISLNK(lst.st_mode):
        return lst
    if not follow:
        return Skipped(path, None, "symlink-skipped", "symbolic link, not followed")
    try:
        return os.stat(path)
    except FileNotFoundError:
        target = _readlink(path)
        message = f"points to {target!r}, which does not exist"
        return Skipped(path, None, "broken-symlink", message)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return Skipped(
                path, None, "symlink-loop", "symbolic links point at each other in a loop"
            )
        return _os_error(path, exc)


def _file_or_error(
    path: str, lst: os.stat_result, st: os.stat_result
) -> tuple[str, os.stat_result] | ScanError:
    """`path` to read, or skipped; `lst` is its lstat, `st` what it stands for."""
    if stat.S_ISREG(st.st_mode):
        return path, st
    what = f"a {_kind(st.st_mode)}"
    if stat.S_ISLNK(lst.st_mode):  # a masked systemd unit: a link to /dev/null
        what = f"a symbolic link to {what} ({_readlink(path)})"
    return Skipped(path, None, "not-regular", f"{what}, not a regular file; not read")


def _already_walked(path: str, first: str) -> Skipped:
    # Everything in it was yielded under `first`: walking it again would only repeat that.
    message = f"the same directory as {first}, walked already"
    return Skipped(path, None, "already-walked", message)


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
