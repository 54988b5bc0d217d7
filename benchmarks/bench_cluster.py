"""Cluster mode against the local scan, on the same trees, in one run.

    python -m benchmarks.bench_cluster [--photos 300 --copies 4] [--files 100000] [--rounds 2]

Contenders, each a `vigil scan --no-cache -q` process on a warm tree (the page cache holds it):
- the local scan (`--workers 2`: both cores);
- `--cluster local:1` (one Dask worker process of one thread, reading files itself);
- `--cluster local:2`.
Trees: the benchmark photos (benchmarks.corpus.photo_tree: 300 photos of 1-3 MP x 4 copies =
1,200 JPEGs; the cluster cuts them into shards of `--photo-shard` files, 100: at the default
2,000 they would be a single shard, one worker's work) and a tree of small files
(benchmarks.bench_rescan.generate: a tenth tiny images, the rest text and binary files of
10 B - 4 KiB; shards of the default 2,000). The catalog is the rescan benchmark's (20,000 MD5 +
2,000 PDQ entries).

Start-up is measured apart, as each contender's whole `vigil scan` of a folder holding one small
file (process, cluster and workers started, decoders and kernels loaded, matcher sent, one file
scanned, everything stopped: an empty folder would spare the local scan its workers and their
warm-up, which every real scan pays). Per-file throughput is the tree's
files over its scan's time less that start-up. CPU time (user + system of the whole process
tree, from getrusage of the waited-for children) is measured too: on a machine shared with other
work, wall time depends on the share of the cores each contender gets, CPU time much less; the
CPU a file costs after start-up shows a per-file overhead whatever the load. Rounds are
interleaved (each round runs every contender once) and the best of each is kept; the load
average is printed with each.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.bench_rescan import catalog_csv, generate
from benchmarks.corpus import DATA, photo_tree, warm


def _load() -> str:
    return " ".join(open("/proc/loadavg").read().split()[:3])


def _scan(home: Path, tree: Path, extra: list[str]) -> tuple[float, float]:
    """Seconds of wall time and of CPU (user + system of the whole process tree: the client,
    the scheduler, the workers and their scanning processes are all waited for)."""
    env = {**os.environ, "VIGIL_HOME": str(home)}
    cmd = [sys.executable, "-m", "vigil.cli", "scan", "--no-cache", "-q", *extra, str(tree)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return seconds, cpu


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


Best = dict[str, tuple[float, float]]


def _round_robin(home: Path, tree: Path, rounds: int, extra: dict[str, list[str]]) -> Best:
    """Best wall and best CPU seconds of each contender over `rounds` interleaved rounds."""
    best: Best = {}
    for r in range(rounds):
        for label, args in CONTENDERS.items():
            wall, cpu = _scan(home, tree, [*args, *extra.get(label, [])])
            w, c = best.get(label, (wall, cpu))
            best[label] = (min(w, wall), min(c, cpu))
            print(
                f"    round {r + 1} {label:20s} {wall:8.2f} s, CPU {cpu:7.2f} s  (load {_load()})",
                flush=True,
            )
    return best


def _compare(
    name: str, home: Path, tree: Path, files: int, rounds: int, startup: Best, shard: int | None
) -> None:
    warm([p for p in tree.rglob("*") if p.is_file()])
    print(f"\n{name}: {files:,} files (load before {_load()})", flush=True)
    shards = [] if shard is None else ["--shard-files", str(shard)]
    best = _round_robin(home, tree, rounds, {k: shards for k in CONTENDERS if "cluster" in k})
    local = best["local scan"][0]
    rate = {k: files / max(w - startup[k][0], 1e-9) for k, (w, _) in best.items()}
    ms = {k: (c - startup[k][1]) * 1000 / files for k, (_, c) in best.items()}
    for label, (wall, cpu) in best.items():
        print(
            f"  {label:20s} {wall:8.2f} s {(wall / local - 1) * 100:+6.1f}%; after start-up "
            f"{rate[label]:7.1f} files/s {(rate['local scan'] / rate[label] - 1) * 100:+6.1f}%; "
            f"CPU {cpu:7.2f} s, {ms[label]:.3f} ms a file after start-up "
            f"{(ms[label] / ms['local scan'] - 1) * 100:+6.1f}% (against the local scan)"
        )
    one, two = best["--cluster local:1"][0], best["--cluster local:2"][0]
    print(
        f"  local:2 / local:1 {one / two:.2f}x whole, "
        f"{rate['--cluster local:2'] / rate['--cluster local:1']:.2f}x after start-up "
        f"(load after {_load()})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photos", type=int, default=300)
    ap.add_argument("--copies", type=int, default=4)
    ap.add_argument("--photo-shard", type=int, default=100)
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    print(f"load before {_load()}; {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        base = Path(tmp)
        home = _home(base)
        one = base / "one"
        one.mkdir()
        (one / "note.txt").write_text("one small file\n")
        print("start-up (a scan of a folder of one small file):")
        startup = _round_robin(home, one, args.rounds, {})
        for label, (wall, cpu) in startup.items():
            print(f"  {label:20s} {wall:8.2f} s, CPU {cpu:7.2f} s")
        if args.photos:
            tree = photo_tree(args.photos, args.copies)
            n = args.photos * args.copies
            _compare("photos", home, tree, n, args.rounds, startup, args.photo_shard)
        if args.files:
            root = DATA / f"rescan-{args.files}"
            generate(root, args.files)
            _compare("small files", home, root, args.files, args.rounds, startup, None)
    print(f"\nload after {_load()}")


if __name__ == "__main__":
    main()
