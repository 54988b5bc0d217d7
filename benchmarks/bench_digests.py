"""MD5 + SHA-1 + SHA-256 throughput on large files: Vigil against hashdeep, and OpenSSL's ceiling.

    python benchmarks/bench_digests.py [--total-mb 1024] [--files 8]

The ceiling is what the machine's OpenSSL allows for one pass computing all three digests:
1 / (1/md5 + 1/sha1 + 1/sha256) per core (from `openssl speed -evp`), times the cores.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import time
from concurrent.futures import ProcessPoolExecutor

from benchmarks.corpus import big_files, warm
from vigil.limits import Limits
from vigil.scan.worker import fingerprint_file


def openssl_rate(algo: str) -> float:
    """MB/s of one core for 16 KiB blocks."""
    out = subprocess.run(
        ["openssl", "speed", "-seconds", "2", "-bytes", "16384", "-evp", algo],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(ln for ln in out.splitlines() if ln.lower().startswith(algo))
    value = re.findall(r"([\d.]+)k", line)[-1]
    return float(value) * 1000 / 1e6


def ours(path: str) -> int:
    res = fingerprint_file(path, Limits())
    return res.items[0].fingerprints.size


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--total-mb", type=int, default=1024)
    ap.add_argument("--files", type=int, default=8)
    args = ap.parse_args()
    files = big_files(args.total_mb, args.files)
    total = sum(f.stat().st_size for f in files) / 1e6
    cores = len(os.sched_getaffinity(0))
    rates = {a: openssl_rate(a) for a in ("md5", "sha1", "sha256")}
    ceiling1 = 1 / sum(1 / r for r in rates.values())
    print("openssl speed (MB/s per core): " + ", ".join(f"{a} {r:.0f}" for a, r in rates.items()))
    print(
        f"ceiling for one pass of all three: {ceiling1:.0f} MB/s per core, {ceiling1 * cores:.0f} MB/s on {cores} cores"
    )
    warm(files)

    t = time.perf_counter()
    subprocess.run(
        ["hashdeep", "-c", "md5,sha1,sha256", "-j", str(cores), *map(str, files)],
        check=True,
        capture_output=True,
    )
    t_hd = time.perf_counter() - t

    t = time.perf_counter()
    with ProcessPoolExecutor(cores) as pool:
        sizes = list(pool.map(ours, map(str, files)))
    t_ours = time.perf_counter() - t
    assert sum(sizes) == sum(f.stat().st_size for f in files)

    print(f"{total:.0f} MB in {len(files)} files, {cores} cores")
    print(f"{'contender':<34} {'MB/s':>8} {'vs hashdeep':>12} {'of ceiling':>11}")
    for name, secs in (
        ("hashdeep -c md5,sha1,sha256", t_hd),
        ("vigil (reader, all cores)", t_ours),
    ):
        rate = total / secs
        print(f"{name:<34} {rate:>8.0f} {t_hd / secs:>11.2f}x {rate / (ceiling1 * cores):>10.0%}")


if __name__ == "__main__":
    main()
