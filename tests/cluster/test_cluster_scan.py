"""Cluster scans on real Dask processes give a local scan's results: the same matches (archives
and videos too), errors, exit status and exports; resumed from a checkpoint without scanning a
shard twice; complete when a worker process is killed mid-scan."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from support.cluster import FaultyFiles, Planted, json_matches, match_key, vigil

from vigil.cluster import ClusterScan
from vigil.cluster.cache import ObjectCache
from vigil.cluster.checkpoint import MANIFEST, SHARDS_DIR
from vigil.engine import Engine
from vigil.errors import VigilError
from vigil.limits import Limits
from vigil.scan.results import Match, ScanError, ScanSummary, Skipped
from vigil.scan.scanner import CollectingSink, ScanOptions

# Real processes over loopback: run in the suite's process-parallel group (scripts/test).
pytestmark = pytest.mark.e2e


def keys(matches: list[dict[str, Any]], root: Path | str) -> list[tuple[Any, ...]]:
    return sorted(match_key(m, str(root)) for m in matches)


def api_keys(matches: list[Match], root: Path) -> list[tuple[Any, ...]]:
    return keys([m.to_dict() for m in matches], root)


def errors_of(stderr: str, root: Path | str) -> list[str]:
    return sorted(
        line.replace(str(root), "ROOT")
        for line in stderr.splitlines()
        if line.startswith("vigil: error:")
    )


def test_cli_cluster_gives_the_local_scans_results(tree: Planted, tmp_path: Path) -> None:
    report, vics = tmp_path / "report.html", tmp_path / "vics.json"
    proc = vigil(
        "scan",
        "--cluster",
        "local:2",
        "--json",
        "--no-cache",
        "--shard-files",
        "5",
        "--report",
        str(report),
        "--export-vics",
        str(vics),
        str(tree.root),
        home=tree.home,
    )
    assert proc.returncode == tree.local_status, proc.stderr
    found = json_matches(proc.stdout)
    assert keys(found, tree.root) == keys(tree.local, tree.root)
    # Every kind of match is in the set compared: in archives, altered photos, videos.
    kinds = {(m["kind"], m["member"] is not None) for m in found}
    assert {("md5", True), ("pdq", False), ("vpdq", False), ("vpdq", True)} <= kinds
    assert len(found) == len({match_key(m, str(tree.root)) for m in found})  # none twice
    local = vigil("scan", "--json", "--no-cache", str(tree.root), home=tree.home)
    assert errors_of(proc.stderr, tree.root) == errors_of(local.stderr, tree.root)
    assert any("truncated.mp4" in e for e in errors_of(proc.stderr, tree.root))
    exported = json.loads(vics.read_text())
    assert "truncated.mp4" in report.read_text()
    assert exported  # the same export as a local scan writes (its own tests check its shape)


def test_checkpoint_without_cluster_is_refused(tree: Planted, tmp_path: Path) -> None:
    proc = vigil("scan", "--checkpoint", str(tmp_path / "ck"), str(tree.root), home=tree.home)
    assert proc.returncode == 2
    assert "--cluster" in proc.stderr


class _Interrupting(CollectingSink):
    """Stops the client (KeyboardInterrupt, as Ctrl-C would) after `after` matches."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.after = after

    def match(self, match: Match) -> None:
        super().match(match)
        if len(self.matches) >= self.after:
            raise KeyboardInterrupt


def _engine(tree: Planted) -> Engine:
    return Engine.open(tree.home)


