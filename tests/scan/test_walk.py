"""walk: every regular file once, in a stable order; every problem one ScanError; every entry with
no content to check one Skipped."""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

import pytest

from vigil.scan import walk as walk_module
from vigil.scan.results import ScanError, Skipped
from vigil.scan.walk import walk

Errors = list[tuple[str, str]]


def walked(*paths: Path | str, follow_symlinks: bool = True) -> tuple[list[str], Errors, Errors]:
    """(files, errors, skipped) of a walk, errors and skipped as (path, reason)."""
    files: list[str] = []
    errs: Errors = []
    skips: Errors = []
    for x in walk([str(p) for p in paths], follow_symlinks=follow_symlinks):
        if isinstance(x, ScanError):
            assert x.member is None and x.message
            (skips if isinstance(x, Skipped) else errs).append((x.path, x.reason))
        else:
            path, st = x
            assert os.path.samestat(st, os.stat(path))
            files.append(path)
    return files, errs, skips


def run(*paths: Path | str, follow_symlinks: bool = True) -> tuple[list[str], Errors]:
    """(files, errors) of a walk that skips nothing."""
    files, errs, skips = walked(*paths, follow_symlinks=follow_symlinks)
    assert skips == []
    return files, errs


def skipped(*paths: Path | str, follow_symlinks: bool = True) -> tuple[list[str], Errors]:
    """(files, skipped) of a walk without errors."""
    files, errs, skips = walked(*paths, follow_symlinks=follow_symlinks)
    assert errs == []
    return files, skips


def touch(p: Path, data: bytes = b"x") -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def test_files_sorted_and_recursive(tmp_path: Path) -> None:
    for rel in ["b.txt", "a/z.txt", "a/b/c.txt", "c/d.txt", "A.txt"]:
        touch(tmp_path / rel)
    files, errs = run(tmp_path)
    assert errs == []
    rels = [os.path.relpath(f, tmp_path) for f in files]
    assert rels == ["A.txt", "a/b/c.txt", "a/z.txt", "b.txt", "c/d.txt"]


def test_a_file_given_directly_and_several_roots(tmp_path: Path) -> None:
    f = touch(tmp_path / "one.bin")
    touch(tmp_path / "d" / "two.bin")
    files, errs = run(f, tmp_path / "d")
    assert files == [str(f), str(tmp_path / "d" / "two.bin")]
    assert errs == []


def test_not_found(tmp_path: Path) -> None:
    files, errs = run(tmp_path / "nope")
    assert files == [] and errs == [(str(tmp_path / "nope"), "not-found")]


def test_symlink_to_file_is_followed(tmp_path: Path) -> None:
    target = touch(tmp_path / "real.txt")
    (tmp_path / "link.txt").symlink_to(target)
    files, errs = run(tmp_path)
    assert files == [str(tmp_path / "link.txt"), str(target)]
    assert errs == []


def test_broken_symlink_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "dangling").symlink_to(tmp_path / "missing")
    files, skips = skipped(tmp_path)
    assert files == [] and skips == [(str(tmp_path / "dangling"), "broken-symlink")]
    # given directly, too
    assert skipped(tmp_path / "dangling")[1] == [(str(tmp_path / "dangling"), "broken-symlink")]


def test_symlink_to_dev_null_is_skipped(tmp_path: Path) -> None:
    # A masked systemd unit: nothing behind it to read.
    (tmp_path / "masked.service").symlink_to("/dev/null")
    assert skipped(tmp_path) == ([], [(str(tmp_path / "masked.service"), "not-regular")])
    [found] = walk([str(tmp_path)])
    assert isinstance(found, Skipped)
    assert found.message == (
        "a symbolic link to a character device (/dev/null), not a regular file; not read"
    )


def test_self_referencing_symlink(tmp_path: Path) -> None:
    (tmp_path / "me").symlink_to(tmp_path / "me")
    (tmp_path / "ping").symlink_to(tmp_path / "pong")
    (tmp_path / "pong").symlink_to(tmp_path / "ping")
    files, skips = skipped(tmp_path)
    assert files == []
    assert skips == [
        (str(tmp_path / "me"), "symlink-loop"),
        (str(tmp_path / "ping"), "symlink-loop"),
        (str(tmp_path / "pong"), "symlink-loop"),
    ]


