"""MD5 + SHA-1 + SHA-256 throughput on large files: Vigil against hashdeep, and OpenSSL's ceiling.

    python -m benchmarks.bench_digests [--total-mb 1024] [--files 8]

The ceiling is what the machine's OpenSSL allows for one pass computing all three digests one
after the other: 1 / (1/md5 + 1/sha1 + 1/sha256) per core (from `openssl speed -evp`), times the
cores. Where the CPU has the SHA extensions Vigil interleaves the three (`_digests`), which can
pass that ceiling; its own bound is then MD5 alone (OpenSSL's MD5 rate), also printed. Vigil
runs twice: as installed, and with hashlib forced (the path of CPUs without the extensions).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

from benchmarks.corpus import big_files, warm
from vigil.fingerprint import crypto
from vigil.limits import Limits
from vigil.scan import reader
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


def use_hashlib() -> None:
    """Pool initializer: the reader computes digests with hashlib, one after the other."""
    reader.Digests = crypto.HashlibDigests


def timed(files: list[str], cores: int, initializer: Callable[[], None] | None = None) -> float:
    t = time.perf_counter()
    with ProcessPoolExecutor(cores, initializer=initializer) as pool:
        sizes = list(pool.map(ours, files))
    elapsed = time.perf_counter() - t
    assert sum(sizes) == sum(os.path.getsize(f) for f in files)
    return elapsed


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

    names = list(map(str, files))
    t_ours = timed(names, cores)
    t_hashlib = timed(names, cores, use_hashlib)
    md5_bound = rates["md5"] * cores

    print(
        f"{total:.0f} MB in {len(files)} files, {cores} cores; one-pass digests: {crypto.ACCELERATED}"
    )
    print(
        f"{'contender':<38} {'MB/s':>8} {'vs hashdeep':>12} {'of ceiling':>11} {'of MD5 alone':>13}"
    )
    for name, secs in (
        ("hashdeep -c md5,sha1,sha256", t_hd),
        ("vigil (reader, all cores)", t_ours),
        ("vigil with hashlib (reader, all cores)", t_hashlib),
    ):
        rate = total / secs
        print(
            f"{name:<38} {rate:>8.0f} {t_hd / secs:>11.2f}x {rate / (ceiling1 * cores):>10.0%}"
            f" {rate / md5_bound:>12.0%}"
        )


if __name__ == "__main__":
    main()
