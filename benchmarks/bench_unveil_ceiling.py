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
  hashed with PDQ's downscale of the thumbnail (as the re-padded variants are).

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
from vigil.fingerprint.variants import pad_band, thumbnail
from vigil.matching.settings import PDQ_VARIANT_DISTANCE

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _thumb_hash(thumb: np.ndarray) -> str:
    rows, cols = thumb.shape
    block = downscale_banded(thumb, pad_band(rows, 0, 0), pad_band(cols, 0, 0))
    return pdq_from_block(block).hash


def undone(data: bytes, layer: Image.Image) -> tuple[str, str]:
    """PDQ of the copy `data` with `layer` inverted on its pixels, and on its thumbnail."""
    decoded = decode_jpeg_pixels(data, max_pixels=10**9)
    assert decoded is not None
    pixels = decoded[0]
    observed = pixels[..., :3].astype(np.float32)
    rgba = np.asarray(layer, dtype=np.float32)
    alpha = rgba[..., 3:4] / 255.0
    tint = alpha * rgba[..., :3]  # a*c per pixel
    full = np.clip((observed - tint) / np.maximum(1.0 - alpha, 1e-3), 0.0, 255.0)
    on_pixels = pdq_from_luma(full @ _LUMA).hash
    thumb = thumbnail(pixels)
    bin_alpha = thumbnail(np.ascontiguousarray(alpha[..., 0] * 255.0)) / 255.0
    bin_tint = thumbnail(np.ascontiguousarray(tint @ _LUMA))
    on_thumb = np.clip((thumb - bin_tint) / np.maximum(1.0 - bin_alpha, 1e-3), 0.0, 255.0)
    return on_pixels, _thumb_hash(on_thumb)


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
    counts = {k: [0, 0, 0, 0] for k in kinds}  # copies, found now, + on pixels, + on thumbnail
    dists: dict[str, list[tuple[int, int]]] = {k: [] for k in kinds}
    for target, (image, listed_hash) in enumerate(listed):
        for label, make in kinds.items():
            for _ in range(args.samples):
                layer = make(image, rng, 0.05, 0.20)
                data = jpeg(Image.alpha_composite(image.convert("RGBA"), layer))
                hits = matcher.match_many([fingerprints(data)], default)[1][0]
                now = any(hit.entry_id == target for hit in hits)
                on_pixels, on_thumb = undone(data, layer)
                d_pixels, d_thumb = hamming(on_pixels, listed_hash), hamming(on_thumb, listed_hash)
                row = counts[label]
                row[0] += 1
                row[1] += now
                row[2] += now or d_pixels <= PDQ_VARIANT_DISTANCE
                row[3] += now or d_thumb <= PDQ_VARIANT_DISTANCE
                dists[label].append((d_pixels, d_thumb))
    print(f"{len(listed)} listed photos, {args.samples} copies each, seed {args.seed}")
    print(
        f"{'watermark':22}{'found now':>18}{'+ undone on pixels':>22}{'+ undone on thumbnail':>24}"
        f"{'median d pixels / thumb':>26}"
    )
    for label, (n, now, pixels, thumb) in counts.items():
        d = np.array(dists[label])
        cells = [f"{100 * k / n:5.1f}% ({k:>3}/{n})" for k in (now, pixels, thumb)]
        print(
            f"{label:22}{cells[0]:>18}{cells[1]:>22}{cells[2]:>24}"
            f"{np.median(d[:, 0]):>16.0f} / {np.median(d[:, 1]):.0f}"
        )


if __name__ == "__main__":
    main()