def test_symlink_to_an_ancestor_is_a_loop(tmp_path: Path) -> None:
    touch(tmp_path / "top" / "sub" / "f.txt")
    (tmp_path / "top" / "sub" / "up").symlink_to(tmp_path / "top")
    files, skips = skipped(tmp_path / "top")
    assert files == [str(tmp_path / "top" / "sub" / "f.txt")]
    assert skips == [(str(tmp_path / "top" / "sub" / "up"), "symlink-loop")]


def test_symlink_to_its_own_directory_is_a_loop(tmp_path: Path) -> None:
    # /usr/bin/X11 -> .
    touch(tmp_path / "bin" / "tool")
    (tmp_path / "bin" / "X11").symlink_to(".")
    files, skips = skipped(tmp_path)
    assert files == [str(tmp_path / "bin" / "tool")]
    assert skips == [(str(tmp_path / "bin" / "X11"), "symlink-loop")]


def test_directory_reached_twice_is_walked_once(tmp_path: Path) -> None:
    touch(tmp_path / "data" / "f.txt")
    (tmp_path / "alias").symlink_to(tmp_path / "data")
    files, skips = skipped(tmp_path, tmp_path / "data")
    assert files == [str(tmp_path / "alias" / "f.txt")]
    # Reached again inside the first root, and as the second root: skipped, said so.
    assert skips == [
        (str(tmp_path / "data"), "already-walked"),
        (str(tmp_path / "data"), "already-walked"),
    ]


def test_symlinks_not_followed(tmp_path: Path) -> None:
    touch(tmp_path / "real.txt")
    (tmp_path / "link.txt").symlink_to(tmp_path / "real.txt")
    (tmp_path / "dirlink").symlink_to(tmp_path)
    files, skips = skipped(tmp_path, follow_symlinks=False)
    assert files == [str(tmp_path / "real.txt")]
    assert skips == [
        (str(tmp_path / "dirlink"), "symlink-skipped"),
        (str(tmp_path / "link.txt"), "symlink-skipped"),
    ]


def test_fifo_is_skipped_not_opened(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    touch(tmp_path / "z.txt")
    files, skips = skipped(tmp_path)
    assert files == [str(tmp_path / "z.txt")]
    assert skips == [(str(tmp_path / "pipe"), "not-regular")]


def test_device_is_skipped() -> None:
    assert skipped("/dev/null")[1] == [("/dev/null", "not-regular")]


def test_socket_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "s"
    if len(str(path)) > 100:
        pytest.skip("temporary path too long for a unix socket")
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))
        assert skipped(tmp_path)[1] == [(str(path), "not-regular")]


def test_unreadable_directory_simulated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Root lists directories whatever their mode, so the refusal is simulated at listdir().
    touch(tmp_path / "ok" / "a.txt")
    touch(tmp_path / "locked" / "f.txt")
    real_listdir = os.listdir

    def listdir(path: str):  # type: ignore[no-untyped-def]
        if os.path.basename(path) == "locked":
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_listdir(path)

    monkeypatch.setattr(walk_module.os, "listdir", listdir)
    files, errs = run(tmp_path)
    assert files == [str(tmp_path / "ok" / "a.txt")]
    assert errs == [(str(tmp_path / "locked"), "permission")]


def test_entry_vanishing_while_walked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    touch(tmp_path / "a.txt")
    touch(tmp_path / "b.txt")
    gen = walk([str(tmp_path)])
    first = next(gen)
    assert first[0] == str(tmp_path / "a.txt")
    os.unlink(tmp_path / "b.txt")  # listed already, gone before it is looked at
    assert [(e.path, e.reason) for e in gen] == [(str(tmp_path / "b.txt"), "vanished")]


def test_deep_tree_needs_no_recursion(tmp_path: Path) -> None:
    # Deeper than Python's recursion limit would allow a recursive walk to go (path length
    # stays under PATH_MAX with one-letter names).
    rel = "/".join(["d"] * 1200)
    d = tmp_path
    for _ in range(1200):  # os.makedirs itself recurses
        d = d / "d"
        d.mkdir()
    touch(tmp_path / rel / "f")
    try:
        files, errs = run(tmp_path)
        assert errs == [] and files == [str(tmp_path / rel / "f")]
    finally:
        # pytest's clean-up (shutil.rmtree) recurses too: take the tree down here.
        (tmp_path / rel / "f").unlink()
        while d != tmp_path:
            d.rmdir()
            d = d.parent
