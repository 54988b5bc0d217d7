"""The watch backends on their own (no server, no scanner): inotify (inotify_simple), watchdog's
native observer (inotify on this machine) and watchdog's polling observer, each on a real folder
with real threads: files closed after writing, files and folders moved in, new folders, a root
removed and back; the backend choice; how lost events are recognised on Windows and macOS."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from support.agent import wait_for

from vigil.agent import config, observer, watch
from vigil.agent.config import ConfigError
from vigil.agent.observer import OverflowQueue, dropped_events
from vigil.agent.watch import Watching, choose, open_watcher
from vigil.errors import VigilError

BACKENDS = ["inotify", "watchdog", "polling"]


class Seen:
    """What a watcher handed over: files to scan and trees to scan (with why)."""

    def __init__(self) -> None:
        self.files: list[str] = []
        self.trees: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def on_files(self, paths: list[str]) -> None:
        with self.lock:
            self.files.extend(paths)

    def on_tree(self, root: str, why: str) -> None:
        with self.lock:
            self.trees.append((root, why))

    def covered(self, path: Path) -> bool:
        """The file was handed over, or a tree holding it was."""
        p = str(path)
        with self.lock:
            return p in self.files or any(
                p.startswith(t.rstrip("/") + "/") for t, why in self.trees if why != "catch-up"
            )


@pytest.fixture(params=BACKENDS)
def watching(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Watching, Seen]]:
    root = tmp_path / "root"
    root.mkdir()
    (root / "existing").mkdir()
    seen = Seen()
    w = open_watcher(
        request.param,
        [str(root)],
        config.exclusion(["*.part"]),
        seen.on_files,
        seen.on_tree,
    )
    w.start()
    stop = threading.Event()
    t = threading.Thread(target=w.run, args=(stop,), daemon=True)
    t.start()
    try:
        yield w, seen
    finally:
        stop.set()
        t.join(timeout=30)
        w.close()


def test_files_written_moved_in_and_in_new_folders(
    watching: tuple[Watching, Seen], tmp_path: Path
) -> None:
    """A file written in two parts then closed, in an existing folder; a file renamed into the
    root from outside it; a folder made with a file in it; a folder moved in with a file in it:
    each is handed over. An excluded name is not."""
    w, seen = watching
    root = Path(w.roots[0])
    written = root / "existing" / "photo.jpg"
    with open(written, "wb") as f:
        f.write(b"x" * 1000)
        f.flush()
        f.write(b"y" * 1000)
    outside = tmp_path / "outside.jpg"
    outside.write_bytes(b"moved in")
    moved = root / "moved.jpg"
    os.rename(outside, moved)
    nested = root / "new" / "deeper" / "n.jpg"
    nested.parent.mkdir(parents=True)
    nested.write_bytes(b"nested")
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "inside.jpg").write_bytes(b"inside")
    os.rename(folder, root / "folder")
    (root / "download.part").write_bytes(b"partial")
    for path in (written, moved, nested, root / "folder" / "inside.jpg"):
        wait_for(f"{path.name} handed over", lambda p=path: seen.covered(p), seconds=60)
    assert str(root / "download.part") not in seen.files
    assert w.health().healthy


def test_a_removed_root_is_lost_then_watched_again(
    watching: tuple[Watching, Seen], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A root removed is a lost watch (unhealthy, said in the errors); made again, it is watched
    again and rescanned, and files landing in it are handed over."""
    monkeypatch.setattr(watch, "RETRY_SECONDS", 0.5)
    monkeypatch.setattr(observer, "RETRY_SECONDS", 0.5)
    w, seen = watching
    root = Path(w.roots[0])
    (root / "existing").rmdir()
    root.rmdir()
    wait_for("the lost root in the health", lambda: not w.health().healthy, seconds=60)
    assert any("watch lost" in e for e in w.health().errors)
    root.mkdir()
    wait_for("the root watched again", lambda: w.health().healthy, seconds=60)
    assert (str(root), "watch restored") in seen.trees
    again = root / "again.jpg"
    again.write_bytes(b"again")
    wait_for("a file in the restored root", lambda: str(again) in seen.files, seconds=60)


