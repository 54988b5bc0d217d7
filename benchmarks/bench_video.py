"""Video fingerprinting speed: Vigil's vPDQ against Meta's `vpdq` binding, in the same run.

Both hash the same files (the sample videos of ../shared/conformance/pdq-vectors/tmk), one
thread each, at one frame per second (the default) and at every frame (`-r 0`), and the figure
is seconds of video fingerprinted per second of wall time. Runs alternate peer and Vigil per
file so that a noisy machine affects both alike; the best of `--repeat` runs is kept.

    python -m benchmarks.bench_video [--repeat 3] [--videos DIR]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import vpdq

from vigil.fingerprint.video import vpdq_of_video
from vigil.limits import Limits

DEFAULT_DIR = (
    Path(__file__).resolve().parents[1].parent / "shared/conformance/pdq-vectors/tmk/sample-videos"
)


def seconds_of(path: Path) -> float:
    result = vpdq_of_video(str(path), limits=Limits(), seconds_per_frame=3600)
    return float(result.info["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--videos", type=Path, default=DEFAULT_DIR)
    args = parser.parse_args()
    files = sorted(args.videos.glob("*.mp4"))
    total = sum(seconds_of(p) for p in files)
    print(
        f"{len(files)} videos, {total:.1f} s of video; {platform.processor() or platform.machine()}"
    )
    for every in (1.0, 0.0):
        best = {"vpdq": float("inf"), "vigil": float("inf")}
        for _ in range(args.repeat):
            spent = {"vpdq": 0.0, "vigil": 0.0}
            for path in files:
                t = time.perf_counter()
                theirs = vpdq.computeHash(str(path), seconds_per_hash=every, thread_count=1)
                spent["vpdq"] += time.perf_counter() - t
                t = time.perf_counter()
                ours = vpdq_of_video(str(path), limits=Limits(), seconds_per_frame=every)
                spent["vigil"] += time.perf_counter() - t
                assert [f.frame_number for f in theirs] == [f.index for f in ours.frames], path
            for k in best:
                best[k] = min(best[k], spent[k])
        label = "every frame" if every == 0 else f"1 frame / {every:g} s"
        peer, ours_rate = total / best["vpdq"], total / best["vigil"]
        print(
            f"{label:>14}: vpdq {peer:7.1f} s of video/s   vigil {ours_rate:7.1f} s of video/s   "
            f"ratio {ours_rate / peer:.2f}x"
        )


if __name__ == "__main__":
    main()
