"""Listing the roots of a cluster scan, in parts a worker each lists on its own.

A root is a local path (on storage every worker mounts at the same place, a `file://` URL too) or
an fsspec URL (`s3://bucket/prefix`, `gs://…`, `az://…`, `hdfs://…`). The client looks one level
down (one delimiter listing of a prefix, one `listdir` of a directory) and makes a part of each
sub-prefix or subdirectory; the workers list the parts in parallel (an object store pages through
a prefix at some thousands of keys a second per request stream, so parallel prefixes are what
makes millions of keys listable). Files met at the first level form a part of their own.

Every file listed is a `Listed`: where it is, its size, and its identity for the cluster cache
(device/inode/size/times on a file system; version or ETag and size in an object store).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from vigil.scan.results import ScanError, Skipped
from vigil.scan.walk import _walk_root, walk

# Keys of an object's listing that identify a version of its content, best first.
_IDENTITY_KEYS = ("VersionId", "version_id", "generation", "ETag", "etag", "md5Hash", "mtime")
# Directories a subtree's part is told other parts walk (links into them are not followed twice).
_SIBLINGS_PASSED = 2000


@dataclass(frozen=True, slots=True)
class Listed:
    """One file to scan: `url` (a local path, or a URL with its protocol), size, identity."""

    url: str
    size: int
    identity: str

    def __reduce__(self) -> tuple[type[Listed], tuple[str, int, str]]:
        # Pickled as its three values: shards and listings carry thousands, and a frozen
        # dataclass's own state protocol (dataclasses.fields per object) was a tenth of a
        # worker's time on small files.
        return Listed, (self.url, self.size, self.identity)


@dataclass(frozen=True, slots=True)
class Part:
    """Something a worker lists: a local subtree (with the directories walked elsewhere, so a
    symlink into them is not walked twice), a file-store prefix, or files already known."""

    kind: str  # "tree" | "prefix" | "files"
    root: str
    protocol: str = "file"
    storage_options: dict[str, Any] = field(default_factory=dict)
    # "tree": (dev, ino) -> path of directories other parts walk.
    walked_elsewhere: tuple[tuple[tuple[int, int], str], ...] = ()
    # "files": listed already by the client.
    files: tuple[Listed, ...] = ()


@dataclass
class Listing:
    """What one part gave: files to scan, and errors and skipped entries as a walk gives them."""

    files: list[Listed] = field(default_factory=list)
    problems: list[ScanError] = field(default_factory=list)


def is_url(root: str) -> bool:
    """True for a URL with a protocol other than a local file."""
    return "://" in root and not root.startswith("file://")


def local_path(root: str) -> str:
    """A local root as a plain absolute path (`file://` removed)."""
    if root.startswith("file://"):
        root = root[len("file://") :]
    return os.path.abspath(root)


def file_identity(st: os.stat_result) -> str:
    """A local file's identity: the same one the local fingerprint cache keys on."""
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"


def object_identity(info: dict[str, Any]) -> str:
    """An object's identity from its listing: its version (or ETag) and size."""
    for key in _IDENTITY_KEYS:
        value = info.get(key)
        if value:
            return f"{key}={str(value).strip(chr(34))}:{info.get('size', 0)}"
    return f"size={info.get('size', 0)}"  # no version known: never cached as unchanged


def plan(roots: list[str], *, follow_symlinks: bool = True) -> tuple[list[Part], list[ScanError]]:
    """The parts to list for these roots, and the problems met at the first level."""
    parts: list[Part] = []
    problems: list[ScanError] = []
    for root in roots:
        if is_url(root):
            _plan_url(root, parts, problems)
        else:
            _plan_local(local_path(root), follow_symlinks, parts, problems)
    return parts, problems


