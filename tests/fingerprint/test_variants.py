"""Scanned-side PDQ variants as fingerprints: where the borders are found, that a variant is PDQ
of the region itself, every decode path, and the cache's round trip."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter
from skimage import data as skdata

from vigil.fingerprint.fingerprints import Fingerprints
from vigil.fingerprint.pdq import hamming, pdq_from_bytes
from vigil.fingerprint.variants import (
    MASK_BAND,
    MASK_CORNER,
    _centred,
    crop_band,
    masked_blocks,
    thumbnail,
    trim_boxes,
    variant_frames,
)

MAX = 50_000_000


def encode(image: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buf.getvalue()


def padded(image: Image.Image, top: int, bottom: int, left: int, right: int) -> Image.Image:
    canvas = Image.new(image.mode, (image.width + left + right, image.height + top + bottom), 30)
    canvas.paste(image, (left, top))
    return canvas


def variants(data: bytes) -> dict[str, tuple[str, int]]:
    pdq = pdq_from_bytes(data, max_pixels=MAX)
    return {name: (h, q) for name, h, q in pdq.variants}


def test_uneven_solid_borders_are_found_to_the_pixel() -> None:
    image = Image.fromarray(skdata.astronaut())
    plain = pdq_from_bytes(encode(image, "PNG"), max_pixels=MAX).hash
    copy = np.asarray(padded(image, 37, 61, 90, 25).convert("RGB"))
    exact, padding = variant_frames(copy, thumbnail(copy))
    assert [name for name, _, _ in padding] == [
        *("pad2", "pad3", "pad4", "pad5"),
        *("pad4t", "pad4b", "pad4l", "pad4r"),
    ]
    assert "trim" in [name for name, _, _ in exact]
    # Lossless: the picture inside the borders found hashes to the original's very hash.
    got = variants(encode(padded(image, 37, 61, 90, 25), "PNG"))
    assert hamming(got["trim"][0], plain) == 0


def test_the_trimmed_variant_is_the_pdq_of_the_picture_inside() -> None:
    image = Image.fromarray(skdata.coffee())
    plain = pdq_from_bytes(encode(image, "PNG"), max_pixels=MAX).hash
    got = variants(encode(padded(image, 40, 40, 60, 60), "PNG"))
    assert hamming(got["trim"][0], plain) == 0  # a lossless copy: the very same hash


def test_every_decode_path_gives_variants() -> None:
    image = Image.fromarray(skdata.chelsea())
    plain = pdq_from_bytes(encode(image, "PNG"), max_pixels=MAX).hash
    framed = padded(image, 50, 50, 50, 50)
    for data in (
        encode(framed, "JPEG"),  # libjpeg-turbo straight into pixels
        encode(framed.convert("L"), "JPEG"),  # greyscale JPEG
        encode(framed, "PNG"),  # Pillow's float luma
        encode(framed, "WEBP"),
    ):
        got = variants(data)
        assert min(hamming(h, plain) for name, (h, _) in got.items() if name != "pad2") <= 16
    fast = pdq_from_bytes(encode(framed, "JPEG"), max_pixels=MAX, fast=True)
    assert min(hamming(h, plain) for _, h, _ in fast.variants) <= 20


def test_no_border_no_trimmed_variant_and_tiny_images() -> None:
    image = np.asarray(Image.fromarray(skdata.astronaut()).convert("L"), dtype=np.float32)
    assert trim_boxes(thumbnail(image)) == {}
    tiny = pdq_from_bytes(encode(Image.new("RGB", (4, 4), 9), "PNG"), max_pixels=MAX)
    assert tiny.variants == ()


def test_variants_survive_the_cache_round_trip() -> None:
    data = encode(padded(Image.fromarray(skdata.rocket()), 30, 30, 30, 30), "JPEG")
    fp = Fingerprints(len(data), "0" * 32, "0" * 40, "0" * 64, "image/jpeg")
    fp.pdq = pdq_from_bytes(data, max_pixels=MAX)
    assert fp.pdq.variants
    back = Fingerprints.from_dict(fp.to_json_state())
    assert back == fp
    # Stored before the variants existed (a cluster checkpoint): read back without them.
    state = fp.to_json_state()
    del state["pdq"]["variants"]
    assert Fingerprints.from_dict(state).pdq.variants == ()  # type: ignore[union-attr]


def test_a_mirrored_border_is_placed_to_the_pixel() -> None:
    # Mirrored margins whose axis falls anywhere within a thumbnail bin (the black sky at the
    # deep field's edges mirrors about any line: the other sides place it).
    for name in ("hubble_deep_field", "coffee"):
        image = np.asarray(getattr(skdata, name)())
        plain = pdq_from_bytes(encode(Image.fromarray(image), "PNG"), max_pixels=MAX).hash
        for share in (0.05, 0.07, 0.09):
            py, px = round(image.shape[0] * share), round(image.shape[1] * share)
            copy = np.pad(image, ((py, py), (px, px), (0, 0)), mode="symmetric")
            got = variants(encode(Image.fromarray(copy), "PNG"))
            assert hamming(got["mirror"][0], plain) <= 2, (name, share)


def test_centre_is_the_width_the_finders_agree_on() -> None:
    # Rows padded by 15 bins, seen by two finders on one side or the other; a spurious border
    # on the columns (a mirror-like picture, a strong edge) is seen too.
    found = [(15.0, 15.0, 36.0, 37.0), (0.0, 15.5, 0.0, 0.0), (60.0, 0.0, 0.0, 0.0)]
    assert _centred(found, 256, 256) == (15.0, 15.0, 36.0, 36.0)
    # Nothing within the limits: no border.
    assert _centred([(2.0, 200.0, 0.0, 0.0)], 256, 256) == (0.0, 0.0, 0.0, 0.0)


def test_masked_blocks_fill_a_corner_or_band_from_around_it() -> None:
    rng = np.random.default_rng(5)
    block = rng.uniform(0, 255, (64, 64)).astype(np.float32)
    k, band = round(MASK_CORNER * 64), round(MASK_BAND * 64)
    regions = {
        "mask-tl": (slice(0, k), slice(0, k)),
        "mask-tr": (slice(0, k), slice(64 - k, 64)),
        "mask-bl": (slice(64 - k, 64), slice(0, k)),
        "mask-br": (slice(64 - k, 64), slice(64 - k, 64)),
        "mask-top": (slice(0, band), slice(0, 64)),
        "mask-bottom": (slice(64 - band, 64), slice(0, 64)),
    }
    masked = dict(masked_blocks(block))
    assert list(masked) == list(regions)
    for name, region in regions.items():
        # Whatever covers the region (a logo, a caption) is gone: the same block as without it.
        covered = block.copy()
        covered[region] = 255.0
        assert np.array_equal(dict(masked_blocks(covered))[name], masked[name]), name
        # Outside the region, the block as it was.
        outside = np.ones((64, 64), dtype=bool)
        outside[region] = False
        assert np.array_equal(masked[name][outside], block[outside]), name
        # Inside, values from its edge (never beyond the block's own range).
        assert block.min() <= masked[name][region].min() <= masked[name][region].max() <= 255


def blurred_fill(
    image: Image.Image, share: float, rows_only: bool, radius: float
) -> tuple[Image.Image, int, int]:
    """The picture pasted over a blurred copy of itself stretched to the canvas (`radius`: the
    Gaussian blur's share of the canvas's longer side), `share` of each side added on both
    sides (above and below only when `rows_only`): the copy and its border widths."""
    py, px = round(image.height * share), 0 if rows_only else round(image.width * share)
    size = (image.width + 2 * px, image.height + 2 * py)
    canvas = image.resize(size).filter(ImageFilter.GaussianBlur(max(size) * radius))
    canvas.paste(image, (px, py))
    return canvas, py, px


def test_a_blurred_fill_is_fitted_and_placed_to_the_pixel() -> None:
    # Copies on which the other finders place no border that lines up with the original (the
    # best of their variants is more than 31 bits away): the fill is fitted as the picture's
    # own blurred, enlarged copy, placed to the pixel (or two: the horse's silhouette meets the
    # fill in a soft edge), and its variant is the original's hash or within a few bits of it.
    # A light blur (a 120th of the side) and the benchmark's (a 40th), on all sides or above
    # and below only.
    cases = [
        ("camera", 0.12, False, 1 / 120, 0, 0),
        ("coffee", 0.12, True, 1 / 120, 0, 0),
        ("horse", 0.16, True, 1 / 40, 8, 2),
    ]
    for name, share, rows_only, radius, within, slack in cases:
        image = Image.fromarray(getattr(skdata, name)()).convert("RGB")
        plain = pdq_from_bytes(encode(image, "PNG"), max_pixels=MAX).hash
        copy, py, px = blurred_fill(image, share, rows_only, radius)
        got = variants(encode(copy, "PNG"))
        assert hamming(got["fill"][0], plain) <= within, name
        others = [hamming(h, plain) for n, (h, q) in got.items() if n != "fill" and q >= 50]
        assert min(others) > 31, name
        pixels = np.asarray(copy)
        exact, _ = variant_frames(pixels, thumbnail(pixels))
        row_band, col_band = next((r, c) for n, r, c in exact if n == "fill")
        # A band's first pixel is where its region starts, plus PDQ's own offset.
        assert abs(row_band[0][0] - crop_band(py, image.height)[0][0]) <= slack, name
        assert abs(col_band[0][0] - crop_band(px, image.width)[0][0]) <= slack, name
