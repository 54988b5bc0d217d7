"""The engine as long-running fronts use it: warm in-process calls, and builds swapped under load.

1. Latency, in process and warm (`Engine.prepare` done): `engine.check(bytes, name)` (fingerprint
   and match one 1-3 MP JPEG held in memory) against `engine.fingerprint` alone (the bare
   fingerprint: digests, sniff, decode, PDQ and its 8 variants), photo by photo in turn, p50 and
   p99; then the same photos through a one-file `Scanner.run` (a pool started and stopped per
   scan, what `vigil scan FILE` pays inside its process) and through a `vigil scan FILE` process.
2. Swaps: a build of `--entries` entries (each with an MD5, a SHA-1 and a PDQ hash, and a small
   metadata document), published again and again under a new id (its arrays hard-linked, so each
   swap maps a new build as a real update does), while 2 threads call `engine.check` without a
   pause. Prints the calls' p50 / p99 / longest with and without swaps, and the resident memory
   after 2 swaps and after all of them.

    python -m benchmarks.bench_engine [--photos 60] [--entries 1000000] [--swaps 100]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

from benchmarks.corpus import DATA, photos
from vigil.catalog.store import Catalog
from vigil.engine import Engine
from vigil.hashsets.entry import Entry, ParseReport
from vigil.matching.builds import LEASE, BuildStore
from vigil.matching.entries import EntryTable
from vigil.matching.matcher import Matcher, _ExactTable
from vigil.matching.pdq_index import build_pdq_index
from vigil.scan.scanner import CollectingSink, Scanner, ScanOptions


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def ms(values: list[float]) -> str:
    return f"p50 {pct(values, 50) * 1e3:7.2f} ms  p99 {pct(values, 99) * 1e3:7.2f} ms  max {max(values) * 1e3:7.2f} ms"


def rss_mib() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def latency(files: list[Path], home: Path) -> None:
    """Part 1."""
    home.mkdir(parents=True, exist_ok=True)
    catalog = Catalog.open(home)
    rng = np.random.default_rng(5)
    # 100,000 listed items, one of them the first photo, so matches are built too.
    first = Engine.open(home).fingerprint(files[0].read_bytes(), "x").items[0].fingerprints
    entries = [
        Entry({"md5": rng.bytes(16).hex(), "pdq": rng.bytes(32).hex()}, id=str(i), category="1")
        for i in range(100_000)
    ]
    entries.append(Entry({"md5": first.md5}, id="listed", category="1"))
    catalog.import_entries("bench", entries, ParseReport(format="csv"), source="g", version="1")
    engine = Engine.open(home)
    t = time.perf_counter()
    engine.prepare()
    print(
        f"prepare (kernels, decoders, the build compiled and mapped): {time.perf_counter() - t:.2f} s"
    )
    datas = [(p.name, p.read_bytes()) for p in files]
    bare: list[float] = []
    full: list[float] = []
    found = 0
    for _ in range(2):
        for name, data in datas:
            t = time.perf_counter()
            engine.fingerprint(data, name)
            bare.append(time.perf_counter() - t)
            t = time.perf_counter()
            found += len(engine.check(data, name).matches)
            full.append(time.perf_counter() - t)
    print(f"in process, warm, {len(full)} calls of 1-3 MP JPEGs in memory ({found} matches):")
    print(f"  fingerprint alone:      {ms(bare)}")
    print(f"  check (+ match):        {ms(full)}")
    print(
        f"  ratio of p50s: {pct(full, 50) / pct(bare, 50):.3f}x  (p99s {pct(full, 99) / pct(bare, 99):.3f}x)"
    )
    one: list[float] = []
    matcher = engine.matcher()
    for p in files[:20]:
        t = time.perf_counter()
        Scanner([matcher], ScanOptions(workers=1)).run([str(p)], CollectingSink())
        one.append(time.perf_counter() - t)
    print(
        f"  one-file Scanner.run (pool per scan): {ms(one)}  = {pct(one, 50) / pct(full, 50):.0f}x check"
    )
    cli: list[float] = []
    env = {**os.environ, "VIGIL_HOME": str(home)}
    for p in files[:10]:
        t = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "vigil.cli", "scan", str(p), "--json", "-q", "--no-cache"],
            env=env,
            capture_output=True,
        )
        cli.append(time.perf_counter() - t)
    print(
        f"  `vigil scan FILE` process:           {ms(cli)}  = {pct(cli, 50) / pct(full, 50):.0f}x check"
    )
    engine.close()


def generated_build(n: int) -> Matcher:
    """n entries with an MD5, a SHA-1 and a PDQ hash each, straight into matcher form."""
    rng = np.random.default_rng(9)
    ids = np.arange(1, n + 1, dtype=np.int64)
    sets = np.ones(n, dtype=np.int32)
    exact = {}
    for kind, width in (("md5", 16), ("sha1", 20), ("sha256", 32)):
        k = n if kind != "sha256" else 0
        vals = rng.integers(0, 256, (k, width), dtype=np.uint8).view(f"S{width}").ravel()
        order = np.argsort(vals)
        exact[kind] = _ExactTable(vals[order], ids[:k][order], sets[:k])
    hashes = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    table = EntryTable.build(
        (int(i), 1, f"case-{i}", "1", {"source": "bench"}) for i in ids.tolist()
    )
    return Matcher(
        1,
        exact,
        build_pdq_index(hashes),
        ids,
        sets,
        {1: "generated"},
        set(),
        None,
        None,
        table,
        {1: {"name": "generated"}},
    )


def relinked(store: BuildStore, build_id: str) -> str:
    """A new build id whose files are the given build's (hard links), as a fresh update."""
    new = uuid.uuid4().hex
    src, dst = store.root / build_id, store.root / f".tmp-{new}"
    if not (src / "meta.json").is_file():
        raise RuntimeError(f"build {build_id} is gone")
    dst.mkdir()
    for path in src.rglob("*"):
        rel = path.relative_to(src)
        if path.is_dir():
            (dst / rel).mkdir(parents=True, exist_ok=True)
        elif path.name == "meta.json":
            (dst / rel).write_text(path.read_text().replace(build_id, new))
        elif path.name != LEASE:
            os.link(path, dst / rel)
    (dst / LEASE).touch()
    os.rename(dst, store.root / new)
    return new


