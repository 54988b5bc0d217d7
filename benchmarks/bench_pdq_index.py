"""PDQ radius search at scale: Vigil's multi-index against faiss's IndexBinaryMultiHash.

One run, one core (both pinned to one CPU, one thread), same hashes and queries:
- catalogs of N random PDQ hashes, and "realistic" ones: PDQ hashes of crops, flips and
  brightness changes of the benchmark photo corpus (`--real`, default 100,000 of them), the rest
  random; queries are altered copies (shifted/rescaled crops, or random bit flips of 0-40 bits)
  and unrelated hashes;
- recall of both against an exact brute-force scan (Vigil's must be identical);
- build time, queries/s at radius 31, bytes per hash of the index (hashes + tables), and the
  growth of resident memory while building it.

    python -m benchmarks.bench_pdq_index --n 1000000 [--kind random|real] [--queries 400]
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np

from vigil.matching.mih import MultiIndex, brute_force_search

RADIUS = 31


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def flip(rng: np.random.Generator, rows: np.ndarray, max_bits: int) -> np.ndarray:
    bits = np.unpackbits(rows, axis=1)
    for i in range(len(rows)):
        bits[i, rng.choice(256, int(rng.integers(0, max_bits + 1)), replace=False)] ^= 1
    return np.packbits(bits, axis=1)


def real_hashes(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """PDQ of random crops/flips/brightness changes of the corpus photos, and altered copies of
    the first quarter of them (a few pixels shifted, cut by up to 10%, brighter). Kept under
    bench-data/ once made (100,000 take a few minutes)."""
    from benchmarks.corpus import DATA

    kept = DATA / f"real-pdq-{count}-{seed}.npz"
    if kept.exists():
        with np.load(kept) as z:
            return z["real"], z["alts"]
    real, alts = _make_real_hashes(count, seed)
    kept.parent.mkdir(parents=True, exist_ok=True)
    np.savez(kept, real=real, alts=alts)
    return real, alts


def _make_real_hashes(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    from benchmarks.corpus import photos
    from vigil.fingerprint.pdq import pdq_from_luma

    rng = np.random.default_rng(seed)
    lumas = []
    for path in photos(300):
        with Image.open(path) as im:
            im.draft("RGB", (im.width // 4, im.height // 4))
            im = im.convert("L")
            im.thumbnail((320, 320))
            lumas.append(np.asarray(im, dtype=np.float32))
    out = np.empty((count, 32), dtype=np.uint8)
    alts = []
    for i in range(count):
        luma = lumas[int(rng.integers(len(lumas)))]
        h, w = luma.shape
        ch, cw = int(rng.integers(h // 3, h)), int(rng.integers(w // 3, w))
        y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        crop = luma[y : y + ch, x : x + cw]
        if rng.random() < 0.3:
            crop = crop[:, ::-1]
        crop = crop * np.float32(rng.uniform(0.7, 1.3))
        out[i] = np.frombuffer(bytes.fromhex(pdq_from_luma(crop).hash), np.uint8)
        if i < count // 4 and len(alts) < 2000:
            dy, dx = int(rng.integers(-4, 5)), int(rng.integers(-4, 5))
            sy, sx = max(0, y + dy), max(0, x + dx)
            alt = luma[
                sy : sy + int(ch * rng.uniform(0.9, 1.0)), sx : sx + int(cw * rng.uniform(0.9, 1.0))
            ]
            if rng.random() < 0.3:
                alt = alt[:, ::-1] if crop is not None else alt
            alt = alt * np.float32(rng.uniform(0.8, 1.2))
            alts.append(np.frombuffer(bytes.fromhex(pdq_from_luma(alt).hash), np.uint8))
    return out, np.array(alts)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--kind", choices=["random", "real"], default="random")
    ap.add_argument(
        "--real", type=int, default=100_000, help="real-photo hashes in a 'real' catalog"
    )
    ap.add_argument("--queries", type=int, default=400)
    ap.add_argument("--no-faiss", action="store_true")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs of Vigil's search (median)")
    args = ap.parse_args()
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    rng = np.random.default_rng(42)
    t = time.perf_counter()
    hashes = rng.integers(0, 256, (args.n, 32), dtype=np.uint8)
    nq = args.queries
    if args.kind == "real":
        real, alts = real_hashes(min(args.real, args.n), 7)
        pos = rng.choice(args.n, len(real), replace=False)
        hashes[pos] = real
        near = alts[rng.integers(0, len(alts), nq // 2)]
    else:
        near = flip(rng, hashes[rng.integers(0, args.n, nq // 2)], 40)
    queries = np.ascontiguousarray(
        np.vstack([near, rng.integers(0, 256, (nq - len(near), 32), dtype=np.uint8)])
    )
    print(
        f"{args.n:,} {args.kind} hashes, {nq} queries (half altered copies), radius {RADIUS}; "
        f"data in {time.perf_counter() - t:.1f} s; load {open('/proc/loadavg').read().split()[:3]}"
    )
    words, qwords = hashes.view(np.uint64), queries.view(np.uint64)

    brute_force_search(words[:10], qwords[:1], RADIUS)  # compile outside the timing
    t = time.perf_counter()
    truth = sorted(brute_force_search(words, qwords, RADIUS))
    t_brute = time.perf_counter() - t

    MultiIndex.build(words[:1000]).search(qwords[:1], RADIUS)  # compile outside the timing
    rss0 = rss_mib()
    t = time.perf_counter()
    index = MultiIndex.build(words)
    t_build = time.perf_counter() - t
    rss_build = rss_mib() - rss0
    index.search(qwords[:2], RADIUS)
    # The median of several timed runs: one run is a fraction of a second on a shared machine.
    runs = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        got = sorted(index.search(qwords, RADIUS))
        runs.append(time.perf_counter() - t)
    t_mih = float(np.median(runs))
    print("vigil multi-index, queries/s of each run: " + ", ".join(f"{nq / r:,.0f}" for r in runs))
    ours_bytes = hashes.nbytes + index.offsets.nbytes + index.rows.nbytes
    rows = [("brute force (numba scan)", 0.0, nq / t_brute, 1.0, hashes.nbytes, 0.0)]
    rows.append(
        (
            "vigil multi-index",
            t_build,
            nq / t_mih,
            len(set(got) & set(truth)) / max(1, len(truth)),
            ours_bytes,
            rss_build,
        )
    )
    assert got == truth, "multi-index answers differ from brute force"

    if not args.no_faiss:
        import faiss

        faiss.omp_set_num_threads(1)
        rss0 = rss_mib()
        t = time.perf_counter()
        fi = faiss.IndexBinaryMultiHash(256, 16, 16)
        fi.nflip = 1
        fi.add(hashes)
        f_build = time.perf_counter() - t
        f_rss = rss_mib() - rss0
        t = time.perf_counter()
        lims, dist, labels = fi.range_search(queries, RADIUS + 1)  # faiss: strictly below
        f_t = time.perf_counter() - t
        found = {(qi, int(labels[j])) for qi in range(nq) for j in range(lims[qi], lims[qi + 1])}
        recall = len(found & {(q, r) for q, r, _ in truth}) / max(1, len(truth))
        rows.append(
            (
                "faiss IndexBinaryMultiHash 16x16, nflip=1",
                f_build,
                nq / f_t,
                recall,
                float("nan"),
                f_rss,
            )
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"matches within {RADIUS}: {len(truth)}")
    print(
        f"{'contender':<44}{'build s':>9}{'queries/s':>11}{'recall':>8}{'bytes/hash':>12}{'RSS+ MiB':>10}"
    )
    for name, b, qps, rec, nbytes, rss in rows:
        print(f"{name:<44}{b:>9.1f}{qps:>11.0f}{rec:>8.3f}{nbytes / args.n:>12.1f}{rss:>10.0f}")
    print(f"vigil vs faiss: {rows[1][2] / rows[-1][2]:.1f}x queries/s" if not args.no_faiss else "")
    print(
        f"vigil vs brute force: {rows[1][2] / rows[0][2]:.1f}x queries/s; peak RSS {peak:.0f} MiB"
    )


if __name__ == "__main__":
    main()
