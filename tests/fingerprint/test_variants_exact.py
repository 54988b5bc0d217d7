"""The variants' faster forms give the very values of the plain ones: the thumbnail made in PDQ's
own pass over the pixels, a region of all the rows made from that pass's row sums, and the
finders' compiled steps (the variants' hashes, and so the benchmark's recall, rest on it)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from vigil.fingerprint.downscale import (
    downscale_banded,
    downscale_columns,
    downscale_pixels,
    downscale_pixels_binned,
)
from vigil.fingerprint.image import decode_jpeg_pixels
from vigil.fingerprint.pdq import downscale_band, pdq_from_bytes, variant_hashes
from vigil.fingerprint.variants import (
    _FLAT_STEP,
    _abs_diff,
    _few_steps,
    _halved,
    _luma_lines,
    _median,
    _quantile_rows,
    _strongest_step,
    crop_band,
    thumbnail,
    thumbnail_bins,
    thumbnail_from_sums,
)

MAX = 50_000_000


def jpeg(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, "JPEG", quality=92)
    return buf.getvalue()


def photos() -> list[Image.Image]:
    astronaut = Image.fromarray(skdata.astronaut())
    coffee = Image.fromarray(skdata.coffee())
    return [
        astronaut.resize((1537, 1203)),
        coffee.resize((703, 1291)),
        astronaut.crop((13, 7, 314, 518)),  # odd sizes, more bins than PDQ has outputs
        coffee.resize((200, 150)),  # smaller than the thumbnail: a bin a pixel
    ]


@pytest.mark.parametrize("reduce", [1, 2])
def test_one_pass_gives_pdq_block_and_thumbnail_of_two(reduce: int) -> None:
    for image in photos():
        decoded = decode_jpeg_pixels(jpeg(image), max_pixels=MAX, reduce=reduce)
        assert decoded is not None
        pixels, full = decoded
        rows, cols = pixels.shape[0], pixels.shape[1]
        binned = downscale_pixels_binned(pixels, full, thumbnail_bins(rows, cols))
        assert binned is not None
        block, sums, row_sums = binned
        assert np.array_equal(block, downscale_pixels(pixels, full))
        assert np.array_equal(thumbnail_from_sums(sums, rows, cols, 1000.0), thumbnail(pixels))
        if full == (rows, cols):
            # A region of all the rows, its sides cut: from the row sums, as from the pixels.
            band = crop_band(cols // 10, cols - cols // 10 - cols // 7)
            assert np.array_equal(
                downscale_columns(row_sums, band),
                downscale_banded(pixels, downscale_band(rows), band),
            )


def test_variants_of_a_jpeg_are_those_of_its_pixels_hashed_apart() -> None:
    image = Image.fromarray(skdata.astronaut()).resize((1200, 1000))
    framed = Image.new("RGB", (1200 + 90 + 60, 1000), (20, 30, 40))  # side borders: all rows
    framed.paste(image, (90, 0))
    for copy in (framed, image):
        data = jpeg(copy)
        decoded = decode_jpeg_pixels(data, max_pixels=MAX)
        assert decoded is not None
        pixels, full = decoded
        apart = variant_hashes(pixels, downscale_pixels(pixels, full))
        assert pdq_from_bytes(data, max_pixels=MAX).variants == apart
        if copy is framed:  # the borders found, the region made from the row sums
            assert "trim" in [name for name, _, _ in apart]


def test_compiled_finder_steps_equal_their_numpy_forms() -> None:
    rng = np.random.default_rng(5)
    for _ in range(200):
        rows, cols = (int(n) for n in rng.integers(16, 300, 2))
        lines = (rng.random((rows, cols)) * float(rng.choice([0.6, 2.0, 80.0]))).astype(np.float32)
        lines[: int(rng.integers(0, rows // 3))] = np.float32(rng.random() * 255)  # flat lines
        # Flat lines: a count of small steps, for the median of the steps under _FLAT_STEP.
        steps = cols - 1
        enough = min(steps - 1, int(0.5 * (steps - 1))) + 1
        by_median = _quantile_rows(np.abs(np.diff(lines, axis=1)), 0.5) < _FLAT_STEP
        assert np.array_equal(_few_steps(lines, _FLAT_STEP, enough), by_median)
        # The refine's strongest step across lines: the first of the largest median steps.
        across = _quantile_rows(np.abs(np.diff(lines, axis=0)), 0.5)
        k = min(cols - 1, int(0.5 * (cols - 1)))
        assert _strongest_step(lines, k) == int(np.argmax(across))
        assert _strongest_step(lines.astype(np.float64), k) == int(np.argmax(across))
        assert _median(lines[0]) == float(np.median(lines[0]))
        assert _median(lines[:, 1]) == float(np.median(lines[:, 1]))
        half = lines[: rows // 2], lines[rows // 2 : rows // 2 * 2]
        assert float(_abs_diff(*half).mean()) == float(np.abs(half[0] - half[1]).mean())
        if rows >= 64 and cols >= 64:
            r, c = rows // 2 * 2, cols // 2 * 2
            top, bottom = lines[0:r:2], lines[1:r:2]
            quads = top[:, 0:c:2] + top[:, 1:c:2] + bottom[:, 0:c:2] + bottom[:, 1:c:2]
            assert np.array_equal(_halved(lines), quads * np.float32(0.25))


def test_pixel_lines_equal_the_numpy_luma() -> None:
    rng = np.random.default_rng(6)
    for _ in range(100):
        height, width = (int(n) for n in rng.integers(20, 2000, 2))
        pixels = rng.integers(0, 256, (height, width, int(rng.choice([3, 4]))), dtype=np.uint8)
        axis = int(rng.integers(0, 2))
        n = pixels.shape[axis]
        lo = int(rng.integers(0, n - 5))
        hi = int(rng.integers(lo + 1, min(n, lo + 40) + 1))
        step = max(1, pixels.shape[1 - axis] // 512)
        part = pixels[lo:hi, ::step] if axis == 0 else pixels[::step, lo:hi].swapaxes(0, 1)
        luma = part[..., 0] * 0.299 + part[..., 1] * 0.587 + part[..., 2] * 0.114
        assert np.array_equal(_luma_lines(pixels, lo, hi, axis), luma)
