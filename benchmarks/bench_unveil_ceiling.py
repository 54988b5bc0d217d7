"""How much undoing a semi-opaque watermark could give at best: the overlay known exactly.

Inside a semi-opaque overlay of colour c and opacity a the picture is observed = a*c + (1-a)*
original, so the original is (observed - a*c) / (1-a) up to rounding and JPEG noise. Before a
scanned-side variant tries to find a and c (an `unveil` variant), this measures what it could
reach if it found them perfectly, and at which resolution it would have to work. For the
robustness benchmark's caption and logo watermarks (`bench_robustness.text_layer`,
`logo_layer`: the same generators, drawn here with a seed of their own) on its listed photos:

- found now: the copy matches its photo under Vigil's default settings (plain PDQ, the
  variants, the agreement rule);
- undone on the pixels: the generator's own layer (per-pixel alpha and colour) inverted on the
  decoded JPEG's pixels, then PDQ of that; counted when within the variants' distance (28);
- undone on the thumbnail: the same inversion on the variants' 256x256 luma thumbnail (the
  layer's alpha and a*c luma averaged over each bin, as a finder working there would see them),
  hashed with PDQ's downscale of the thumbnail (as the re-padded variants are); and on the
  512-bin thumbnail `unveil` first took a band off on (`vigil.fingerprint.variants.fine_thumbnail`;
  it now undoes the band on the decoded pixels' rows).

    python -m benchmarks.bench_unveil_ceiling [--samples 3] [--seed 11]
"""

from __future__ import annotations

import argparse
import random

import numpy as np
from PIL import Image

from benchmarks.bench_robustness import (
    SETTINGS,
    fingerprints,
    jpeg,
    load_photos,
    logo_layer,
    make_matcher,
    reference,
    text_layer,
)
from vigil.fingerprint.downscale import downscale_banded
from vigil.fingerprint.image import decode_jpeg_pixels
from vigil.fingerprint.pdq import hamming, pdq_from_block, pdq_from_luma
from vigil.fingerprint.variants import fine_thumbnail, pad_band, thumbnail
from vigil.matching.settings import PDQ_VARIANT_DISTANCE

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _thumb_hash(thumb: np.ndarray) -> str:
    rows, cols = thumb.shape
    block = downscale_banded(thumb, pad_band(rows, 0, 0), pad_band(cols, 0, 0))
    return pdq_from_block(block).hash


def undone(data: bytes, layer: Image.Image) -> tuple[str, str, str]:
    """PDQ of the copy `data` with `layer` inverted on its pixels, on its thumbnail and on its
    finer thumbnail."""
    decoded = decode_jpeg_pixels(data, max_pixels=10**9)
    assert decoded is not None
    pixels = decoded[0]
    observed = pixels[..., :3].astype(np.float32)
    rgba = np.asarray(layer, dtype=np.float32)
    alpha = rgba[..., 3:4] / 255.0
    tint = alpha * rgba[..., :3]  # a*c per pixel
    full = np.clip((observed - tint) / np.maximum(1.0 - alpha, 1e-3), 0.0, 255.0)
    on_pixels = pdq_from_luma(full @ _LUMA).hash
    hashes = []
    for binned in (thumbnail, fine_thumbnail):
        thumb = binned(pixels)
        bin_alpha = binned(np.ascontiguousarray(alpha[..., 0] * 255.0)) / 255.0
        bin_tint = binned(np.ascontiguousarray(tint @ _LUMA))
        on_thumb = np.clip((thumb - bin_tint) / np.maximum(1.0 - bin_alpha, 1e-3), 0.0, 255.0)
        hashes.append(_thumb_hash(on_thumb))
    return on_pixels, hashes[0], hashes[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    listed = []
    for _, _, image in load_photos():
        hashes, quality = reference(image)
        if quality >= 50:
            listed.append((image, hashes[0]))
    table = np.frombuffer(bytes.fromhex("".join(h for _, h in listed)), np.uint8).reshape(-1, 32)
    matcher = make_matcher(table)
    default = SETTINGS["vigil default"]
    kinds = {"text caption 5-20%": text_layer, "logo 5-20%": logo_layer}
    # copies, found now, + on pixels, + on the thumbnail, + on the finer one
    counts = {k: [0, 0, 0, 0, 0] for k in kinds}
    dists: dict[str, list[tuple[int, int, int]]] = {k: [] for k in kinds}
    for target, (image, listed_hash) in enumerate(listed):
        for label, make in kinds.items():
            for _ in range(args.samples):
                layer = make(image, rng, 0.05, 0.20)
                data = jpeg(Image.alpha_composite(image.convert("RGBA"), layer))
                hits = matcher.match_many([fingerprints(data)], default)[1][0]
                now = any(hit.entry_id == target for hit in hits)
                d = tuple(hamming(h, listed_hash) for h in undone(data, layer))
                row = counts[label]
                row[0] += 1
                row[1] += now
                for i, one in enumerate(d):
                    row[2 + i] += now or one <= PDQ_VARIANT_DISTANCE
                dists[label].append((d[0], d[1], d[2]))
    print(f"{len(listed)} listed photos, {args.samples} copies each, seed {args.seed}")
    print(
        f"{'watermark':20}{'found now':>18}{'+ undone: pixels':>20}{'+ 256-bin thumb':>20}"
        f"{'+ 512-bin thumb':>20}   median d (pixels / 256 / 512)"
    )
    for label, (n, *found) in counts.items():
        d = np.median(np.array(dists[label]), axis=0)
        cells = [f"{100 * k / n:5.1f}% ({k:>3}/{n})" for k in found]
        print(
            f"{label:20}{cells[0]:>18}"
            + "".join(f"{c:>20}" for c in cells[1:])
            + f"   {d[0]:.0f} / {d[1]:.0f} / {d[2]:.0f}"
        )


if __name__ == "__main__":
    main()
