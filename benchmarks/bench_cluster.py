"""Cluster mode against the local scan, on the same trees, in one run.

    python -m benchmarks.bench_cluster [--photos 300 --copies 4] [--files 100000] [--rounds 1]

Contenders, each a `vigil scan --no-cache -q` process on a warm tree (the page cache holds it):
- the local scan (`--workers 2`: both cores);
- `--cluster local:1` (one Dask worker process, one thread, its own scanning process);
- `--cluster local:2`.
Trees: the benchmark photos (benchmarks.corpus.photo_tree: 300 photos of 1-3 MP x 4 copies =
1,200 JPEGs) and a tree of small files (benchmarks.bench_rescan.generate: a tenth tiny images,
the rest text and binary files of 10 B - 4 KiB). The catalog is the rescan benchmark's (20,000
MD5 + 2,000 PDQ entries). For each: seconds (best of --rounds), files/s, the overhead against the
local scan, local:2 / local:1. Start-up (the cluster's processes, the matcher sent to each
worker) is inside the cluster's seconds: it is measured apart too (`--files 0 --photos 0` scan of
an empty folder). The load average before and after is printed: other processes share the
machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.bench_rescan import catalog_csv, generate
from benchmarks.corpus import DATA, photo_tree, warm


def _load() -> str:
    return " ".join(open("/proc/loadavg").read().split()[:3])


def _scan(home: Path, tree: Path, extra: list[str]) -> float:
    env = {**os.environ, "VIGIL_HOME": str(home)}
    cmd = [sys.executable, "-m", "vigil.cli", "scan", "--no-cache", "-q", *extra, str(tree)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return seconds


def _home(base: Path) -> Path:
    home = base / "home"
    listing = base / "catalog.csv"
    catalog_csv(listing, [], [])
    env = {**os.environ, "VIGIL_HOME": str(home)}
    subprocess.run(
        [sys.executable, "-m", "vigil.cli", "hashset", "import", str(listing), "--name", "bench"],
        env=env,
        check=True,
        capture_output=True,
    )
    return home


CONTENDERS = {
    "local scan": ["--workers", "2"],
    "--cluster local:1": ["--cluster", "local:1"],
    "--cluster local:2": ["--cluster", "local:2"],
}


def _compare(name: str, home: Path, tree: Path, files: int, rounds: int) -> None:
    warm([p for p in tree.rglob("*") if p.is_file()])
    best: dict[str, float] = {}
    for _ in range(rounds):
        for label, extra in CONTENDERS.items():
            s = _scan(home, tree, extra)
            best[label] = min(best.get(label, s), s)
    print(f"\n{name}: {files:,} files")
    local = best["local scan"]
    for label, s in best.items():
        print(
            f"  {label:20s} {s:8.2f} s  {files / s:9.0f} files/s  "
            f"{(s / local - 1) * 100:+6.1f}% against the local scan"
        )
    ratio = best["--cluster local:1"] / best["--cluster local:2"]
    print(
        f"  local:2 / local:1 speed-up {ratio:.2f}x; local:2 / local scan {local / best['--cluster local:2']:.2f}x"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photos", type=int, default=300)
    ap.add_argument("--copies", type=int, default=4)
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    print(f"load before {_load()}; {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        base = Path(tmp)
        home = _home(base)
        empty = base / "empty"
        empty.mkdir()
        for label, extra in CONTENDERS.items():
            print(f"start-up and an empty scan, {label}: {_scan(home, empty, extra):.2f} s")
        if args.photos:
            tree = photo_tree(args.photos, args.copies)
            _compare("photos", home, tree, args.photos * args.copies, args.rounds)
        if args.files:
            root = DATA / f"rescan-{args.files}"
            generate(root, args.files)
            _compare("small files", home, root, args.files, args.rounds)
    print(f"\nload after {_load()}")


if __name__ == "__main__":
    main()
