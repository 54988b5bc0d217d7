"""Second scan of an unchanged tree: should cost about what walking and stat'ing the tree costs.

    python -m benchmarks.bench_rescan [--files 100000] [--workers 2] [--rematch] [--first]
        [--baseline-src DIR] [--profile rescan.json]

Generates (once, seeded) `--files` small files under bench-data/rescan-N/ in directories of 100:
a tenth are tiny PNG/JPEG images (32-96 px, so they get PDQ hashes), the rest small text and
binary files of 10 B - 4 KiB. A catalog is imported with 20,000 MD5 + 2,000 PDQ entries (among
them the digests of 50 of the files and the PDQ of 20 of the images), so matches are made. The
first scan fills the fingerprint cache; the second scan of the unchanged tree is measured (the
scanner in-process, cache on disk, a fresh cache object and a freshly loaded matcher: what
`vigil scan` does after start-up). Peers, in the same run, on the same (warm) tree:
- Python `os.walk` + `os.stat` of every file;
- `find DIR -type f | wc -l` (which stats nothing on most file systems: readdir gives the type).
`--rematch` also times scans right after the catalog was compiled again (a new match context:
every cached file is matched again, nothing is read). `--baseline-src DIR` runs another source
tree (e.g. `git archive COMMIT src`) beside ours, with its own catalog and cache.
`--first` also times first scans (an empty cache of their own: every file read, its media type
sniffed, hashed, the images' PDQ, all matched and cached) beside `hashdeep -r -c md5,sha1,sha256`
of the tree, which only hashes.
`--profile FILE` runs the second scan again under py-spy and writes a speedscope profile.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.corpus import DATA


def generate(root: Path, n: int) -> None:
    """n files in directories of 100; a tenth images. Idempotent (a .done marker beside the tree)."""
    done = root.with_name(root.name + ".done")
    if done.exists():
        return
    rng = np.random.default_rng(42)
    for i in range(n):
        d = root / f"d{i // 100:05d}"
        if i % 100 == 0:
            d.mkdir(parents=True, exist_ok=True)
        if i % 10 == 0:
            side = int(rng.integers(32, 97))
            base = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
            im = Image.fromarray(base).resize((side, side), Image.Resampling.BILINEAR)
            buf = io.BytesIO()
            fmt = "PNG" if i % 20 == 0 else "JPEG"
            im.save(buf, fmt)
            (d / f"img{i:07d}.{fmt.lower()}").write_bytes(buf.getvalue())
        elif i % 3 == 0:
            size = int(rng.integers(10, 4096))
            (d / f"bin{i:07d}.dat").write_bytes(
                rng.integers(0, 256, size, dtype=np.uint8).tobytes()
            )
        else:
            words = rng.integers(0, 1000, int(rng.integers(2, 400)))
            (d / f"txt{i:07d}.txt").write_text(" ".join(f"w{w}" for w in words) + "\n")
    done.touch()


def catalog_csv(path: Path, md5s: list[str], pdqs: list[str]) -> None:
    """A hash list with the given listed hashes among random ones."""
    rng = np.random.default_rng(7)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "md5", "pdq", "category"])
        for i, h in enumerate(md5s):
            w.writerow([f"m{i}", h, "", "1"])
        for i, h in enumerate(pdqs):
            w.writerow([f"p{i}", "", h, "1"])
        for i in range(20_000):
            w.writerow([f"r{i}", rng.bytes(16).hex(), "", "2"])
        for i in range(2_000):
            w.writerow([f"q{i}", "", rng.bytes(32).hex(), "2"])


def py_walk_stat(root: Path) -> tuple[float, int]:
    t = time.perf_counter()
    n = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            os.stat(os.path.join(dirpath, name))
            n += 1
    return time.perf_counter() - t, n


def find_count(root: Path) -> tuple[float, int]:
    t = time.perf_counter()
    out = subprocess.run(
        f"find {root} -type f | wc -l", shell=True, check=True, capture_output=True, text=True
    ).stdout
    return time.perf_counter() - t, int(out)


CHILD = r"""
import sys, time
t0 = time.perf_counter()
from pathlib import Path
from vigil.catalog.store import Catalog
from vigil.scan.cache import FingerprintCache
from vigil.scan.scanner import CollectingSink, Scanner, ScanOptions
home, root, workers = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
rematch = sys.argv[4:] == ["rematch"]  # a new compile of the same catalog: every verdict is stale
try:
    from vigil.engine import Engine
