"""Image fingerprinting speed: Vigil against pdqhash + hashlib, in the same run.

Peer, per photo: read the bytes, MD5 + SHA-1 + SHA-256 with hashlib, Pillow full decode to RGB,
pdqhash.compute_dihedral (Meta's C++ PDQ: the hash and its 8 rotations/flips).
Vigil, per photo: `fingerprint_file` (one read, three digests, media-type sniff, decode, PDQ and
its 8 variants), on one core; then `Scanner` on every core (no catalog, no cache).

    python benchmarks/bench_images.py [--photos 300] [--repeat 1]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import time
from pathlib import Path

import numpy as np
import pdqhash
from PIL import Image
from threadpoolctl import threadpool_limits

from benchmarks.corpus import photos, warm
from vigil.limits import Limits
from vigil.scan.scanner import CollectingSink, Scanner, ScanOptions
from vigil.scan.worker import fingerprint_file


def peer(path: Path) -> str:
    data = path.read_bytes()
    hashlib.md5(data).hexdigest()
    hashlib.sha1(data).hexdigest()
    hashlib.sha256(data).hexdigest()
    with Image.open(path) as im:
        rgb = np.asarray(im.convert("RGB"))
    hashes, _quality = pdqhash.compute_dihedral(rgb)
    return "".join("1" if b else "0" for b in hashes[0])


def timed(fn, files: list[Path], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        for f in files:
            fn(f)
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--photos", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    files = photos(args.photos)
    warm(files)
    mp = sum(Image.open(f).size[0] * Image.open(f).size[1] for f in files) / len(files) / 1e6
    cores = sorted(os.sched_getaffinity(0))
    print(
        f"{len(files)} JPEG photos, mean {mp:.2f} MP; {platform.processor() or platform.machine()}, "
        f"{len(cores)} cores"
    )

    os.sched_setaffinity(0, {cores[0]})
    blas = threadpool_limits(1)  # one core means one thread, for both contenders
    limits = Limits()
    fingerprint_file(str(files[0]), limits)  # import and warm-up outside the timing
    peer(files[0])
    t_peer = timed(peer, files, args.repeat)
    t_ours = timed(lambda f: fingerprint_file(str(f), limits), files, args.repeat)
    fingerprint_file(str(files[0]), limits, True)
    t_fast = timed(lambda f: fingerprint_file(str(f), limits, True), files, args.repeat)
    os.sched_setaffinity(0, set(cores))
    blas.restore_original_limits()

    directory = str(files[0].parent)

    def scan(workers: int) -> float:
        t = time.perf_counter()
        Scanner([], ScanOptions(workers=workers), None).run([directory], CollectingSink())
        return time.perf_counter() - t

    t_scan1 = min(scan(1) for _ in range(args.repeat))
    t_scanN = min(scan(len(cores)) for _ in range(args.repeat))

    n = len(files)
    rows = [
        ("pdqhash + Pillow + hashlib, 1 core", n / t_peer, 1.0),
        ("vigil fingerprint_file, 1 core", n / t_ours, t_peer / t_ours),
        ("vigil fingerprint_file --fast-pdq, 1 core", n / t_fast, t_peer / t_fast),
        ("vigil scan --workers 1", n / t_scan1, t_peer / t_scan1),
        (f"vigil scan --workers {len(cores)}", n / t_scanN, t_peer / t_scanN),
    ]
    print(f"load {open('/proc/loadavg').read().split()[:3]}")
    print(f"{'contender':<40} {'images/s':>10} {'vs pdqhash':>11}")
    for name, rate, ratio in rows:
        print(f"{name:<40} {rate:>10.1f} {ratio:>10.2f}x")
    print(f"all cores vs one core (scan): {t_scan1 / t_scanN:.2f}x")


if __name__ == "__main__":
    main()
