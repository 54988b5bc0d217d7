"""The variants' faster forms give the very values of the plain ones: the thumbnail made in PDQ's
own pass over the pixels, a region of all the rows made from that pass's row sums, and the
finders' compiled steps (the variants' hashes, and so the benchmark's recall, rest on it)."""

from __future__ import annotations

import io

import numba
import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from vigil.fingerprint.downscale import (
    downscale_banded,
    downscale_columns,
    downscale_pixels,
    downscale_pixels_binned,
    downscale_regions,
)
from vigil.fingerprint.image import decode_jpeg_pixels
from vigil.fingerprint.pdq import downscale_band, pdq_from_bytes, variant_hashes
from vigil.fingerprint.variants import (
    _BLUR_FLOOR,
    _FILL_SIGMAS,
    _FILL_STRUCTURE,
    _FLAT_STEP,
    _blur_pair,
    _blur_side,
    _corner_fill,
    _few_steps,
    _fill_blurred,
    _fill_errors,
    _fill_least,
    _fill_ratios,
    _flat_ends,
    _gauss,
    _halved,
    _luma_lines,
    _median,
    _mirror_pair,
    _quantile_rows,
    _strongest_step,
    _typical,
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
        assert [_few_steps(line, _FLAT_STEP, enough) for line in lines] == list(by_median)
        runs = [np.argmin(np.append(flags, False)) for flags in (by_median, by_median[::-1])]
        assert _flat_ends(lines, _FLAT_STEP, enough) == tuple(runs)
        # The refine's strongest step across lines: the first of the largest median steps.
        across = _quantile_rows(np.abs(np.diff(lines, axis=0)), 0.5)
        k = min(cols - 1, int(0.5 * (cols - 1)))
        assert _strongest_step(lines, k) == int(np.argmax(across))
        assert _strongest_step(lines.astype(np.float64), k) == int(np.argmax(across))
        assert _median(lines[0]) == float(np.median(lines[0]))
        assert _median(lines[:, 1]) == float(np.median(lines[:, 1]))
        # How much unrelated rows (columns) differ: the float32 |steps|' mean, in double
        # (NumPy's float32 mean is off by a few parts in ten million).
        h, w = rows // 2, cols // 2
        by_rows = np.abs(lines[:h] - lines[h : 2 * h]).astype(np.float64).mean()
        by_cols = np.abs(lines[:, :w] - lines[:, w : 2 * w]).astype(np.float64).mean()
        assert _typical(lines) == pytest.approx((by_rows, by_cols), rel=1e-12)
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


def test_regions_in_one_pass_equal_each_apart() -> None:
    rng = np.random.default_rng(7)
    for image in photos():
        for channels in (4, 3):
            decoded = decode_jpeg_pixels(jpeg(image), max_pixels=MAX)
            assert decoded is not None
            pixels = decoded[0] if channels == 4 else np.ascontiguousarray(decoded[0][..., :3])
            rows, cols = pixels.shape[0], pixels.shape[1]
            regions = []
            for _ in range(int(rng.integers(1, 6))):
                r0, c0 = int(rng.integers(0, rows // 4)), int(rng.integers(0, cols // 4))
                r1 = int(rng.integers(rows * 3 // 4, rows + 1))
                c1 = int(rng.integers(cols * 3 // 4, cols + 1))
                regions.append((crop_band(r0, r1 - r0), crop_band(c0, c1 - c0)))
                if rng.random() < 0.5:  # another region with the same rows, other columns
                    c2 = int(rng.integers(c0 + 16, cols + 1))
                    regions.append((regions[-1][0], crop_band(c0, c2 - c0)))
            together = downscale_regions(pixels, regions)
            for (row_band, col_band), block in zip(regions, together, strict=True):
                apart = downscale_banded(pixels, row_band, col_band)
                assert np.array_equal(block.view(np.uint32), apart.view(np.uint32))


def test_corner_fill_equals_its_numpy_form() -> None:
    rng = np.random.default_rng(10)
    for t in range(300):
        block = (rng.random((64, 64)) * 255).astype(np.float32)
        if t % 2:
            block = np.round(block)
        k = int(rng.integers(1, 40))
        for flip_rows, flip_cols in ((False, False), (False, True), (True, False), (True, True)):
            plain, compiled = block.copy(), block.copy()
            views = []
            for copy in (plain, compiled):
                view = copy[::-1] if flip_rows else copy
                views.append(view[:, ::-1] if flip_cols else view)
            i = np.arange(k, 0, -1, dtype=np.float32)
            down, across = i[:, None], i[None, :]
            below, beside = views[0][k, :k][None, :], views[0][:k, k][:, None]
            views[0][:k, :k] = (below * across + beside * down) / (down + across)
            _corner_fill(views[1], k)
            assert np.array_equal(plain.view(np.uint32), compiled.view(np.uint32))


@numba.njit(fastmath=True)
def _fill_errors_plain(
    grid: np.ndarray,
    blurred: np.ndarray,
    a: float,
    b: float,
    ga: float,
    fa: float,
    gb: float,
    fb: float,
) -> np.ndarray:  # pragma: no cover - compiled
    # `variants._fill_errors` as it was: each sum in `out`, added bin by bin, any blurs.
    rows, cols = grid.shape
    blurs = blurred.shape[0]
    out = np.zeros((2, blurs + 2))
    ia, ib = int(a), int(b)
    for y in range(rows):
        in_rows = y < ia or y >= rows - ia
        if not in_rows and ib == 0:
            continue
        py = min(max(ga + (y + 0.5) * fa - 0.5, 0.0), rows - 1.0)
        y0 = int(py)
        y1 = min(y0 + 1, rows - 1)
        wy = py - y0
        cy = min(max(y, ia), rows - 1 - ia)
        for x in range(cols):
            if not in_rows and ib <= x < cols - ib:
                continue
            k = 0 if in_rows else 1
            px = min(max(gb + (x + 0.5) * fb - 0.5, 0.0), cols - 1.0)
            x0 = int(px)
            x1 = min(x0 + 1, cols - 1)
            wx = px - x0
            q = grid[y, x]
            w00, w01 = (1 - wx) * (1 - wy), wx * (1 - wy)
            w10, w11 = (1 - wx) * wy, wx * wy
            for s in range(blurs):
                p = (
                    w00 * blurred[s, y0, x0]
                    + w01 * blurred[s, y0, x1]
                    + w10 * blurred[s, y1, x0]
                    + w11 * blurred[s, y1, x1]
                )
                out[k, s] += abs(q - p)
            cx = min(max(x, ib), cols - 1 - ib)
            out[k, blurs] += abs(q - grid[cy, cx])
            out[k, blurs + 1] += 1.0
    return out


def _fill_blurred_plain(grid: np.ndarray, scale: float) -> np.ndarray:
    """`variants._fill_blurred` as it was: the Gaussians' float32 products as they are."""
    rows, cols = grid.shape
    return np.stack(
        [_gauss(rows, s / scale) @ grid @ _gauss(cols, s / scale).T for s in _FILL_SIGMAS]
    )


def test_fill_fit_equals_its_plain_form() -> None:
    rng = np.random.default_rng(8)
    # Where the unscaled Gaussians' products are subnormal they lose bits, and the sum of a
    # few dozen of them is off by up to ~1e-43: values that small (2**-100 and under) may
    # differ in their last bits, depending on the order the machine's BLAS kernel adds in;
    # every value above them must be equal bit for bit.
    tiny = np.float32(2.0**-100)
    for t in range(300):
        n = 32 if t % 2 else 64
        grid = (rng.random((n, n)) * 255).astype(np.float32)
        if t % 3 == 0:
            grid[: n // 5] = np.float32(rng.random() * 255)  # a flat margin
        if t % 4 == 0:
            grid[:, : n // 4] = 0  # a black one: subnormal blurred values in it
        scale = 2.0 if n == 32 else 1.0
        blurred = _fill_blurred(grid, scale)
        plain = _fill_blurred_plain(grid, scale)
        # Equal wherever the plain product is well clear of the subnormals; under that, both
        # are ~0.
        normal = np.abs(plain) >= tiny
        assert np.array_equal(blurred[normal], plain[normal])
        assert np.all(np.abs(blurred[~normal]) < tiny)
        for mode in range(3):
            k = float(rng.integers(1, n // 3))
            a = 0.0 if mode == 1 else k
            b = 0.0 if mode == 0 else k
            fits = [(a, b, a, (n - 2 * a) / n, b, (n - 2 * b) / n)]
            f = min(fits[0][3], fits[0][5])
            fits.append((a, b, n * (1 - f) / 2, f, n * (1 - f) / 2, f))
            for fit in fits:
                assert np.array_equal(
                    _fill_errors(grid, blurred, *fit), _fill_errors_plain(grid, blurred, *fit)
                )


def test_fill_least_is_the_argmin_of_the_ratios() -> None:
    rng = np.random.default_rng(10)
    for t in range(300):
        n = int(rng.integers(1, 30))
        errors = rng.random((n, 2, len(_FILL_SIGMAS) + 2)) * 400
        errors[..., -1] = rng.integers(0, 120, (n, 2))  # the counts, some 0
        if t % 3 == 0:  # flat margins: under the structure bound
            errors[rng.random(n) < 0.5, :, -2] = 0.1
        if t % 5 == 0:  # equal ratios: the first of them
            errors[n // 2 :] = errors[0]
        for mode in range(3):
            axes = (0,) if mode == 0 else (1,) if mode == 1 else (0, 1)
            ratios = _fill_ratios(errors, axes)
            i = int(np.argmin(ratios))
            assert _fill_least(errors, mode, _FILL_STRUCTURE) == (float(ratios[i]), i)


def test_compiled_pairs_equal_their_python_forms() -> None:
    # `_blur_pair` and `_mirror_pair` are compiled as written: the same widths as the Python
    # functions give (their compiled steps called from Python), on blurred fills, mirrored
    # margins and plain pictures.
    rng = np.random.default_rng(11)
    found = 0
    for t in range(200):
        rows, cols = (int(n) for n in rng.integers(40, 300, 2))
        picture = rng.random((rows, cols)).astype(np.float32) * np.float32(rng.choice([2.0, 80.0]))
        k = int(rng.integers(2, rows // 5))
        if t % 2:  # mirrored margins at the top and the bottom
            picture[:k] = picture[2 * k - 1 : k - 1 : -1]
            picture[rows - k :] = picture[rows - k - 1 : rows - 2 * k - 1 : -1]
        detail = rng.random(rows) * 3.0
        if t % 3 == 0:  # a smooth fill at the start
            detail[:k] *= 0.01
        assert _blur_pair(detail) == _blur_pair.py_func(detail)
        half = _halved(picture)
        for full, lines in ((picture, half), (picture.T, np.ascontiguousarray(half.T))):
            typical = float(rng.random() * 20 + 1)
            pair = _mirror_pair(lines, full, typical, typical)
            assert pair == _mirror_pair.py_func(lines, full, typical, typical)
            found += pair != (0.0, 0.0)
    assert found >= 20  # mirrors were found, not only turned down


def test_blur_side_equals_its_numpy_form() -> None:
    rng = np.random.default_rng(9)
    for _ in range(300):
        n = int(rng.integers(16, 300))
        detail = rng.random(n) * float(rng.choice([0.1, 3.0, 50.0]))
        lo, hi, window = max(1, int(0.03 * n)), int(0.35 * n), max(4, n // 32)
        for line in (detail, detail[::-1].copy()):
            total = np.concatenate([[0.0], np.cumsum(line)])
            k = np.arange(lo, hi)
            before = total[k] / k
            after = (total[np.minimum(k + window, n)] - total[k]) / window
            expected = after / (before + _BLUR_FLOOR)
            assert np.array_equal(_blur_side(line, lo, hi, window), expected)
