"""A national-scale compiled matcher: generate it, start it, look up in it.

Generates (seeded) a catalog of `--exact` MD5 and as many SHA-1 digests and `--pdq` PDQ hashes
straight into the compiled-matcher form (`Matcher.save`), then in fresh processes measures:
- build: sorting the exact tables and building the PDQ multi-index, and writing them;
- start-up: `Matcher.load` (memory-mapped) plus the first exact lookup and the first PDQ search,
  in a new process (what a scanner or agent pays), and its resident memory after 10,000 lookups;
- exact lookups per second: batched (`Matcher.exact_many`, 100,000 digests a call) against one
  digest at a time (`Matcher.lookup`'s path), half of them listed;
- PDQ radius-31 queries per second (8 variants of 200 altered copies and unrelated hashes).
Importing through the SQLite catalog is measured separately (`--import-entries`): `vigil
hashset import` of a generated CSV, and the compile that follows.

    python -m benchmarks.bench_catalog --exact 25000000 --pdq 10000000 [--import-entries 1000000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from vigil.matching.matcher import Matcher, _ExactTable
from vigil.matching.pdq_index import build_pdq_index


def generate(directory: Path, n_exact: int, n_pdq: int) -> float:
    rng = np.random.default_rng(11)
    t = time.perf_counter()
    exact = {}
    for kind, width in (("md5", 16), ("sha1", 20), ("sha256", 32)):
        n = n_exact if kind != "sha256" else 0
        vals = rng.integers(0, 256, (n, width), dtype=np.uint8).view(f"S{width}").ravel()
        vals.sort()
        exact[kind] = _ExactTable(vals, np.arange(n, dtype=np.int64), np.ones(n, dtype=np.int32))
    hashes = rng.integers(0, 256, (n_pdq, 32), dtype=np.uint8)
    m = Matcher(
        1,
        exact,
        build_pdq_index(hashes),
        np.arange(n_pdq, dtype=np.int64),
        np.ones(n_pdq, dtype=np.int32),
        {1: "generated"},
        set(),
    )
    directory.mkdir(parents=True, exist_ok=True)
    m.save(directory)
    return time.perf_counter() - t


CHILD = r"""
import sys, time, numpy as np
t0 = time.perf_counter()
from pathlib import Path
from vigil.matching.matcher import Matcher, MatchSettings
from vigil.fingerprint.fingerprints import Fingerprints, PDQ
d = Path(sys.argv[1])
def _timed(m, queries):
    t = time.perf_counter(); m.exact_many("md5", queries); return time.perf_counter() - t
m = Matcher.load(d)
md5 = np.load(d / "md5.values.npy", mmap_mode="r")
rng = np.random.default_rng(5)
def fp(md5hex, pdq=None):
    return Fingerprints(size=1, md5=md5hex, sha1="0"*40, sha256="0"*64, media_type="image/jpeg", pdq=pdq)