except ImportError:  # the code before the engine facade (--baseline-src)
    import shutil
    from vigil.matching.matcher import Matcher
    from vigil.scan.scanner import Source
    if rematch:
        shutil.rmtree(home / "matcher", ignore_errors=True)
    catalog = Catalog.open(home)
    source = Source(catalog, Matcher.for_catalog(catalog, home / "matcher"))
else:
    import shutil
    if rematch:
        shutil.rmtree(home / "builds", ignore_errors=True)
    source = Engine.open(home).matcher()
cache_path = home / "cache.sqlite"
if sys.argv[4:] == ["first"]:  # a first scan: an empty cache of its own (the kept one stays)
    cache_path = home / "cache-first.sqlite"
    for stale in home.glob("cache-first.sqlite*"):
        stale.unlink()
cache = FingerprintCache(cache_path, engine_version="bench")
t1 = time.perf_counter()
sink = CollectingSink()
s = Scanner([source], ScanOptions(workers=workers), cache).run([root], sink)
cache.close()
t2 = time.perf_counter()
print(f"{t2 - t1:.4f} {t1 - t0:.4f} {s.files} {s.cached} {s.items} {s.matches} {s.errors}")
"""


def scan_child(
    home: Path,
    root: Path,
    workers: int,
    prefix: list[str] | None = None,
    src: Path | None = None,
    rematch: bool = False,
    first: bool = False,
) -> list[str]:
    cmd = [*(prefix or []), sys.executable, "-c", CHILD, str(home), str(root), str(workers)]
    if rematch:
        cmd.append("rematch")
    if first:
        cmd.append("first")
    env = dict(os.environ)
    if src is not None:  # another Vigil source tree (e.g. `git archive BASE src`)
        env["PYTHONPATH"] = str(src)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return out.stdout.split()


def prepare_home(
    home: Path, root: Path, workers: int, md5s: list[str], pdqs: list[str], src: Path | None = None
) -> Path:
    """A catalog and a filled cache in `home` (made once: the first scan is timed then)."""
    from vigil.catalog.store import Catalog

    if (home / "first.txt").exists():
        print(f"first scan: done before, cache kept in {home}")
        return home
    home.mkdir(parents=True, exist_ok=True)
    listing = home / "list.csv"
    catalog_csv(listing, md5s, pdqs)
    cat = Catalog.open(home)
    cat.import_file(listing, name="bench")
    cat.close()
    t = time.perf_counter()
    first = scan_child(home, root, workers, src=src)
    print(
        f"first scan{' with ' + str(src) if src else ''} ({workers} workers, fills the cache): "
        f"{float(first[0]):.1f} s, {first[2]} files, {first[4]} items, {first[5]} matches, "
        f"{first[6]} errors (wall with start-up {time.perf_counter() - t:.1f} s)"
    )
    (home / "first.txt").write_text(" ".join(first))
    return home


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3, help="second scans measured (best kept)")
    ap.add_argument(
        "--baseline-src",
        type=Path,
        default=None,
        help="also time the second scan with this source tree (a `src` folder of another commit)",
    )
    ap.add_argument(
        "--first",
        action="store_true",
        help="also time first scans (an empty cache: every file read, sniffed, hashed, matched), "
        "beside hashdeep hashing the same tree",
    )
    ap.add_argument("--profile", type=Path, default=None, help="py-spy speedscope output")
    ap.add_argument(
        "--rematch",
        action="store_true",
        help="also time scans after a catalog change (a new compile: every file matched again)",
    )
    args = ap.parse_args()
    root = DATA / f"rescan-{args.files}"
    t = time.perf_counter()
    generate(root, args.files)
    print(f"tree: {root} ({args.files:,} files), ready in {time.perf_counter() - t:.1f} s")

    from vigil.fingerprint.fingerprints import Fingerprints  # noqa: F401 - warm import
    from vigil.scan.worker import fingerprint_file

    picks = sorted(root.glob("d000*/txt*"))[:50]
    md5s = [
        fingerprint_file(str(p), __import__("vigil.limits").limits.Limits())
        .items[0]
        .fingerprints.md5
        for p in picks
    ]
    pdqs = []
    for p in sorted(root.glob("d000*/img*"))[:20]:
        fp = (
            fingerprint_file(str(p), __import__("vigil.limits").limits.Limits())
            .items[0]
            .fingerprints
        )
        if fp.pdq is not None:
            pdqs.append(fp.pdq.hash)
    # The catalog and the cache are kept beside the tree (rm -r it to start again); a baseline
    # source tree gets its own (its cache may be of another format).
    home = prepare_home(DATA / f"rescan-{args.files}-home", root, args.workers, md5s, pdqs)
    base_home = (
        prepare_home(
            DATA / f"rescan-{args.files}-home-baseline",
            root,
            args.workers,
            md5s,
            pdqs,
            args.baseline_src,
        )
        if args.baseline_src
        else None
    )
    errors = int((home / "first.txt").read_text().split()[6])
    best = None
    best_base: float | None = None
    for _ in range(args.repeat):
        second = scan_child(home, root, args.workers)
        py_t, py_n = py_walk_stat(root)
        find_t, find_n = find_count(root)
        if best is None or float(second[0]) < float(best[0][0]):
            best = (second, py_t, find_t)
        if args.baseline_src:
            assert base_home is not None
            base = scan_child(base_home, root, args.workers, src=args.baseline_src)
            print(
                f"  second scan with {args.baseline_src}: {float(base[0]):.3f} s "
                f"(cached {base[3]}, matches {base[5]})"
            )
            if best_base is None or float(base[0]) < best_base:
                best_base = float(base[0])
        print(
            f"  second scan {float(second[0]):.3f} s (cached {second[3]}, matches {second[5]}); "
            f"os.walk+os.stat {py_t:.3f} s ({py_n:,} files); find | wc -l {find_t:.3f} s ({find_n:,})"
        )
    assert best is not None
    second, py_t, find_t = best
    scan_t = float(second[0])
    n = int(second[2])
    # Files that had errors are not cached: read again.
    assert int(second[3]) >= n - errors, "second scan read files"
    print(f"load {open('/proc/loadavg').read().split()[:3]}")
    print(
        f"second scan of {n:,} unchanged files (best of {args.repeat}): {scan_t:.2f} s, "
        f"{n / scan_t:,.0f} files/s, {second[5]} matches (start-up before it {float(second[1]):.2f} s)"
    )
    print(
        f"peer os.walk + os.stat: {py_t:.2f} s ({n / py_t:,.0f} files/s); "
        f"ratio scan / walk+stat = {scan_t / py_t:.2f}x"
    )
    if best_base is not None:
        print(
            f"baseline ({args.baseline_src}) second scan: {best_base:.2f} s, "
            f"{n / best_base:,.0f} files/s; ours is {best_base / scan_t:.1f}x faster"
        )
    print(f"peer find -type f | wc -l: {find_t:.2f} s; ratio scan / find = {scan_t / find_t:.2f}x")
    if args.rematch:
        # After a catalog change: every cached file matched again (nothing read). The matcher
        # is compiled again before the timed part; the next plain scan is a verdict scan again.
        ours = [float(scan_child(home, root, args.workers, rematch=True)[0]) for _ in range(2)]
        line = f"scan after a catalog change (all {n:,} files matched again): {min(ours):.2f} s"
        if base_home is not None:
            base = [
                float(
                    scan_child(base_home, root, args.workers, src=args.baseline_src, rematch=True)[
                        0
                    ]
                )
                for _ in range(2)
            ]
            line += f"; baseline {min(base):.2f} s; ratio baseline / ours = {min(base) / min(ours):.2f}x"
        print(line)
    if args.first:
        # Every file read: media type, digests, PDQ of the images, matching, caching. hashdeep
        # only hashes (no types, no images, no matching): the floor for reading and digesting.
        ours = [float(scan_child(home, root, args.workers, first=True)[0]) for _ in range(2)]
        t = time.perf_counter()
        subprocess.run(
            ["hashdeep", "-r", "-c", "md5,sha1,sha256", "-j", str(args.workers), str(root)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        deep = time.perf_counter() - t
        line = (
            f"first scan of {n:,} files (empty cache), best of 2: {min(ours):.2f} s, "
            f"{n / min(ours):,.0f} files/s; hashdeep -r -c md5,sha1,sha256 -j {args.workers}: "
            f"{deep:.2f} s; ratio scan / hashdeep = {min(ours) / deep:.2f}x"
        )
        if base_home is not None:
            base = [
                float(
                    scan_child(base_home, root, args.workers, src=args.baseline_src, first=True)[0]
                )
                for _ in range(2)
            ]
            line += f"; baseline {min(base):.2f} s, ours {min(base) / min(ours):.2f}x faster"
        print(line)
    if args.profile:
        scan_child(
            home,
            root,
            args.workers,
            [
                str(Path(sys.executable).with_name("py-spy")),
                "record",
                "-r",
                "200",
                "--format",
                "speedscope",
                "-o",
                str(args.profile),
                "--",
            ],
        )
        print(f"profile of a second scan: {args.profile}")


if __name__ == "__main__":
    main()