def _plan_local(root: str, follow: bool, parts: list[Part], problems: list[ScanError]) -> None:
    try:
        st = os.stat(root) if follow else os.lstat(root)
    except OSError:
        problems.extend(p for p in walk([root], follow_symlinks=follow) if isinstance(p, ScanError))
        return
    if not stat.S_ISDIR(st.st_mode):
        files: list[Listed] = []
        for found in walk([root], follow_symlinks=follow):
            if isinstance(found, ScanError):
                problems.append(found)
            else:
                files.append(Listed(found[0], found[1].st_size, file_identity(found[1])))
        if files:
            parts.append(Part("files", root, files=tuple(files)))
        return
    try:
        names = sorted(os.listdir(root))
    except OSError:
        problems.extend(p for p in walk([root], follow_symlinks=follow) if isinstance(p, ScanError))
        return
    # Subdirectories (followed links to directories too) become parts; the rest is walked here.
    subdirs: list[tuple[str, tuple[int, int]]] = []
    rest: list[str] = []
    for name in names:
        path = os.path.join(root, name)
        try:
            sub = os.stat(path) if follow else os.lstat(path)
        except OSError:
            rest.append(path)
            continue
        if stat.S_ISDIR(sub.st_mode) and not (not follow and os.path.islink(path)):
            subdirs.append((path, (sub.st_dev, sub.st_ino)))
        else:
            rest.append(path)
    files = []
    for found in walk(rest, follow_symlinks=follow):
        if isinstance(found, ScanError):
            problems.append(found)
        else:
            files.append(Listed(found[0], found[1].st_size, file_identity(found[1])))
    if files:
        parts.append(Part("files", root, files=tuple(files)))
    seen: dict[tuple[int, int], str] = {(st.st_dev, st.st_ino): root}
    for path, key in subdirs:
        if key in seen:  # a link at the first level to the root or to a sibling
            reason = "symlink-loop" if seen[key] == root else "already-walked"
            problems.append(Skipped(path, None, reason, f"the same directory as {seen[key]}"))
            continue
        seen[key] = path
    for path, key in subdirs:
        if seen.get(key) != path:
            continue
        # Past a few thousand siblings, only the root is passed (each part would carry them all).
        pool = seen if len(seen) <= _SIBLINGS_PASSED else {(st.st_dev, st.st_ino): root}
        others = tuple((k, p) for k, p in pool.items() if p != path)
        parts.append(Part("tree", path, walked_elsewhere=others))


def _plan_url(root: str, parts: list[Part], problems: list[ScanError]) -> None:
    from fsspec.core import url_to_fs

    fs, path = url_to_fs(root)
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    options = dict(fs.storage_options)
    try:
        if fs.isfile(path):
            info = fs.info(path)
            one = Listed(
                _unstrip(fs, protocol, info["name"]), int(info["size"]), object_identity(info)
            )
            parts.append(Part("files", root, protocol, options, files=(one,)))
            return
        entries = fs.ls(path, detail=True)
    except FileNotFoundError:
        problems.append(ScanError(root, None, "not-found", "no such object or prefix"))
        return
    except PermissionError as exc:
        problems.append(ScanError(root, None, "permission", f"permission denied: {exc}"))
        return
    except OSError as exc:
        problems.append(ScanError(root, None, "unreadable", f"cannot list: {exc}"))
        return
    files = []
    for info in sorted(entries, key=lambda i: i["name"]):
        if info.get("type") == "directory":
            parts.append(Part("prefix", info["name"], protocol, options))
        elif info["name"].rstrip("/") != path.rstrip("/"):
            name = _unstrip(fs, protocol, info["name"])
            files.append(Listed(name, int(info.get("size") or 0), object_identity(info)))
    if files:
        parts.append(Part("files", root, protocol, options, files=tuple(files)))


def _unstrip(fs: Any, protocol: str, name: str) -> str:
    """A listed name as the URL matches and errors call it."""
    return fs.unstrip_protocol(name) if hasattr(fs, "unstrip_protocol") else f"{protocol}://{name}"


def list_part(part: Part, follow_symlinks: bool = True) -> Listing:
    """A worker's task: every file in one part, in a stable (sorted) order."""
    out = Listing()
    if part.kind == "files":
        out.files.extend(part.files)
    elif part.kind == "tree":
        walked = dict(part.walked_elsewhere)
        for found in _walk_root(part.root, follow_symlinks, walked):
            if isinstance(found, ScanError):
                out.problems.append(found)
            else:
                out.files.append(Listed(found[0], found[1].st_size, file_identity(found[1])))
    else:
        out.files.extend(_find(part))
    return out


def list_parts(parts: Sequence[Part], follow_symlinks: bool = True) -> list[Listing]:
    """A worker's task: several parts listed one after the other, a part that fails as one
    error line for its root."""
    out = []
    for part in parts:
        try:
            out.append(list_part(part, follow_symlinks))
        except Exception as exc:  # noqa: BLE001 - reported as the part's error, never lost
            out.append(Listing([], [cannot_list(part, exc)]))
    return out


def cannot_list(part: Part, exc: BaseException) -> ScanError:
    """The error line of a part that could not be listed."""
    return ScanError(part.root, None, "unreadable", f"cannot list: {exc}")


def _find(part: Part) -> Iterator[Listed]:
    import fsspec

    fs = fsspec.filesystem(part.protocol, **part.storage_options)
    found = fs.find(part.root, detail=True)
    for name in sorted(found):
        info = found[name]
        if info.get("type") == "directory":
            continue
        yield Listed(
            _unstrip(fs, part.protocol, name), int(info.get("size") or 0), object_identity(info)
        )