m.lookup(fp(md5[123].ljust(16, b"\0").hex()))
pdqs = np.load(d / "pdq.hashes.npy", mmap_mode="r")
h = pdqs[77].tobytes().hex()
m.lookup(fp("0"*32, PDQ(h, 100, (h,)*8)))
startup = time.perf_counter() - t0
n = 100_000
picks = rng.integers(0, len(md5), n // 2)
listed = np.asarray(md5[np.sort(picks)])
queries = np.concatenate([listed, rng.integers(0, 256, (n // 2, 16), dtype=np.uint8).view("S16").ravel()])
rng.shuffle(queries)
import os
def drop(*names):
    for name in names:  # these files' pages out of the page cache
        fd = os.open(d / name, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
# Pages mapped by this process cannot be dropped: each process measures one cold case.
if sys.argv[2] == "table":
    drop("md5.values.npy", "md5.directory.npy", "md5.entries.npy", "md5.sets.npy")
    t = time.perf_counter(); m.exact_many("md5", queries); t_cold = time.perf_counter() - t
    print(f"exact lookups, {n:,} a call, half listed: batched cold, all the table's pages dropped (digests, directory, entry and set ids) {n / t_cold:,.0f}/s")
    sys.exit(0)
drop("md5.values.npy")
t = time.perf_counter(); hits = m.exact_many("md5", queries); t_cold = time.perf_counter() - t
t_batch = min(_timed(m, queries) for _ in range(3))
k = 10_000
t = time.perf_counter()
for q in queries[:k]:
    m.lookup(fp(q.ljust(16, b"\0").hex()))
t_single = time.perf_counter() - t
rss = int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
bits = np.unpackbits(np.asarray(pdqs[rng.integers(0, len(pdqs), 100)]), axis=1)
for row in bits:
    row[rng.choice(256, rng.integers(0, 30), replace=False)] ^= 1
near = np.packbits(bits, axis=1)
qs = [r.tobytes().hex() for r in near] + [rng.integers(0, 256, 32, dtype=np.uint8).tobytes().hex() for _ in range(100)]
t = time.perf_counter()
found = 0
for h in qs:
    found += len(m.lookup(fp("0"*32, PDQ(h, 100, (h,)*8))))
t_pdq = time.perf_counter() - t
print(f"start-up (load + first exact + first PDQ lookup): {startup:.3f} s")
print(f"exact lookups, {n:,} a call, half listed: batched cold (the digests' pages dropped) {n / t_cold:,.0f}/s, batched warm {n / t_batch:,.0f}/s ({len(hits[0])} hits), one at a time {k / t_single:,.0f}/s; warm ratio {(n / t_batch) / (k / t_single):.0f}x")
print(f"PDQ radius 31 with 8 variants each: {len(qs) / t_pdq:,.0f} images/s = {8 * len(qs) / t_pdq:,.0f} queries/s ({found} matches of 100 altered copies)")
print(f"resident memory after start-up and lookups: {rss:.0f} MiB")
"""


IMPORT_CHILD = r"""
import sys, time, resource, numpy as np
from pathlib import Path
from vigil.catalog.store import Catalog
from vigil.hashsets.entry import Entry, ParseReport
home, n, n_pdq = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(3)
def gen():
    # n entries with an MD5 and a SHA-1 each; the first n_pdq of them also carry a PDQ hash.
    for start in range(0, n, 100_000):
        k = min(100_000, n - start)
        md5 = rng.integers(0, 256, (k, 16), dtype=np.uint8)
        sha1 = rng.integers(0, 256, (k, 20), dtype=np.uint8)
        pdq = rng.integers(0, 256, (k, 32), dtype=np.uint8)
        for i in range(k):
            hashes = {"md5": md5[i].tobytes().hex(), "sha1": sha1[i].tobytes().hex()}
            if start + i < n_pdq:
                hashes["pdq"] = pdq[i].tobytes().hex()
            yield Entry(hashes, id=str(start + i), category="1")
cat = Catalog.open(home)
t = time.perf_counter()
cat.import_entries("big", gen(), ParseReport(format="csv"), source="gen", version="1")
print(f"{time.perf_counter() - t:.2f} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}")
"""

COMPILE_CHILD = r"""
import sys, time, resource
from pathlib import Path
from vigil.catalog.store import Catalog
from vigil.matching.matcher import Matcher
home = Path(sys.argv[1])
cat = Catalog.open(home)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t = time.perf_counter()
m = Matcher.compile(cat)
t_compile = time.perf_counter() - t
(home / "matcher").mkdir(exist_ok=True)
m.save(home / "matcher")
print(f"{t_compile:.2f} {time.perf_counter() - t:.2f} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} {base:.0f}")
"""


def through_catalog(n: int, n_pdq: int, baseline: Path | None) -> None:
    """Import n generated entries (MD5 + SHA-1 each, PDQ on the first n_pdq) into SQLite, then
    compile."""
    from benchmarks.corpus import DATA

    runs = [("ours", None)] + ([("baseline", baseline)] if baseline else [])
    res = {}
    for label, src in runs:
        with tempfile.TemporaryDirectory(dir=DATA) as home:
            env = dict(os.environ, OMP_NUM_THREADS="1")
            if src is not None:
                env["PYTHONPATH"] = str(src)
            out = subprocess.run(
                [sys.executable, "-c", IMPORT_CHILD, home, str(n), str(n_pdq)],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout.split()
            t_imp, rss_imp = float(out[0]), float(out[1])
            out = subprocess.run(
                [sys.executable, "-c", COMPILE_CHILD, home],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout.split()
            t_comp, t_save, rss_comp, rss_base = map(float, out)
            res[label] = (t_imp, t_comp)
            print(
                f"{label}: {n:,} entries ({n:,} MD5 + {n:,} SHA-1 + {n_pdq:,} PDQ) import "
                f"{t_imp:.1f} s ({(2 * n + n_pdq) / t_imp:,.0f} hashes/s), peak RSS {rss_imp:.0f} MiB; "
                f"compile {t_comp:.1f} s (with saving: {t_save:.1f} s), peak RSS {rss_comp:.0f} MiB "
                f"(before compiling {rss_base:.0f}; final arrays {(n * (16 + 20 + 2 * 12) + n_pdq * (32 + 12)) / 2**20:.0f} "
                f"MiB + PDQ tables)   [load {open('/proc/loadavg').read().split()[:3]}]"
            )
    if baseline:
        print(
            f"ratio baseline/ours: import {res['baseline'][0] / res['ours'][0]:.2f}x, "
            f"compile {res['baseline'][1] / res['ours'][1]:.2f}x"
        )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--exact", type=int, default=25_000_000, help="MD5 digests (and as many SHA-1)")
    ap.add_argument("--pdq", type=int, default=10_000_000)
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument(
        "--catalog-entries",
        type=int,
        default=0,
        help="instead: import this many generated entries through the SQLite catalog and compile",
    )
    ap.add_argument(
        "--catalog-pdq",
        type=int,
        default=None,
        help="with --catalog-entries: how many of the entries carry a PDQ hash (default: all)",
    )
    ap.add_argument(
        "--baseline-src",
        type=Path,
        default=None,
        help="with --catalog-entries: also run another source tree's `src` (PYTHONPATH)",
    )
    args = ap.parse_args()
    if args.catalog_entries:
        n_pdq = args.catalog_entries if args.catalog_pdq is None else args.catalog_pdq
        through_catalog(args.catalog_entries, n_pdq, args.baseline_src)
        return
    print(f"load {open('/proc/loadavg').read().split()[:3]}")
    with tempfile.TemporaryDirectory() as tmp:
        d = args.dir or Path(tmp) / "matcher"
        t = generate(d, args.exact, args.pdq)
        size = sum(f.stat().st_size for f in d.iterdir())
        print(
            f"{args.exact:,} MD5 + {args.exact:,} SHA-1 + {args.pdq:,} PDQ: generated, sorted, "
            f"indexed and written in {t:.1f} s; {size / 2**20:,.0f} MiB on disk"
        )
        subprocess.run(["sync"], check=False)
        env = dict(os.environ, OMP_NUM_THREADS="1")
        subprocess.run([sys.executable, "-c", CHILD, str(d), "digests"], check=True, env=env)
        subprocess.run([sys.executable, "-c", CHILD, str(d), "table"], check=True, env=env)


if __name__ == "__main__":
    main()
