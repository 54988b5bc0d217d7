"""A scheduled scan's share of the cores against `cpu_share`.

Starts a real `vigil server run` (SQLite) and, for each `--shares` value, a real `vigil agent run`
in a fresh home (an empty fingerprint cache: every photo is read) whose agent.toml schedules a
scan of a tree of photos (benchmarks/corpus.py: `--copies` copies of `--photos` JPEGs of 1-3
megapixels, every copy a file of its own, so the cache saves nothing within a scan) at that
`cpu_share`. While the scan runs, the CPU time of its whole process tree (the scan process and
its workers, from /proc) is read every `--window` seconds; each window's share is its CPU time
over its wall time and the machine's cores. Prints, per setting: the scan's wall time, the share
over the whole scan, the windows' p50, p90, p99 and worst share, how many times the daemon paused
the scan, and the daemon's own CPU while it governed it. 1.0 is the reference (not held back);
`--ungoverned` adds, after each share below 1, the same scan not held to its share (its workers
and priority only: what `cpu_share` was before the daemon governed it).

    python -m benchmarks.bench_schedule [--photos 300] [--copies 8] [--shares 0.25,0.5,1.0]
        [--window 1] [--ungoverned]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.agent import Fleet  # noqa: E402
from support.server import VIGIL, Server  # noqa: E402

from benchmarks import corpus  # noqa: E402
from benchmarks.bench_agent import rig  # noqa: E402
from vigil.agent.priority import stretch_for, workers_for  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def _procs() -> dict[int, tuple[int, float]]:
    """Every process: pid -> (parent, CPU seconds), from /proc."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        out[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK)
    return out