def test_interrupted_scan_resumes_without_scanning_a_shard_twice(
    tree: Planted, cluster: Any, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "checkpoint"
    with _engine(tree) as engine:
        matchers = [engine.matcher()]
        first = ClusterScan(cluster, matchers, checkpoint=checkpoint, shard_files=3)
        with pytest.raises(KeyboardInterrupt):
            first.run([str(tree.root)], _Interrupting(after=4))
        done = {p.stem for p in (checkpoint / SHARDS_DIR).glob("*.json")}
        assert done, "nothing was committed before the interruption"
        second = ClusterScan(cluster, matchers, checkpoint=checkpoint, shard_files=3)
        sink = CollectingSink()
        summary = second.run([str(tree.root)], sink)
    assert not set(second.scanned) & done
    assert len(second.scanned) == len(set(second.scanned))
    assert api_keys(sink.matches, tree.root) == keys(tree.local, tree.root)
    assert summary.matches == len(tree.local)
    lines = [json.loads(x) for x in (checkpoint / MANIFEST).read_text().splitlines()]
    names = [x["shard"] for x in lines]
    assert len(names) == len(set(names)), "a shard committed twice"
    assert set(names) == done | set(second.scanned)
    # Every file counted once, from this run's shards or the first run's.
    assert summary.files == sum(1 for p in tree.root.rglob("*") if p.is_file())


def test_another_scan_cannot_reuse_a_checkpoint(
    tree: Planted, cluster: Any, tmp_path: Path, fresh_copy: Path
) -> None:
    checkpoint = tmp_path / "checkpoint"
    with _engine(tree) as engine:
        ClusterScan(cluster, [engine.matcher()], checkpoint=checkpoint).run(
            [str(tree.root / "alt")], CollectingSink()
        )
        with pytest.raises(VigilError, match="another scan"):
            ClusterScan(cluster, [engine.matcher()], checkpoint=checkpoint).run(
                [str(fresh_copy)], CollectingSink()
            )


class _Killing(CollectingSink):
    """Kills one worker process (SIGKILL) at the first progress report after a shard finished,
    while the other shards are in flight."""

    def __init__(self, client: Any) -> None:
        super().__init__()
        self.client = client
        self.killed: int | None = None

    def progress(self, summary: ScanSummary) -> None:
        if self.killed is None and summary.files > 0:
            pids = self.client.run(os.getpid)
            self.killed = sorted(pids.values())[0]
            os.kill(self.killed, signal.SIGKILL)


def test_a_killed_worker_loses_and_duplicates_nothing(
    tree: Planted, cluster: Any, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "checkpoint"
    sink = _Killing(cluster)
    with _engine(tree) as engine:
        scan = ClusterScan(cluster, [engine.matcher()], checkpoint=checkpoint, shard_files=2)
        summary = scan.run([str(tree.root)], sink)
    assert sink.killed is not None
    assert summary.errors == len([e for e in sink.errors if not isinstance(e, Skipped)])
    assert not [e for e in sink.errors if e.reason in ("crashed", "internal")], sink.errors
    assert api_keys(sink.matches, tree.root) == keys(tree.local, tree.root)
    assert summary.files == sum(1 for p in tree.root.rglob("*") if p.is_file())
    # The cluster has two workers again (the nanny started a new one), the killed one gone.
    cluster.wait_for_workers(2, timeout=120)
    assert sink.killed not in cluster.run(os.getpid).values()


def _children(client: Any) -> list[int]:
    """How many processes each worker has started (scanning processes)."""
    import psutil

    return sorted(client.run(lambda: len(psutil.Process().children())).values())


class _Watching(CollectingSink):
    """Counts the workers' child processes at the first progress report after a file."""

    def __init__(self, client: Any) -> None:
        super().__init__()
        self.client = client
        self.children: list[int] | None = None

    def progress(self, summary: ScanSummary) -> None:
        if self.children is None and summary.files > 0:
            self.children = _children(self.client)


def test_a_worker_of_one_thread_reads_files_in_its_own_process(tree: Planted, cluster: Any) -> None:
    sink = _Watching(cluster)
    with _engine(tree) as engine:
        ClusterScan(cluster, [engine.matcher()], shard_files=3).run([str(tree.root)], sink)
    assert sink.children == [0, 0]
    assert api_keys(sink.matches, tree.root) == keys(tree.local, tree.root)


@pytest.mark.parametrize(
    ("name", "reason"), [("f3-hang.bin", "item_seconds"), ("f3-crash.bin", "crashed")]
)
def test_a_file_that_hangs_or_crashes_a_worker_is_reported_for_itself(
    tree: Planted, cluster: Any, tmp_path: Path, name: str, reason: str
) -> None:
    """Read in the worker process, a file that hangs holding the GIL (past item_seconds) or
    crashes its decoder ends that process; its shard is run again in a scanning process, which
    names the file as a local scan would, and every other file is scanned once."""
    root = tmp_path / "faulty"
    root.mkdir()
    for i in range(6):
        (root / f"f{i}.bin").write_bytes(b"%d" % i * (i + 1))
    (root / name).write_bytes(b"x")
    before = set(cluster.run(os.getpid).values())
    cluster.register_plugin(FaultyFiles())
    options = ScanOptions(limits=Limits(item_seconds=2), kill_grace=0.5)
    sink = CollectingSink()
    try:
        with _engine(tree) as engine:
            scan = ClusterScan(cluster, [engine.matcher()], options, shard_files=3)
            summary = scan.run([str(root)], sink)
    finally:
        cluster.unregister_worker_plugin(FaultyFiles.name)
    assert [(Path(e.path).name, e.reason) for e in sink.errors] == [(name, reason)]
    assert summary.files == 7 and summary.items == 6 and summary.errors == 1
    assert len(scan.scanned) == len(set(scan.scanned)) == 3
    # The worker process that met it first ended on it, and was replaced.
    cluster.wait_for_workers(2, timeout=120)
    assert before - set(cluster.run(os.getpid).values())


def test_repeat_scan_of_unchanged_files_reads_nothing(
    tree: Planted, cluster: Any, tmp_path: Path, fresh_copy: Path
) -> None:
    cache = ObjectCache(tmp_path / "cache.sqlite", engine_version="test")
    try:
        with _engine(tree) as engine:
            first = ClusterScan(cluster, [engine.matcher()], cache=cache, shard_files=4)
            one = CollectingSink()
            first.run([str(fresh_copy)], one)
            again = ClusterScan(cluster, [engine.matcher()], cache=cache, shard_files=4)
            two = CollectingSink()
            summary = again.run([str(fresh_copy)], two)
            clean = summary.files - len({e.path for e in two.errors})
            assert summary.cached == clean  # every file read without error came from the cache
            assert api_keys(two.matches, fresh_copy) == api_keys(one.matches, fresh_copy)
            assert api_keys(two.matches, fresh_copy) == keys(tree.local, tree.root)
            # A changed file is read again, the rest not.
            (fresh_copy / "other" / "note-00.txt").write_text("changed\n")
            third = ClusterScan(cluster, [engine.matcher()], cache=cache, shard_files=4)
            summary = third.run([str(fresh_copy)], CollectingSink())
            assert summary.cached == clean - 1
    finally:
        cache.close()


def test_errors_and_skipped_entries_of_the_listing_are_reported(
    tree: Planted, cluster: Any, tmp_path: Path
) -> None:
    root = tmp_path / "odd"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.txt").write_text("a")
    os.symlink("missing-target", root / "sub" / "dangling")
    os.symlink("..", root / "sub" / "up")  # back to the root: not walked again
    os.mkfifo(root / "fifo")
    sink = CollectingSink()
    with _engine(tree) as engine:
        summary = ClusterScan(cluster, [engine.matcher()]).run(
            [str(root), str(tmp_path / "absent")], sink
        )
    reasons = sorted((Path(s.path).name, s.reason) for s in sink.skipped_items)
    assert ("dangling", "broken-symlink") in reasons
    assert ("fifo", "not-regular") in reasons
    assert any(name == "up" for name, _ in reasons)
    assert [(e.reason) for e in sink.errors if not isinstance(e, Skipped)] == ["not-found"]
    assert summary.files == 1 and summary.errors == 1


def test_a_scan_with_options_of_its_own_applies_them_on_the_workers(
    tree: Planted, cluster: Any
) -> None:
    from vigil.limits import Limits

    options = ScanOptions(limits=Limits(max_file_size=1000))
    sink = CollectingSink()
    with _engine(tree) as engine:
        ClusterScan(cluster, [engine.matcher()], options).run([str(tree.root / "alt")], sink)
    assert sink.errors and all(e.reason == "max_file_size" for e in sink.errors)
    assert isinstance(sink.errors[0], ScanError)


def test_daemonic_workers_are_refused_with_a_clear_error(tree: Planted, tmp_path: Path) -> None:
    """Dask's default: worker processes are daemonic, and may start no scanning process. Run in
    a process of its own, with Dask's default configuration (this one's cluster fixture changes
    it)."""
    script = tmp_path / "daemonic.py"
    script.write_text(
        textwrap.dedent(
            f"""
            from distributed import Client, LocalCluster
            from vigil.cluster import ClusterScan
            from vigil.engine import Engine
            from vigil.errors import VigilError
            from vigil.scan.scanner import CollectingSink

            if __name__ == "__main__":
                with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address="127.0.0.1:0") as local:
                    with Client(local) as client, Engine.open({str(tree.home)!r}) as engine:
                        try:
                            ClusterScan(client, [engine.matcher()]).run(
                                [{str(tree.root)!r}], CollectingSink())
                        except VigilError as exc:
                            print("refused:", exc)
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=600
    )
    assert "refused:" in proc.stdout and "DAEMON=False" in proc.stdout, proc.stderr[-3000:]
