"""Scanned-side PDQ variants: hashes of the picture re-framed to line up with the original's grid.

Police lists hold the PDQ of the original only. PDQ samples the whole picture on a 64x64 grid, so
a copy with a border added (padding, a screenshot's frame) or a few percent cut away (a crop) is
sampled on a shifted, rescaled grid and most of its bits move, although the picture is the same.
The video path already hashes a frame without its black bars (`video._cropped_hash`); this module
does the same for still images, and more:

- `trim`: the picture without uniform, blurred or mirrored borders;
- `padN`: the picture with N% of each side added back by repeating its edges (a copy cropped by
  about that much on every side lines up with the original again);
- `cropN`: the centre without N% of each side (a framed copy whose frame is not uniform).

All are computed from one small box-averaged luma thumbnail (`THUMB` bins a side), made in the
same pass over the decoded pixels as nothing else: the variants cost a few 256x256 products,
never another decode. The plain PDQ hash is untouched (bit-exact with the reference); a variant
is one more query, matched under the tighter rule of `vigil.matching.settings.VariantRule`.
"""

from __future__ import annotations

import functools

import numba
import numpy as np

from vigil.fingerprint.downscale import Band, _band, pixel_words

# Bins a side of the thumbnail the variants are cut from: PDQ's own blur spans 1/64 of a side,
# so 256 bins keep 4 per output pixel (its box windows fall on whole bins).
THUMB = 256

# The re-padding fractions (share of the scanned picture's side added on each side) and the
# centred crops (share of each side taken away), chosen with benchmarks/bench_robustness.py.
PAD_SHARES: tuple[int, ...] = (3, 6)
CROP_SHARES: tuple[int, ...] = (8,)

# The smallest side (pixels) of a region worth hashing.
MIN_SIDE = 16
# A border is at least this share of a side in total (less is JPEG ringing at the edge, not a
# frame) and leaves at least MIN_CONTENT of each side.
_MIN_BORDER = 0.02
_MIN_SIDE_BORDER = 0.03
_MIN_CONTENT = 0.4
# A solid border row/column: within this of the edge's level, with this little spread (0..255).
_SOLID_LEVEL = 6.0
_SOLID_SPREAD = 4.0
# A blurred border: its detail (mean absolute step between bins) under this share of the
# picture's median detail and under _BLUR_MAX outright.
_BLUR_SHARE = 0.2
_BLUR_MAX = 1.5
# A mirrored border: rows k-1-i and k+i differ by under this share of the typical difference
# between unrelated rows of the picture.
_MIRROR_SHARE = 0.12
_MAX_MIRROR = 0.25


@numba.njit(cache=True, nogil=True, fastmath=True)
def _bin_words(words: np.ndarray, out_rows: int, out_cols: int) -> np.ndarray:  # pragma: no cover
    # The rows of a bin summed first (a straight loop the compiler vectorises), then the sum
    # spread over the bins of its columns: one pass over the pixels.
    height, width = words.shape
    acc = np.zeros((out_rows, out_cols), dtype=np.float32)
    line = np.empty(width, dtype=np.float32)
    cidx = (np.arange(width) * out_cols) // width
    y = 0
    for r in range(out_rows):
        end = ((r + 1) * height + out_rows - 1) // out_rows
        line[:] = 0.0
        while y < end:
            row = words[y]
            for x in range(width):
                p = row[x]
                line[x] += np.float32(
                    np.int32(p & 255) * 299
                    + np.int32((p >> 8) & 255) * 587
                    + np.int32((p >> 16) & 255) * 114
                )
            y += 1
        a = acc[r]
        for x in range(width):
            a[cidx[x]] += line[x]
    return acc


@numba.njit(cache=True, nogil=True, fastmath=True)
def _bin_plane(plane: np.ndarray, out_rows: int, out_cols: int) -> np.ndarray:  # pragma: no cover
    height, width = plane.shape
    acc = np.zeros((out_rows, out_cols), dtype=np.float32)
    line = np.empty(width, dtype=np.float32)
    cidx = (np.arange(width) * out_cols) // width
    y = 0
    for r in range(out_rows):
        end = ((r + 1) * height + out_rows - 1) // out_rows
        line[:] = 0.0
        while y < end:
            row = plane[y]
            for x in range(width):
                line[x] += np.float32(row[x])
            y += 1
        a = acc[r]
        for x in range(width):
            a[cidx[x]] += line[x]
    return acc