def test_a_file_still_being_written_waits_until_it_settles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """watchdog reports no close on Windows and macOS, nor when polling: a file created or
    modified is handed over only once its size and time stopped changing since its last event."""
    monkeypatch.setattr(observer, "SETTLE_SECONDS", 0.0)
    seen = Seen()
    w = observer.PollingWatcher([str(tmp_path)], lambda p: False, seen.on_files, seen.on_tree)
    path = tmp_path / "slow.bin"
    path.write_bytes(b"z" * 100)
    w.landed(str(path), settle=True)
    with open(path, "ab") as f:
        f.write(b"z" * 100)  # written again after its last event, before it was looked at
    assert w._due()[0] == []  # changed since: it waits another settle time
    assert w._due()[0] == [str(path)]  # unchanged since the last look: handed over
    assert w._due()[0] == []
    w.landed(str(path), settle=True)
    path.unlink()
    assert w._due()[0] == []  # gone before it settled: nothing to scan
    w.landed(str(path), settle=False)  # a close or a move: at once, settling or not
    assert w._due()[0] == [str(path)]


def test_backend_choice() -> None:
    assert choose("auto", "linux") == "inotify"
    assert choose("auto", "darwin") == "watchdog"
    assert choose("auto", "win32") == "watchdog"
    assert choose("polling", "linux") == "polling"
    with pytest.raises(VigilError, match="Linux only"):
        choose("inotify", "darwin")


def test_watch_backend_in_agent_toml(tmp_path: Path) -> None:
    (tmp_path / "agent.toml").write_text('watch_backend = "polling"\n')
    assert config.load(tmp_path).watch_backend == "polling"
    (tmp_path / "agent.toml").write_text('watch_backend = "fanotify"\n')
    with pytest.raises(ConfigError, match="watch_backend: expected one of auto, inotify"):
        config.load(tmp_path)


def test_lost_events_on_macos_and_windows_are_recognised() -> None:
    """What this module's FSEvents and ReadDirectoryChangesW emitters look at (the observers
    themselves cannot run here): FSEvents' must-scan-subdirs and dropped flags; an empty read
    after the reader's start marker, in either form watchdog's reader queues it."""
    plain = SimpleNamespace(must_scan_subdirs=False, is_user_dropped=False, is_kernel_dropped=False)
    assert not dropped_events([plain, plain])
    for flag in ("must_scan_subdirs", "is_user_dropped", "is_kernel_dropped"):
        assert dropped_events([plain, SimpleNamespace(**{**vars(plain), flag: True})])
    for form in (lambda b: b, lambda b: (b, False)):
        lost: list[int] = []
        q = OverflowQueue(lambda lost=lost: lost.append(1))  # type: ignore[misc]
        q.put(form(b""))  # the reader started
        q.put(form(b"\x00" * 16))
        assert lost == []
        q.put(form(b""))  # a read that returned nothing: the buffer overflowed
        assert lost == [1]
        assert q.qsize() == 3  # every item still reaches watchdog's emitter


def test_a_missing_package_is_named_before_the_daemon_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`vigil agent run` checks the packages its configuration needs first: the watch
    backend's (inotify_simple or watchdog), psutil when scans are scheduled."""
    import importlib.util

    from vigil.agent.cli import _require_packages

    real = importlib.util.find_spec
    missing: set[str] = set()
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name in missing else real(name)
    )
    cfg = config.AgentConfig(watch_backend="polling", schedule_roots=["/srv"])
    _require_packages(cfg)
    missing.add("watchdog")
    with pytest.raises(VigilError, match="the polling watch backend needs watchdog"):
        _require_packages(cfg)
    missing.clear()
    missing.add("psutil")
    with pytest.raises(VigilError, match="a scheduled scan needs psutil"):
        _require_packages(cfg)
    cfg.schedule_roots = []
    _require_packages(cfg)