def _tree_cpu(root: int, procs: dict[int, tuple[int, float]]) -> float:
    """CPU seconds of `root` and every process under it (children they reaped included: the
    scan process's cutime/cstime, read with its own)."""
    total = 0.0
    for pid in procs:
        p = pid
        while p > 1 and p != root:
            p = procs.get(p, (0, 0.0))[0]
        if p == root:
            total += procs[pid][1]
    try:
        fields = Path(f"/proc/{root}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[13]) + int(fields[14])) / TICK  # cutime, cstime
    except OSError:
        pass
    return total


def _running(pid: int) -> bool:
    """The process exists and has not ended (a zombie waiting for its parent has)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _scan_pid(daemon: int) -> int | None:
    """The scheduled scan's process: the daemon's child running `agent scan`."""
    for pid, (parent, _) in _procs().items():
        if parent != daemon:
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"scheduled" in cmd and b"scan" in cmd:
            return pid
    return None


class Windows:
    """The CPU share of a process tree per window, until its root ends."""

    def __init__(self, root: int, window: float, also: int | None = None) -> None:
        self.root, self.window, self.also = root, window, also
        self.cores = os.cpu_count() or 1
        self.shares: list[float] = []
        self.also_cpu = 0.0

    def run(self) -> None:
        procs = _procs()
        t0 = last = time.monotonic()
        cpu0 = last_cpu = _tree_cpu(self.root, procs)
        also0 = procs[self.also][1] if self.also in procs else 0.0
        while True:
            time.sleep(self.window)
            procs = _procs()
            if not _running(self.root):
                break
            now, cpu = time.monotonic(), _tree_cpu(self.root, procs)
            if self.also in procs:
                self.also_cpu = procs[self.also][1] - also0
            self.shares.append((cpu - last_cpu) / (now - last) / self.cores)
            last, last_cpu = now, cpu
        # The last window (the scan's end) is cut short and its reaped workers' time is gone
        # with the scan process: the totals are up to the last full window.
        self.wall = last - t0
        self.share = (last_cpu - cpu0) / self.wall / self.cores if self.wall else 0.0

    def line(self) -> str:
        q = (
            statistics.quantiles(self.shares, n=100, method="inclusive")
            if len(self.shares) > 1
            else self.shares * 99
        )
        return (
            f"scan {self.wall:.1f} s ({len(self.shares)} windows of {self.window:g} s), share of "
            f"{self.cores} cores over the scan {self.share:.3f}; windows p50 {q[49]:.3f}, "
            f"p90 {q[89]:.3f}, p99 {q[98]:.3f}, worst {max(self.shares):.3f}"
        )


def _summary(text: str) -> str:
    checked = [ln for ln in text.splitlines() if "file(s) checked" in ln]
    return checked[-1].strip() if checked else "no summary in the log"


def run_one(server: Server, fleet: Fleet, tree: Path, share: float, window: float) -> None:
    """The scheduled scan at `share`, under the daemon (governed)."""
    agent = fleet.enrol(server)
    # agent.toml's defaults (heartbeat and catalog poll every 60 s) but for the share and the
    # schedule: the daemon's CPU while the scan runs is then mostly what governing it costs.
    (agent.home / "agent.toml").write_text(
        f'cpu_share = {share}\n[schedule]\nroots = ["{tree}"]\nevery = "24h"\n'
    )
    load = os.getloadavg()
    agent.start()
    assert agent.proc is not None
    daemon = agent.proc.pid
    try:
        deadline = time.monotonic() + 120
        scan = None
        while scan is None and time.monotonic() < deadline:
            scan = _scan_pid(daemon)
            time.sleep(0.05)
        if scan is None:
            raise SystemExit("no scheduled scan started within 2 minutes")
        w = Windows(scan, window, also=daemon)
        w.run()
        status_file = agent.home / "agent" / "schedule.json"
        deadline = time.monotonic() + 60
        while not status_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        schedule = json.loads(status_file.read_text()) if status_file.exists() else {}
        print(
            f"cpu_share {share:g}, governed: {w.line()}; paused {schedule.get('last_pauses')} "
            f"times, status {schedule.get('last_status')}; daemon CPU "
            f"{100 * w.also_cpu / w.wall:.2f}% of a core; load at start "
            f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {_summary(agent.log.read_text())}"
        )
    finally:
        agent.stop()


def run_ungoverned(server: Server, fleet: Fleet, tree: Path, share: float, window: float) -> None:
    """The same scan as the daemon starts it (nice 19, idle I/O, the share's workers and item
    limits) but not held to its share: what `cpu_share` gave before the governor."""
    agent = fleet.enrol(server)
    load = os.getloadavg()
    cmd = [
        *VIGIL,
        *("agent", "scan", "--home", str(agent.home), "--detection", "scheduled"),
        *("--low-priority", "--no-deliver", "--workers", str(workers_for(share))),
        *("--item-stretch", f"{stretch_for(share):g}", str(tree)),
    ]
    with open(agent.log, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        w = Windows(proc.pid, window)
        w.run()
        proc.wait()
    print(
        f"cpu_share {share:g}, not governed (workers only): {w.line()}; status "
        f"{proc.returncode}; load at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
        f"{_summary(agent.log.read_text())}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=300, help="distinct photos in the tree")
    ap.add_argument("--copies", type=int, default=8, help="copies of them (separate files)")
    ap.add_argument("--shares", default="0.25,0.5,1.0", help="cpu_share values, in turn")
    ap.add_argument("--window", type=float, default=1.0, help="seconds of one window")
    ap.add_argument(
        "--ungoverned",
        action="store_true",
        help="after each share below 1, the same scan not held to it (workers only)",
    )
    args = ap.parse_args()
    tree = corpus.photo_tree(args.photos, copies=args.copies)
    corpus.warm(sorted(tree.rglob("*.jpg")))
    with tempfile.TemporaryDirectory() as tmp, rig(Path(tmp)) as (server, fleet):
        files = args.photos * args.copies
        print(f"{files} photos of 1-3 megapixels ({args.copies} copies of {args.photos}), ", end="")
        print(f"{os.cpu_count()} cores")
        for share in (float(s) for s in args.shares.split(",")):
            run_one(server, fleet, tree, share, args.window)
            if args.ungoverned and share < 1:
                run_ungoverned(server, fleet, tree, share, args.window)


if __name__ == "__main__":
    main()