def _counts(n: int, bins: int) -> np.ndarray:
    """Pixels in each bin of an axis of n pixels: pixel i is in bin i * bins // n (the kernels'
    row bins end at the first row of the next, the same rule)."""
    return np.bincount((np.arange(n) * bins) // n, minlength=bins).astype(np.float32)


def thumbnail(pixels: np.ndarray) -> np.ndarray:
    """Box-averaged luma (float32, 0..255) of at most THUMB x THUMB bins of decoded pixels:
    HxWx4 RGBX / HxWx3 RGB uint8 as the JPEG decoder gives them, or an HxW grey/luma plane."""
    rows, cols = pixels.shape[0], pixels.shape[1]
    out_rows, out_cols = min(rows, THUMB), min(cols, THUMB)
    if pixels.ndim == 3:
        words = pixel_words(pixels)
        acc = _bin_words(words, out_rows, out_cols)
        scale = np.float32(1000.0)
    else:
        acc = _bin_plane(np.ascontiguousarray(pixels), out_rows, out_cols)
        scale = np.float32(1.0)
    acc /= _counts(rows, out_rows)[:, None] * _counts(cols, out_cols)[None, :] * scale
    return acc


def _run(flags: np.ndarray) -> int:
    """Length of the run of True at the start of `flags`."""
    off = np.flatnonzero(~flags)
    return int(off[0]) if off.size else len(flags)


@numba.njit(cache=True, nogil=True)
def _mirror_scan(lines: np.ndarray, lo: int, hi: int, limit: float) -> int:  # pragma: no cover
    # Line k-1-i against line k+i for i < k: the mean absolute difference must stay under
    # `limit`; most k fail on their first pairs, so the scan is about one pass over the lines.
    n, width = lines.shape
    best, best_err = 0, limit
    for k in range(lo, min(hi, n // 2) + 1):
        total = 0.0
        budget = best_err * k * width
        for i in range(k):
            a = lines[k - 1 - i]
            b = lines[k + i]
            for x in range(width):
                total += abs(a[x] - b[x])
            if total > budget:
                break
        if total <= budget:
            best, best_err = k, total / (k * width)
    return best


def _mirror_run(lines: np.ndarray, typical: float) -> int:
    """Width of a mirrored border at the start of `lines` (rows of the thumbnail), or 0."""
    n = lines.shape[0]
    lo, hi = max(2, int(_MIN_BORDER * n)), int(_MAX_MIRROR * n)
    return int(_mirror_scan(np.ascontiguousarray(lines), lo, hi, _MIRROR_SHARE * typical))


def _border(lines: np.ndarray, detail: np.ndarray, blur_limit: float, typical: float) -> int:
    """Rows at the start of `lines` that are a border: solid, blurred or mirrored."""
    edge = float(np.median(lines[0]))
    solid = (np.abs(lines.mean(axis=1) - edge) < _SOLID_LEVEL) & (lines.std(axis=1) < _SOLID_SPREAD)
    blurred = detail < blur_limit
    return max(_run(solid | blurred), _mirror_run(lines, typical))


def trim_box(thumb: np.ndarray) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) bins of border around the picture in `thumb`, or None."""
    rows, cols = thumb.shape
    if rows < 16 or cols < 16:
        return None
    # Detail of each row (column): mean absolute step along it and to the next one.
    dx = np.abs(np.diff(thumb, axis=1))
    dy = np.abs(np.diff(thumb, axis=0))
    row_detail = dx.mean(axis=1)
    row_detail[:-1] += dy.mean(axis=1)
    col_detail = dy.mean(axis=0)
    col_detail[:-1] += dx.mean(axis=0)
    blur_rows = min(_BLUR_MAX, _BLUR_SHARE * float(np.median(row_detail)))
    blur_cols = min(_BLUR_MAX, _BLUR_SHARE * float(np.median(col_detail)))
    # How much two unrelated rows (columns) differ: the mirror test's yardstick.
    typical_r = float(np.abs(thumb[: rows // 2] - thumb[rows // 2 : rows // 2 * 2]).mean())
    typical_c = float(np.abs(thumb[:, : cols // 2] - thumb[:, cols // 2 : cols // 2 * 2]).mean())
    top = _border(thumb, row_detail, blur_rows, typical_r)
    bottom = _border(thumb[::-1], row_detail[::-1], blur_rows, typical_r)
    left = _border(thumb.T, col_detail, blur_cols, typical_c)
    right = _border(thumb.T[::-1], col_detail[::-1], blur_cols, typical_c)
    # A side trimmed by less than _MIN_SIDE_BORDER is the picture's own quiet edge, not a border.
    top, bottom = (0 if b < _MIN_SIDE_BORDER * rows else b for b in (top, bottom))
    left, right = (0 if b < _MIN_SIDE_BORDER * cols else b for b in (left, right))
    if rows - top - bottom < _MIN_CONTENT * rows or cols - left - right < _MIN_CONTENT * cols:
        return None
    if top + bottom < _MIN_BORDER * rows and left + right < _MIN_BORDER * cols:
        return None
    return top, bottom, left, right


@functools.lru_cache(maxsize=256)
def crop_band(start: int, length: int) -> Band:
    """PDQ's band matrix (vigil.fingerprint.pdq.downscale_band) of `length` pixels of an axis
    from pixel `start` on: the downscale of that region, on the whole image's pixels."""
    from vigil.fingerprint.pdq import downscale_band

    first, weights = downscale_band(length)
    shifted = first + start
    shifted.setflags(write=False)
    return shifted, weights


@functools.lru_cache(maxsize=64)
def pad_band(n: int, margin: int) -> Band:
    """PDQ's band matrix of an axis of n pixels with `margin` more on each side repeating the
    edge pixel: the weights of the margins folded onto the first and last pixel."""
    from vigil.fingerprint.pdq import _downscale_matrix

    dense = _downscale_matrix(n + 2 * margin)
    folded = np.array(dense[:, margin : margin + n], dtype=np.float32)
    folded[:, 0] += dense[:, :margin].sum(axis=1)
    folded[:, n - 1] += dense[:, margin + n :].sum(axis=1)
    return _band(folded)


def _first_pixel(bin_: int, n: int, bins: int) -> int:
    """The first of the n pixels in thumbnail bin `bin_` (pixel i is in bin i * bins // n)."""
    return -(-bin_ * n // bins)


def variant_frames(thumb: np.ndarray, shape: tuple[int, int]) -> list[tuple[str, Band, Band]]:
    """(name, row band, column band) of every variant of a picture of `shape` (rows, columns)
    whose thumbnail is `thumb`: the bands give its 64x64 block from the decoded pixels."""
    rows, cols = shape
    trows, tcols = thumb.shape
    out: list[tuple[str, Band, Band]] = []
    box = trim_box(thumb)
    if box is not None:
        top, bottom, left, right = box
        r0, r1 = _first_pixel(top, rows, trows), _first_pixel(trows - bottom, rows, trows)
        c0, c1 = _first_pixel(left, cols, tcols), _first_pixel(tcols - right, cols, tcols)
        if r1 - r0 >= MIN_SIDE and c1 - c0 >= MIN_SIDE:
            out.append(("trim", crop_band(r0, r1 - r0), crop_band(c0, c1 - c0)))
    for share in PAD_SHARES:
        pr, pc = max(1, round(rows * share / 100)), max(1, round(cols * share / 100))
        out.append((f"pad{share}", pad_band(rows, pr), pad_band(cols, pc)))
    for share in CROP_SHARES:
        cr, cc = round(rows * share / 100), round(cols * share / 100)
        if rows - 2 * cr >= MIN_SIDE and cols - 2 * cc >= MIN_SIDE:
            out.append((f"crop{share}", crop_band(cr, rows - 2 * cr), crop_band(cc, cols - 2 * cc)))
    return out


def warm() -> None:
    """Load (or compile) the thumbnail kernels now."""
    thumbnail(np.zeros((8, 8, 4), dtype=np.uint8))
    thumbnail(np.zeros((8, 8), dtype=np.uint8))
    thumbnail(np.zeros((8, 8), dtype=np.float32))
    _mirror_scan(np.zeros((32, 8), dtype=np.float32), 2, 8, 1.0)
    from vigil.fingerprint.downscale import downscale_pixels

    downscale_pixels(np.zeros((8, 8), dtype=np.float32))
