"""Image fingerprinting speed: Vigil against pdqhash + hashlib, in the same run.

Peer, per photo: read the bytes, MD5 + SHA-1 + SHA-256 with hashlib, Pillow full decode to RGB,
pdqhash.compute_dihedral (Meta's C++ PDQ: the hash and its 8 rotations/flips).
Vigil, per photo: `fingerprint_file` (one read, three digests, media-type sniff, decode, PDQ and
its 8 variants), on one core; then `Scanner` (no catalog, no cache) with one worker and with
one per core, on `--scan-copies` copies of the photos (1,200 files by default: a scan of 300
lasts a second, of which starting and stopping the workers is a tenth).

    python -m benchmarks.bench_images [--photos 300] [--repeat 1] [--scan-copies 4]

The one-core contenders run in turn on chunks of 20 photos (so each sees the same load); the
ratios are of the same run. Wall-clock and CPU-time ratios are both printed: on a busy machine
the CPU-time one is the steadier. The scans (1 worker, then every core) alternate too.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pdqhash
from PIL import Image
from threadpoolctl import threadpool_limits

from benchmarks.corpus import photo_tree, photos, warm
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


def interleaved(
    contenders: dict[str, Callable[[Path], object]], files: list[Path], chunk: int = 20
) -> dict[str, tuple[float, float]]:
    """(wall, CPU) seconds of each contender over `files`, run chunk by chunk in turn.

    The machine is shared: alternating small chunks gives every contender the same share of
    whatever else is running, so the ratios of one run compare like with like.
    """
    wall = dict.fromkeys(contenders, 0.0)
    cpu = dict.fromkeys(contenders, 0.0)
    names = list(contenders)
    for i in range(0, len(files), chunk):
        part = files[i : i + chunk]
        order = names[(i // chunk) % len(names) :] + names[: (i // chunk) % len(names)]
        for name in order:
            fn = contenders[name]
            c, t = time.process_time(), time.perf_counter()
            for f in part:
                fn(f)
            wall[name] += time.perf_counter() - t
            cpu[name] += time.process_time() - c
    return {n: (wall[n], cpu[n]) for n in names}


def load() -> str:
    return " ".join(open("/proc/loadavg").read().split()[:3])


def stats(values: list[float]) -> str:
    return f"min {min(values):.2f} / median {statistics.median(values):.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--photos", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument(
        "--scan-copies",
        type=int,
        default=4,
        help="the scans read this many copies of the photos (default 4: 1,200 files)",
    )
    args = ap.parse_args()
    files = photos(args.photos)
    warm(files)
    mp = sum(Image.open(f).size[0] * Image.open(f).size[1] for f in files) / len(files) / 1e6
    cores = sorted(os.sched_getaffinity(0))
    print(
        f"{len(files)} JPEG photos, mean {mp:.2f} MP; {platform.processor() or platform.machine()}, "
        f"{len(cores)} cores; load at start {load()}"
    )

    os.sched_setaffinity(0, {cores[0]})
    blas = threadpool_limits(1)  # one core means one thread, for both contenders
    limits = Limits()
    contenders: dict[str, Callable[[Path], object]] = {
        "pdqhash + Pillow + hashlib, 1 core": peer,
        "vigil fingerprint_file, 1 core": lambda f: fingerprint_file(str(f), limits),
        "vigil fingerprint_file --fast-pdq, 1 core": lambda f: fingerprint_file(
            str(f), limits, True
        ),
    }
    for fn in contenders.values():  # imports, compiled kernels and warm-up outside the timing
        fn(files[0])
    runs = [interleaved(contenders, files) for _ in range(args.repeat)]
    os.sched_setaffinity(0, set(cores))
    blas.restore_original_limits()

    directory = str(photo_tree(args.photos, args.scan_copies))
    scan_files = len(files) * args.scan_copies
    warm([p for p in Path(directory).rglob("*.jpg")])

    def scan(workers: int) -> tuple[float, float, float]:
        """Wall seconds, CPU seconds of this (main) process, CPU seconds of the workers."""
        s0 = resource.getrusage(resource.RUSAGE_SELF)
        c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        Scanner([], ScanOptions(workers=workers), None).run([directory], CollectingSink())
        wall = time.perf_counter() - t
        s1 = resource.getrusage(resource.RUSAGE_SELF)
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        main_cpu = s1.ru_utime + s1.ru_stime - s0.ru_utime - s0.ru_stime
        workers_cpu = c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime
        return wall, main_cpu, workers_cpu

    scans = []
    for _ in range(args.repeat):  # alternate, so both see the same load
        scans.append((scan(1), scan(len(cores))))

    n = len(files)
    peer_name = next(iter(contenders))
    print(f"load at end {load()}")
    print(
        f"{'contender (1 core)':<42} {'images/s (wall)':>16} {'vs pdqhash':>11} {'CPU-time ratio':>15}"
    )
    for name in contenders:
        rates = [n / r[name][0] for r in runs]
        wall_ratios = [r[peer_name][0] / r[name][0] for r in runs]
        cpu_ratios = [r[peer_name][1] / r[name][1] for r in runs]
        print(
            f"{name:<42} {statistics.median(rates):>16.1f} "
            f"{statistics.median(wall_ratios):>10.2f}x {statistics.median(cpu_ratios):>14.2f}x"
        )
        if args.repeat > 1:
            print(
                f"    over {args.repeat} runs: ratio {stats(wall_ratios)}, CPU ratio {stats(cpu_ratios)}"
            )
    one = [a[0] for a, _ in scans]
    many = [b[0] for _, b in scans]
    speedups = [a[0] / b[0] for a, b in scans]
    print(
        f"vigil scan of {scan_files} photos, --workers 1: "
        f"{statistics.median([scan_files / t for t in one]):.1f} images/s; "
        f"--workers {len(cores)}: {statistics.median([scan_files / t for t in many]):.1f} images/s"
    )
    for label, (wall, main_cpu, workers_cpu) in (
        ("1", scans[-1][0]),
        (str(len(cores)), scans[-1][1]),
    ):
        print(
            f"    last scan, {label} worker(s): wall {wall:.2f} s, main process CPU {main_cpu:.2f} s, "
            f"workers CPU {workers_cpu:.2f} s"
        )
    print(f"all cores vs one core (scan): {stats(speedups)}x (median of {len(speedups)})")


if __name__ == "__main__":
    main()
