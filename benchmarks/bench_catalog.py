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
    m.save(directory)
    return time.perf_counter() - t


CHILD = r"""
import sys, time, numpy as np
t0 = time.perf_counter()
from pathlib import Path
from vigil.matching.matcher import Matcher, MatchSettings
from vigil.fingerprint.fingerprints import Fingerprints, PDQ
d = Path(sys.argv[1])
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
t = time.perf_counter(); hits = m.exact_many("md5", queries); t_batch = time.perf_counter() - t
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
print(f"exact lookups: batched {n / t_batch:,.0f}/s ({len(hits[0])} hits), one at a time {k / t_single:,.0f}/s; ratio {(n / t_batch) / (k / t_single):.0f}x")
print(f"PDQ radius 31 with 8 variants each: {len(qs) / t_pdq:,.0f} images/s = {8 * len(qs) / t_pdq:,.0f} queries/s ({found} matches of 100 altered copies)")
print(f"resident memory after start-up and lookups: {rss:.0f} MiB")
"""


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--exact", type=int, default=25_000_000, help="MD5 digests (and as many SHA-1)")
    ap.add_argument("--pdq", type=int, default=10_000_000)
    ap.add_argument("--dir", type=Path, default=None)
    args = ap.parse_args()
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
        subprocess.run([sys.executable, "-c", CHILD, str(d)], check=True, env=env)


if __name__ == "__main__":
    main()