def swaps(files: list[Path], root: Path, n: int, count: int, interval: float) -> None:
    """Part 2."""
    store = BuildStore(root / "builds")
    t = time.perf_counter()
    build = generated_build(n)
    store.publish(build)
    base_id = build.build_id
    del build
    # The generated build is only the source of the copies: kept mapped here, so the holder's
    # collection of superseded builds leaves it.
    source = store.open(base_id)
    assert source is not None
    print(f"\n{n:,}-entry build generated and published in {time.perf_counter() - t:.1f} s")
    engine = Engine.open_builds(store.root)
    engine.prepare()
    datas = [(p.name, p.read_bytes()) for p in files[:20]]
    calls: list[tuple[float, float]] = []  # (start, seconds)
    stop = threading.Event()

    def scan() -> None:
        i = 0
        while not stop.is_set():
            name, data = datas[i % len(datas)]
            t0 = time.perf_counter()
            engine.check(data, name)
            calls.append((t0, time.perf_counter() - t0))
            i += 1

    threads = [threading.Thread(target=scan) for _ in range(2)]
    for th in threads:
        th.start()
    time.sleep(5)  # calls without swaps, as the reference
    quiet_end = time.perf_counter()
    swap_times: list[float] = []
    rss_after: dict[int, float] = {}
    for k in range(1, count + 1):
        new = relinked(store, base_id)
        store._point_at(new)
        t = time.perf_counter()
        engine.refresh()
        swap_times.append(time.perf_counter() - t)
        if k in (2, count):
            rss_after[k] = rss_mib()
        time.sleep(interval)  # updates come minutes apart; this packs 100 into a few seconds
    stop.set()
    for th in threads:
        th.join()
    engine.refresh()  # nothing new: collects the builds the last calls in flight let go
    assert engine.matcher().build_id == new, "the last swap was not taken"
    quiet = [s for t0, s in calls if t0 < quiet_end]
    busy = [s for t0, s in calls if t0 >= quiet_end]
    print(
        f"2 threads calling engine.check on 20 photos; {count} swaps (load the new build, swap, unmap the old):"
    )
    print(f"  without swaps: {len(quiet):5d} calls  {ms(quiet)}")
    print(f"  during swaps:  {len(busy):5d} calls  {ms(busy)}")
    print(f"  one swap (refresh) took {ms(swap_times)}")
    print(
        f"  resident memory after 2 swaps {rss_after[2]:.0f} MiB, after {count}: {rss_after[count]:.0f} MiB ({rss_after[count] - rss_after[2]:+.0f} MiB)"
    )
    print(
        f"  builds left on disk: {len([p for p in store.root.iterdir() if p.is_dir() and not p.name.startswith('.')])}"
    )
    engine.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=int, default=60)
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--swaps", type=int, default=100)
    ap.add_argument("--interval", type=float, default=0.1, help="seconds between two swaps")
    args = ap.parse_args()
    print(f"load {open('/proc/loadavg').read().split()[:3]}")
    files = photos(max(args.photos, 20))[: args.photos]
    with tempfile.TemporaryDirectory(dir=DATA) as tmp:
        latency(files, Path(tmp) / "home")
        swaps(files, Path(tmp), args.entries, args.swaps, args.interval)


if __name__ == "__main__":
    main()
