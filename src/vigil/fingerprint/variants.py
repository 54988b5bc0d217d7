"""Scanned-side PDQ variants: hashes of the picture re-framed to line up with the original's grid.

Police lists hold the PDQ of the original only. PDQ samples the whole picture on a 64x64 grid, so
a copy with a border added (padding, a screenshot's frame) or a few percent cut away (a crop) is
sampled on a shifted, rescaled grid and most of its bits move, although the picture is the same.
The video path already hashes a frame without its black bars (`video._cropped_hash`); this module
does the same for still images, and more. Each variant is named in the match's `transform`:

- `trim`: the picture without flat borders (solid colour, gradients, window chrome);
- `frame`: the picture inside the strongest straight edges near its sides (a frame, a fill);
- `unblur`: the picture without a blurred fill (its margins much smoother than it);
- `mirror`: the picture without margins that reflect it;
- `centre`: the picture without one border width per axis on both sides, the width the above
  agree on (padding is mostly centred, and a finder often sees one side of it only); `centre-tb`,
  `centre-lr`: the same on one axis only (a spurious border found on the other);
- `fill`: the picture without a fill that is its own blurred copy stretched to the canvas
  (the margins fitted as the picture inside them, enlarged and blurred, and placed on their
  own, not in `centre`'s vote; `unblur` only sees that they are smoother);
- `padN`: the picture with N% of each side added back by repeating its edges (a copy cropped by
  about that much on every side lines up with the original again); `pad4t`, `pad4b`, `pad4l`,
  `pad4r`: 4% added on the top, bottom, left or right side only (a copy cut on one side);
- `mask-tl`, `mask-tr`, `mask-bl`, `mask-br`, `mask-top`, `mask-bottom`: PDQ's 64x64 downscale
  with a corner or the top or bottom band filled from around it (a logo, a caption).

Borders are looked for on a small box-averaged luma thumbnail (`THUMB` bins a side; of decoded
JPEG pixels made in the same pass over them as PDQ's own downscale, `downscale_pixels_binned`,
else in a pass of its own) and refined to the pixel; the picture inside them is then hashed
exactly as PDQ would hash that region of the file (its band matrices placed on the region, over
the same pixels: no copy, no second decode; a region of all the rows from the row sums of PDQ's
own pass). The re-padded variants are hashed from the thumbnail: their made-up margins already
differ from the original more than the thumbnail does. The plain PDQ hash is untouched
(bit-exact with the reference); a variant is one more query, matched under the
tighter distance of `vigil.matching.settings` (`pdq_variant_distance`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

import numba
import numpy as np

from vigil.fingerprint.downscale import Band, _band, pixel_words, word_luma

# Bins a side of the thumbnail the variants are cut from: PDQ's own blur spans 1/64 of a side,
# so 256 bins keep 4 per output pixel (its box windows fall on whole bins).
THUMB = 256

# The re-padding fractions (share of the scanned picture's side added on each side), chosen
# with benchmarks/bench_robustness.py (a copy cropped by 2-4% on every side).
PAD_SHARES: tuple[int, ...] = (2, 3, 4, 5)
# The share added back on one side only (`pad4t`, `pad4b`, `pad4l`, `pad4r`: top, bottom, left,
# right), for a copy cut on one side.
SIDE_SHARE = 4

# The watermark variants (`masked_blocks`): a corner of this share of each side, a band of this
# share of the height at the top or the bottom, filled from around it. Chosen with
# benchmarks/bench_robustness.py (logos of 5-20% of the area in a corner, captions).
MASK_CORNER = 0.35
MASK_BAND = 0.2
# The smallest side (pixels) of a region worth hashing.
MIN_SIDE = 16
# A mirror is looked for from _MIN_BORDER of a side; a border on one side counts from
# _MIN_SIDE_BORDER of it (less is the picture's own quiet edge), and borders leave at least
# _MIN_CONTENT of each side.
_MIN_BORDER = 0.02
_MIN_SIDE_BORDER = 0.03
_MIN_CONTENT = 0.4
# A flat line of the thumbnail: its median step under this (levels of 0..255).
_FLAT_STEP = 0.5
# A border found on the halved thumbnail is refined to the pixel within this many bins of the
# thumbnail either side.
_REFINE_BINS = 2
# A blurred fill: the lines just inside it have _BLUR_RATIO times its detail (mean step along a
# line; _BLUR_FLOOR keeps a perfectly smooth fill from dividing by 0).
_BLUR_RATIO = 4.0
_BLUR_FLOOR = 0.05
# A straight edge: the median step across a line of bins at least this, and at least
# _EDGE_SHARE times the median over all lines; looked for within _MAX_EDGE of each side.
_EDGE_STEP = 3.0
_EDGE_SHARE = 4.0
_MAX_EDGE = 0.35
# A mirrored border: rows k-1-i and k+i differ by under this share of the typical difference
# between unrelated rows of the picture.
_MIRROR_SHARE = 0.12
# On the halved thumbnail a mirror's axis falls anywhere within a bin, so it is looked for there
# under this looser share, then placed and checked (under _MIRROR_SHARE) on the thumbnail itself.
_MIRROR_LOOSE = 0.4
# A mirror's axis is placed to the pixel by this many pairs of pixel lines about it.
_MIRROR_PAIRS = 6
# Borders of the finders' sides within this share of a side of each other agree (`centre`).
_AGREE = 0.01
# ... and on the thumbnail: the axis's error at most _MIRROR_CONTROL times that of the axis a
# bin further out or in; when that is under _MIRROR_FLAT of the limit, the margin is flat.
_MIRROR_CONTROL = 0.7
_MIRROR_FLAT = 0.05
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
                line[x] += word_luma(p)
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


@functools.lru_cache(maxsize=256)
def _counts(n: int, bins: int) -> np.ndarray:
    """Pixels in each bin of an axis of n pixels: pixel i is in bin i * bins // n (the kernels'
    row bins end at the first row of the next, the same rule)."""
    # Bin b holds pixels ceil(b n / bins) .. ceil((b + 1) n / bins) - 1.
    counts = np.diff(-((np.arange(bins + 1) * -n) // bins)).astype(np.float32)
    counts.setflags(write=False)
    return counts


def thumbnail_bins(rows: int, cols: int) -> tuple[int, int]:
    """Bins (rows, columns) of the thumbnail of a picture of rows x cols pixels."""
    return min(rows, THUMB), min(cols, THUMB)


def thumbnail_from_sums(sums: np.ndarray, rows: int, cols: int, scale: float) -> np.ndarray:
    """The thumbnail of a picture of rows x cols pixels from its luma summed over each bin
    (times `scale`), as a pass over the pixels left them (`downscale_pixels_binned` makes
    them beside PDQ's own downscale); in place."""
    out_rows, out_cols = sums.shape
    _divide_bins(sums, _counts(rows, out_rows), _counts(cols, out_cols), np.float32(scale))
    return sums


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _divide_bins(
    sums: np.ndarray, row_counts: np.ndarray, col_counts: np.ndarray, scale: np.float32
) -> None:  # pragma: no cover - compiled
    # sums /= row count x column count x scale, multiplied in that order in float32 (as the
    # broadcast product was), without the product's array. NumPy's error model: no check of
    # each divisor (a count, never 0), so the loop is vectorised.
    for i in range(sums.shape[0]):
        line = sums[i]
        count = row_counts[i]
        for j in range(sums.shape[1]):
            line[j] /= count * col_counts[j] * scale


def thumbnail(pixels: np.ndarray) -> np.ndarray:
    """Box-averaged luma (float32, 0..255) of at most THUMB x THUMB bins of decoded pixels:
    HxWx4 RGBX / HxWx3 RGB uint8 as the JPEG decoder gives them, or an HxW grey/luma plane."""
    rows, cols = pixels.shape[0], pixels.shape[1]
    out_rows, out_cols = thumbnail_bins(rows, cols)
    if pixels.ndim == 3:
        words = pixel_words(pixels)
        return thumbnail_from_sums(_bin_words(words, out_rows, out_cols), rows, cols, 1000.0)
    acc = _bin_plane(np.ascontiguousarray(pixels), out_rows, out_cols)
    return thumbnail_from_sums(acc, rows, cols, 1.0)


# Bins a side of the finer luma thumbnail `fine_thumbnail` makes (`unlogo` undoes a region
# there; benchmarks/bench_unveil_ceiling.py measures undoing on it).
FINE = 512


def fine_thumbnail(pixels: np.ndarray) -> np.ndarray:
    """Box-averaged luma (float32, 0..255) of at most FINE x FINE bins of decoded pixels (as
    `thumbnail` takes them)."""
    rows, cols = pixels.shape[0], pixels.shape[1]
    out_rows, out_cols = min(rows, FINE), min(cols, FINE)
    if pixels.ndim == 3:
        acc = _bin_words(pixel_words(pixels), out_rows, out_cols)
        scale = np.float32(1000.0)
    else:
        acc = _bin_plane(np.ascontiguousarray(pixels), out_rows, out_cols)
        scale = np.float32(1.0)
    acc /= _counts(rows, out_rows)[:, None] * _counts(cols, out_cols)[None, :] * scale
    return acc


@numba.njit(cache=True, nogil=True, fastmath=True)
def _line_distance(a: np.ndarray, b: np.ndarray) -> float:  # pragma: no cover
    # The sum of |a - b| (float32 steps added in double, several sums at once: the mirror scans
    # were bound by one long chain of additions). Exact, so in any order, unless a line holds
    # values under ~1/500 beside large ones.
    total = 0.0
    for x in range(a.shape[0]):
        total += abs(a[x] - b[x])
    return total


@numba.njit(cache=True, nogil=True)
def _mirror_error_at(
    lines: np.ndarray, h: int, cap: float, flip: bool
) -> float:  # pragma: no cover
    # The mean absolute difference between the lines mirrored about half-bin position h/2
    # (h even: between lines h/2-1 and h/2; odd: through line h//2, not compared), every pair
    # the lines allow, the outermost first; inf as soon as it is sure to be over `cap`. `flip`:
    # the lines counted from the end (no reversed copy).
    k = h // 2
    gap = h & 1
    n, width = lines.shape
    pairs = min(k, n - k - gap)
    if pairs <= 0:
        return np.inf
    total = 0.0
    for m in range(pairs):
        i = pairs - 1 - m
        ia, ib = k - 1 - i, k + gap + i
        total += _line_distance(
            lines[n - 1 - ia if flip else ia], lines[n - 1 - ib if flip else ib]
        )
        if total > cap * max(m + 1, 4) * width:
            return np.inf
    return total / (pairs * width)


@numba.njit(cache=True, nogil=True)
def _mirror_errors(
    lines: np.ndarray, lo: int, hi: int, limit: float, flip: bool
) -> np.ndarray:  # pragma: no cover
    # err[h]: mean absolute difference between the lines mirrored about half-bin position h/2
    # (h even: between lines h/2-1 and h/2; odd: through the middle of line h//2), over the
    # lines before the axis; inf past `limit`. The outermost pairs (the farthest apart) are
    # compared first: where there is no mirror they differ at once and the position is dropped
    # after a few pairs, so the whole scan costs about one pass over the lines.
    err = np.full(2 * hi + 2, np.inf)
    for h in range(2 * lo, 2 * min(hi, (lines.shape[0] - 1) // 2) + 1):
        err[h] = _mirror_error_at(lines, h, limit, flip)
    return err


@numba.njit(cache=True, nogil=True)
def _mirror_refined(
    lines: np.ndarray, h: int, limit: float, flip: bool
) -> float:  # pragma: no cover - compiled
    """The mirror's axis near half-bin position h/2 of `lines` (the full thumbnail's), in bins
    to half a bin, or 0 when there is none: the best position's error under `limit`, and well
    under that of the axis a line further out or in (a picture reflected matches about one axis
    only; a flat margin matches about any, and is kept where it was found); from the end of
    the lines when `flip`. Compiled: seven scans a call, a few calls an image."""
    where, best = -1, np.inf
    for cand in range(max(2, h - 2), h + 3):
        error = _mirror_error_at(lines, cand, 2 * limit, flip)
        if where < 0 or error < best:  # the first of equals, as min() over them in order
            where, best = cand, error
    if best >= limit:
        return 0.0
    control = min(
        _mirror_error_at(lines, where - 2, np.inf, flip),
        _mirror_error_at(lines, where + 2, np.inf, flip),
    )
    if control < _MIRROR_FLAT * limit:
        return h / 2  # flat about the axis: the position found on the halved thumbnail
    if best >= _MIRROR_CONTROL * control:
        return 0.0
    return where / 2


@numba.njit(cache=True, nogil=True)
def _mirror_pair(
    half: np.ndarray, full: np.ndarray, typical: float, typical_full: float
) -> tuple[float, float]:  # pragma: no cover - compiled
    """Widths (in bins of `full`, to half a bin) of mirrored borders at the start and the end
    of the lines: looked for on `half` (the thumbnail halved, or itself), where an axis falls
    between bins and the reflection is only roughly there (so a loose test), then placed and
    checked on `full`. The same on both sides when the two agree on one (a centred picture),
    else each its own. `full` may be a view (the thumbnail transposed): its lines are copied
    into memory order only when the halved scan finds a mirror to place.
    Compiled, as `_blur_pair`."""
    n = half.shape[0]
    scale = full.shape[0] // n
    lo, hi = max(2, int(_MIN_BORDER * n)), int(_MAX_MIRROR * n)
    loose = _MIRROR_LOOSE * typical
    start = _mirror_errors(half, lo, hi, 2 * loose, False)
    end = _mirror_errors(half, lo, hi, 2 * loose, True)
    limit = _MIRROR_LOOSE * typical_full
    both = (start + end) / 2
    h, hs, he = int(np.argmin(both)), int(np.argmin(start)), int(np.argmin(end))
    if min(both[h], start[hs], end[he]) >= loose:
        return 0.0, 0.0
    lines = np.ascontiguousarray(full)
    if both[h] < loose:
        first = _mirror_refined(lines, h * scale, limit, False)
        last = _mirror_refined(lines, h * scale, limit, True)
        if first and last:
            return first, last
    first = _mirror_refined(lines, hs * scale, limit, False) if start[hs] < loose else 0.0
    last = _mirror_refined(lines, he * scale, limit, True) if end[he] < loose else 0.0
    return first, last


def _quantile_rows(values: np.ndarray, share: float) -> np.ndarray:
    """The `share` quantile (lower) of each row of `values` (np.partition: a tenth of the cost
    of np.percentile on these small arrays)."""
    k = min(values.shape[1] - 1, int(share * (values.shape[1] - 1)))
    return np.partition(values, k, axis=1)[:, k]


def _flat_pair(lines: np.ndarray) -> tuple[float, float]:
    """Lines at the start and at the end of `lines` that are flat along their length: a solid
    border, a gradient, or window chrome (a title bar is flat but for its text: the median step
    along it is still about 0, where a photograph's is not)."""
    steps = lines.shape[1] - 1
    # The median (lower) of a line's |steps| is under _FLAT_STEP when more than k of them are.
    k = min(steps - 1, int(0.5 * (steps - 1)))
    first, last = _flat_ends(np.ascontiguousarray(lines), _FLAT_STEP, k + 1)
    return float(first), float(last)


@numba.njit(cache=True, nogil=True)
def _few_steps(line: np.ndarray, step: float, enough: int) -> bool:  # pragma: no cover
    # At least `enough` of the line's |steps| (float32, as np.diff) under `step` (a count, where
    # the median's partition cost ten times as much).
    below = np.float32(step)
    count = 0
    for j in range(line.shape[0] - 1):
        count += abs(line[j + 1] - line[j]) < below
    return count >= enough


@numba.njit(cache=True, nogil=True)
def _flat_ends(lines: np.ndarray, step: float, enough: int) -> tuple[int, int]:  # pragma: no cover
    # The runs of lines with `_few_steps` at the start and at the end of `lines` (each line
    # looked at only until the run ends: on most photographs, the first).
    n = lines.shape[0]
    first = 0
    while first < n and _few_steps(lines[first], step, enough):
        first += 1
    last = 0
    while last < n and _few_steps(lines[n - 1 - last], step, enough):
        last += 1
    return first, last


@numba.njit(cache=True, nogil=True)
def _blur_side(
    detail: np.ndarray, lo: int, hi: int, window: int
) -> np.ndarray:  # pragma: no cover - compiled
    """For each border width k in lo..hi-1: how much more detail the `window` lines after it
    have than the k lines before it (a blurred fill is smooth, the picture is not)."""
    # As NumPy's cumsum (added in order from 0), then each width's two means and their ratio,
    # each an operation of float64s as the array expressions did them.
    n = detail.shape[0]
    total = np.empty(n + 1)
    total[0] = 0.0
    for i in range(n):
        total[i + 1] = total[i] + detail[i]
    out = np.empty(max(hi - lo, 0))
    for k in range(lo, hi):
        before = total[k] / k
        after = (total[min(k + window, n)] - total[k]) / window
        out[k - lo] = after / (before + _BLUR_FLOOR)
    return out


@numba.njit(cache=True, nogil=True, fastmath=True)
def _details(thumb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
    # The mean |step| along each row and along each column: one pass over the thumbnail.
    rows, cols = thumb.shape
    along_rows = np.zeros(rows, dtype=np.float64)
    along_cols = np.zeros(cols, dtype=np.float64)
    for y in range(rows):
        line = thumb[y]
        total = 0.0
        for x in range(cols - 1):
            total += abs(line[x + 1] - line[x])
        along_rows[y] = total / max(cols - 1, 1)
        if y + 1 < rows:
            below = thumb[y + 1]
            for x in range(cols):
                along_cols[x] += abs(below[x] - line[x])
    along_cols /= max(rows - 1, 1)
    return along_rows, along_cols


@numba.njit(cache=True, nogil=True)
def _blur_pair(detail: np.ndarray) -> tuple[float, float]:  # pragma: no cover - compiled
    """Widths of blurred fills at the start and the end of lines whose mean |step| along each
    is `detail`: the same on both sides when one width stands out on both (a centred picture),
    else each side's own, or 0. Compiled (as it is written: the tests compare it with its
    Python form): its array steps cost more in calls than in work."""
    n = detail.shape[0]
    lo, hi = max(1, int(_MIN_SIDE_BORDER * n)), int(_MAX_EDGE * n)
    if hi <= lo:
        return 0.0, 0.0
    window = max(4, n // 32)
    start = _blur_side(detail, lo, hi, window)
    end = _blur_side(detail[::-1].copy(), lo, hi, window)
    both = np.minimum(start, end)
    k = int(np.argmax(both))
    if both[k] >= _BLUR_RATIO:
        return float(lo + k), float(lo + k)
    ks, ke = int(np.argmax(start)), int(np.argmax(end))
    first = float(lo + ks) if start[ks] >= _BLUR_RATIO else 0.0
    last = float(lo + ke) if end[ke] >= _BLUR_RATIO else 0.0
    return first, last


# A fill fitted as the picture's own blurred, enlarged copy (`fill`): the picture inside a
# border of a given width, stretched onto the whole canvas (to fit, or to cover it at one
# scale) and blurred, predicts the margins; the fill is there when that prediction's error is
# under _FILL_RATIO of the error of the picture's edge simply continued (plus _FILL_FLOOR a
# bin: noise). Looked for on the thumbnail quartered (64 bins a side) halved, under
# _FILL_LOOSE, then placed on the quartered one; margins whose edge continued is off by less
# than _FILL_STRUCTURE a bin are nearly flat (any fill fits them: the other finders' case).
# The blurs tried (_FILL_SIGMAS, Gaussian, bins of 64 a side) span a 120th to a 15th of the
# side, box blurs among them; borders of up to _MAX_FILL of a side.
_FILL_SIGMAS = (0.0, 1.0, 2.0, 4.0)
_FILL_RATIO = 0.5
_FILL_LOOSE = 0.7
_FILL_STRUCTURE = 1.5
_FILL_FLOOR = 0.5
_MAX_FILL = 0.3
# A fill's border is placed to the pixel within _FILL_REACH bins of the thumbnail of the
# fitted one, by the detail along _FILL_LINES pixel lines either side of it (the fill is
# smooth, the picture is not), on both sides of the axis together, then each side within
# _FILL_SLACK lines of that.
_FILL_REACH = 4
_FILL_LINES = 3
_FILL_SLACK = 2


@functools.lru_cache(maxsize=64)
def _gauss(n: int, sigma: float) -> np.ndarray:
    """The n x n matrix of a Gaussian blur of `sigma` bins along a line of n (rows sum to 1)."""
    if sigma <= 0:
        return np.eye(n, dtype=np.float32)
    x = np.arange(n)
    weights = np.exp(-0.5 * ((x[:, None] - x[None, :]) / sigma) ** 2)
    return np.asarray(weights / weights.sum(axis=1, keepdims=True), dtype=np.float32)


# `_gauss` is scaled by _BLUR_SCALE (a power of two: exact) for the blurs' products, and their
# result by its inverse squared: the Gaussian's tails are subnormal floats in float32 (weights
# under 2^-126), and a product with one costs a hundred times a normal one on many processors
# (the blurs were half of the `fill` finder's time). Scaled, every weight is a normal float
# and every product and sum is the unscaled one times 2^96, to the bit, wherever the unscaled
# one is a normal float: the blurred values differ only where they are under 2^-126 (a margin
# of exact zeros: black), there by a few units of 2^-149 (both ~0 for every use of them).
_BLUR_SCALE = np.float32(2.0**48)
_BLUR_UNSCALE = np.float32(2.0**-96)


@functools.lru_cache(maxsize=64)
def _gauss_scaled(n: int, sigma: float) -> np.ndarray:
    """`_gauss(n, sigma)` times _BLUR_SCALE."""
    scaled = _gauss(n, sigma) * _BLUR_SCALE
    scaled.setflags(write=False)
    return scaled


# The floating-point liberties `_fill_errors` takes: all of fastmath's but reassociation (its
# sums are added in the order written: bin by bin, each prediction's four terms in turn).
_NO_REASSOC = {"contract", "nnan", "ninf", "nsz", "arcp", "afn"}


@numba.njit(cache=True, nogil=True, fastmath=_NO_REASSOC)
def _fill_errors(
    grid: np.ndarray,
    blurred: np.ndarray,
    a: float,
    b: float,
    ga: float,
    fa: float,
    gb: float,
    fb: float,
) -> np.ndarray:  # pragma: no cover
    # Over the margins (rows before a and after rows - a: out[0]; the columns before b and
    # after cols - b, outside those rows: out[1]), the sum of |grid - prediction| for each
    # blur of `blurred` (the fill predicted as the picture inside stretched onto the canvas:
    # bin (y, x) from (ga + (y + 1/2) fa - 1/2, gb + (x + 1/2) fb - 1/2) of the blurred grid,
    # bilinear), then the sum for the edge bins of the picture repeated (the fill as a solid
    # continuation), then the count of bins. Four blurs (_FILL_SIGMAS), each sum a local
    # added bin by bin (rows, then columns, ascending: a sum in the array waited on its store
    # every bin), one margin (out[0], out[1]) after the other; each column's sampling found
    # once. The sums' terms and their order are those of the loop over the bins with the sums
    # in `out` (fastmath, which did not reorder them there; the tests compare the two).
    rows, cols = grid.shape
    out = np.zeros((2, 6))
    ia, ib = int(a), int(b)
    x0s = np.empty(cols, dtype=np.int64)
    x1s = np.empty(cols, dtype=np.int64)
    wxs = np.empty(cols)
    cxs = np.empty(cols, dtype=np.int64)
    for x in range(cols):
        px = min(max(gb + (x + 0.5) * fb - 0.5, 0.0), cols - 1.0)
        x0 = int(px)
        x0s[x] = x0
        x1s[x] = min(x0 + 1, cols - 1)
        wxs[x] = px - x0
        cxs[x] = min(max(x, ib), cols - 1 - ib)
    for k in range(2):
        e0 = e1 = e2 = e3 = solid = count = 0.0
        for y in range(rows):
            in_rows = y < ia or y >= rows - ia
            if in_rows != (k == 0) or (not in_rows and ib == 0):
                continue
            py = min(max(ga + (y + 0.5) * fa - 0.5, 0.0), rows - 1.0)
            y0 = int(py)
            y1 = min(y0 + 1, rows - 1)
            wy = py - y0
            cy = min(max(y, ia), rows - 1 - ia)
            for x in range(cols):
                if not in_rows and ib <= x < cols - ib:
                    continue
                wx = wxs[x]
                x0 = x0s[x]
                x1 = x1s[x]
                q = grid[y, x]
                w00, w01 = (1 - wx) * (1 - wy), wx * (1 - wy)
                w10, w11 = (1 - wx) * wy, wx * wy
                e0 += abs(
                    q
                    - (
                        w00 * blurred[0, y0, x0]
                        + w01 * blurred[0, y0, x1]
                        + w10 * blurred[0, y1, x0]
                        + w11 * blurred[0, y1, x1]
                    )
                )
                e1 += abs(
                    q
                    - (
                        w00 * blurred[1, y0, x0]
                        + w01 * blurred[1, y0, x1]
                        + w10 * blurred[1, y1, x0]
                        + w11 * blurred[1, y1, x1]
                    )
                )
                e2 += abs(
                    q
                    - (
                        w00 * blurred[2, y0, x0]
                        + w01 * blurred[2, y0, x1]
                        + w10 * blurred[2, y1, x0]
                        + w11 * blurred[2, y1, x1]
                    )
                )
                e3 += abs(
                    q
                    - (
                        w00 * blurred[3, y0, x0]
                        + w01 * blurred[3, y0, x1]
                        + w10 * blurred[3, y1, x0]
                        + w11 * blurred[3, y1, x1]
                    )
                )
                solid += abs(q - grid[cy, cxs[x]])
                count += 1.0
        out[k, 0] = e0
        out[k, 1] = e1
        out[k, 2] = e2
        out[k, 3] = e3
        out[k, 4] = solid
        out[k, 5] = count
    return out


@numba.njit(cache=True, nogil=True)
def _fill_scan(
    grid: np.ndarray, blurred: np.ndarray, lo: int, hi: int, mode: int
) -> np.ndarray:  # pragma: no cover
    # _fill_errors of borders lo..hi bins wide, stretched to fit: on the rows only (mode 0),
    # the columns only (1), or both by the same share of their side (2).
    rows, cols = grid.shape
    out = np.zeros((hi - lo + 1, 2, blurred.shape[0] + 2))
    for i in range(hi - lo + 1):
        k = float(lo + i)
        a = 0.0 if mode == 1 else k
        b = 0.0 if mode == 0 else (k if mode == 1 else k * cols / rows)
        out[i] = _fill_errors(
            grid, blurred, a, b, a, (rows - 2 * a) / rows, b, (cols - 2 * b) / cols
        )
    return out


def _fill_ratios(
    errors: np.ndarray, axes: tuple[int, ...], structure: float = _FILL_STRUCTURE
) -> np.ndarray:
    """For each `_fill_errors` result in `errors` (..., 2, blurs + 2): the best blur's error over
    the margins of `axes` against the solid continuation's (plus _FILL_FLOOR a bin: noise); inf
    for margins nearly flat (any fill fits them: under `structure` a bin)."""
    part = errors[..., list(axes), :].sum(axis=-2)
    blurs = part.shape[-1] - 2
    solid, count = part[..., blurs], part[..., blurs + 1]
    ratios = part[..., :blurs].min(axis=-1) / (solid + _FILL_FLOOR * count + 1e-9)
    return np.where((count > 0) & (solid >= structure * count), ratios, np.inf)


def _fill_blurred(grid: np.ndarray, scale: float) -> np.ndarray:
    """`grid` under each of _FILL_SIGMAS (bins of a 64-bin grid; `scale` of them a bin)."""
    rows, cols = grid.shape
    out = np.empty((len(_FILL_SIGMAS), rows, cols), dtype=np.float32)
    for i, s in enumerate(_FILL_SIGMAS):
        if s <= 0:  # the identity's products: the grid itself (1 x v + 0s, exact)
            out[i] = grid
            continue
        # (_BLUR_SCALE G) grid (_BLUR_SCALE G)^T, unscaled: G grid G^T (`_gauss_scaled`;
        # the transpose a view, as it was: BLAS adds in another order for a transposed copy).
        blurred = _gauss_scaled(rows, s / scale) @ grid @ _gauss_scaled(cols, s / scale).T
        np.multiply(blurred, _BLUR_UNSCALE, out=out[i])
    return out


def _fill_best(
    grid: np.ndarray, blurred: np.ndarray, lo: int, hi: int, mode: int
) -> tuple[float, int]:
    """The lowest `_fill_ratios` of `_fill_scan`'s borders lo..hi (of the margins of the rows,
    the columns or both: `mode`), and that border."""
    ratio, i = _fill_least(_fill_scan(grid, blurred, lo, hi, mode), mode, _FILL_STRUCTURE)
    return ratio, lo + i


@numba.njit(cache=True, nogil=True)
def _fill_least(errors: np.ndarray, mode: int, structure: float) -> tuple[float, int]:
    # np.argmin of `_fill_ratios(errors, axes)` (the axes of `mode`: 0, 1, or both) and that
    # ratio, each ratio the same operations in the same order (the two margins' sums one
    # addition; the tests compare the two); the first of equals, 0 when all are inf. In one
    # compiled call: the array expressions' overhead was most of the `fill` finder's time.
    blurs = errors.shape[2] - 2
    best, where = np.inf, 0
    for i in range(errors.shape[0]):
        if mode == 2:
            part = errors[i, 0] + errors[i, 1]
        else:
            part = errors[i, mode]
        solid, count = part[blurs], part[blurs + 1]
        if not (count > 0 and solid >= structure * count):
            continue
        least = part[0]
        for b in range(1, blurs):
            least = min(least, part[b])
        ratio = least / (solid + _FILL_FLOOR * count + 1e-9)
        if ratio < best:
            best, where = ratio, i
    return best, where


def _fill_pair(grid: np.ndarray) -> tuple[float, float]:
    """(rows, columns) of a fill's width on each side of `grid`, in its bins, or 0."""
    rows, cols = grid.shape
    # Looked for on the grid halved (an eighth of the work), then placed on the grid itself.
    coarse = _halved(grid)
    step = rows // coarse.shape[0]
    coarse_blurred = _fill_blurred(coarse, step)
    blurred = coarse_blurred if step == 1 else None
    crows, ccols = coarse.shape
    found: list[tuple[float, float]] = []
    for mode, n, cn in ((0, rows, crows), (1, cols, ccols), (2, rows, crows)):
        lo, hi = max(1, int(_MIN_SIDE_BORDER * cn)), int(_MAX_FILL * cn)
        if hi < lo:
            continue
        ratio, k = _fill_best(coarse, coarse_blurred, lo, hi, mode)
        if ratio >= _FILL_LOOSE:
            continue
        if step > 1:
            blurred = _fill_blurred(grid, 1.0) if blurred is None else blurred
            ratio, k = _fill_best(
                grid, blurred, max(1, step * k - 2), min(step * k + 2, n // 2 - 1), mode
            )
        if ratio < _FILL_RATIO:
            w = float(k)
            found.append((w, 0.0) if mode == 0 else (0.0, w) if mode == 1 else (w, w * cols / rows))
    first_rows = [a for a, b in found if not b]
    first_cols = [b for a, b in found if not a]
    if first_rows and first_cols:
        found.append((first_rows[0], first_cols[0]))
    if not found:
        return 0.0, 0.0
    blurred = _fill_blurred(grid, 1.0) if blurred is None else blurred
    best = (-np.inf, 0.0, 0.0)
    for a, b in found:
        fa, fb = (rows - 2 * a) / rows, (cols - 2 * b) / cols
        fits = [_fill_errors(grid, blurred, a, b, a, fa, b, fb)]
        if a and b:  # stretched to cover the canvas (one scale, cut on one axis)
            f = min(fa, fb)
            fits.append(
                _fill_errors(grid, blurred, a, b, rows * (1 - f) / 2, f, cols * (1 - f) / 2, f)
            )
        for errors in fits:
            if _fill_ratios(errors, tuple(k for k, w in ((0, a), (1, b)) if w), 0.0) >= _FILL_RATIO:
                continue
            blurs = errors.shape[1] - 2
            explained = errors[:, blurs].sum() - 2 * errors[:, :blurs].sum(axis=0).min()
            if explained > best[0]:
                best = (explained, a, b)
    return best[1], best[2]


@numba.njit(cache=True, nogil=True)
def _fill_edges(lines: np.ndarray, m: int) -> np.ndarray:  # pragma: no cover
    # For each line y of `lines` (ordered from the fill inwards), how well it fits as the first
    # line of the picture: the detail along the lines (mean |step|) jumping from the smooth
    # fill's to the picture's over m lines either side, plus the step across the lines there
    # (the paste's seam) against the typical one; -inf where m lines do not fit either side.
    n, width = lines.shape
    detail = np.zeros(n + 1)
    for y in range(n):
        total = 0.0
        for x in range(width - 1):
            total += abs(lines[y, x + 1] - lines[y, x])
        detail[y + 1] = detail[y] + total / max(width - 1, 1)
    across = np.zeros(n)
    steps = np.empty(width)
    for y in range(1, n):
        for x in range(width):
            steps[x] = abs(lines[y, x] - lines[y - 1, x])
        across[y] = np.median(steps)  # across[y]: lines y-1 | y
    typical = np.median(across[1:]) * 4 + 1.0
    scores = np.full(n, -np.inf)
    for y in range(m, n - m + 1):
        before = (detail[y] - detail[y - m]) / m
        after = (detail[y + m] - detail[y]) / m
        scores[y] = (after - before) / (after + before + 1e-3) + across[y] / typical
    return scores


def _refine_fill(pixels: np.ndarray, edge: float, n: int, bins: int, axis: int) -> tuple[int, int]:
    """A centred fill's widths in pixels on both sides of an axis: the first pixel line of the
    picture within _FILL_REACH bins of the thumbnail of `edge` from either end, where
    `_fill_edges` scores best on both sides together (padding is centred to a pixel or so),
    then each side within _FILL_SLACK lines of that by its own score; over the middle of the
    lines (clear of a fill on the other axis)."""
    if edge == 0:
        return 0, 0
    m = _FILL_LINES
    lo = max(_first_pixel(max(int(edge) - _FILL_REACH, 0), n, bins) - m, 0)
    hi = min(_first_pixel(min(int(edge) + _FILL_REACH + 1, bins), n, bins) + m, n // 2)
    if hi - lo < 2 * m + 1:
        first = _first_pixel(int(edge), n, bins)
        return first, first
    other = pixels.shape[1 - axis]
    cut = slice(other * 3 // 10, max(other * 7 // 10, other * 3 // 10 + 2))
    scores = []
    for start, stop, flip in ((lo, hi, False), (n - hi, n - lo, True)):
        part = pixels[start:stop, cut] if axis == 0 else pixels[cut, start:stop].swapaxes(0, 1)
        lines = _luma_lines(part, 0, stop - start, 0)
        if flip:
            lines = lines[::-1]
        scores.append(_fill_edges(np.ascontiguousarray(lines, dtype=np.float32), m))
    both = int(np.argmax(scores[0] + scores[1]))
    near = slice(max(both - _FILL_SLACK, 0), both + _FILL_SLACK + 1)
    first, last = (int(np.argmax(side[near])) + near.start for side in scores)
    # Line y of either window is the width lo + y from its end of the axis.
    return lo + first, lo + last


def _median(values: np.ndarray) -> float:
    """np.median of a 1-D array: of an odd count the middle value, selected (np.median's
    wrapper cost more than the selection on these short arrays)."""
    n = values.shape[0]
    if n % 2 == 0:
        return float(np.median(values))
    return float(np.partition(values, n // 2)[n // 2])


def _edge_pair(lines: np.ndarray) -> tuple[float, float]:
    """Lines before the strongest straight edge across `lines` near their start and after the
    one near their end (the boundary of a picture pasted on a blurred copy of itself, into a
    frame or a screenshot): the same on both sides when one such pair stands out (a centred
    picture), else each side's own, or 0."""
    n = lines.shape[0]
    across = _quantile_rows(np.abs(np.diff(lines, axis=0)), 0.5)  # across[i]: lines i | i+1
    lo, hi = max(1, int(_MIN_SIDE_BORDER * n)), int(_MAX_EDGE * n)
    if hi <= lo:
        return 0.0, 0.0
    floor = max(_EDGE_STEP, _EDGE_SHARE * _median(across))
    start = across[lo - 1 : hi]
    end = across[::-1][lo - 1 : hi]
    both = start + end
    k = int(np.argmax(both))
    if both[k] >= 1.5 * floor and min(start[k], end[k]) >= 0.5 * floor:
        return float(lo + k), float(lo + k)
    ks, ke = int(np.argmax(start)), int(np.argmax(end))
    first = float(lo + ks) if start[ks] >= floor else 0.0
    last = float(lo + ke) if end[ke] >= floor else 0.0
    return first, last


Box = tuple[float, float, float, float]


def _checked(box: Box, rows: int, cols: int) -> Box | None:
    top, bottom, left, right = box
    # A side trimmed by less than _MIN_SIDE_BORDER is the picture's own quiet edge, not a border.
    top, bottom = (0.0 if b < _MIN_SIDE_BORDER * rows else b for b in (top, bottom))
    left, right = (0.0 if b < _MIN_SIDE_BORDER * cols else b for b in (left, right))
    if rows - top - bottom < _MIN_CONTENT * rows or cols - left - right < _MIN_CONTENT * cols:
        return None
    if top + bottom == 0 and left + right == 0:
        return None
    return top, bottom, left, right


@numba.njit(cache=True, nogil=True)
def _typical(a: np.ndarray) -> tuple[float, float]:  # pragma: no cover - compiled
    # How much two unrelated rows of `a` differ, and two unrelated columns: the mean |a[i] -
    # a[i + rows // 2]| over the first half of the rows, and likewise of the columns, in one
    # pass. Each column's (each pair's) terms are added in double in a slot of their own, in
    # order (a loop the compiler vectorises without reordering a sum), the slots then in order.
    rows, cols = a.shape
    hr, hc = rows // 2, cols // 2
    down = np.zeros(cols)
    across = np.zeros(hc)
    for i in range(rows):
        line = a[i]
        if i < hr:
            below = a[i + hr]
            for x in range(cols):
                down[x] += abs(line[x] - below[x])
        for x in range(hc):
            across[x] += abs(line[x] - line[x + hc])
    total_r = 0.0
    for x in range(cols):
        total_r += down[x]
    total_c = 0.0
    for x in range(hc):
        total_c += across[x]
    return total_r / max(hr * cols, 1), total_c / max(rows * hc, 1)


def trim_boxes(thumb: np.ndarray) -> dict[str, Box]:
    """(top, bottom, left, right) bins of border around the picture in `thumb`, by how it was
    found: 'trim' (flat lines: solid borders, window chrome), 'frame' (straight edges: a frame,
    a fill), 'unblur' (a blurred fill: much smoother than the picture), 'mirror' (the picture
    reflected into its margins), 'fill' (the picture's own blurred, enlarged copy: `_fill_pair`),
    and the `centre` ones."""
    rows, cols = thumb.shape
    out: dict[str, Box] = {}
    if rows < 16 or cols < 16:
        return out
    # Borders are looked for on the thumbnail halved (a quarter of the work; found to a bin of
    # it, then refined to the pixel), mirrors to half a bin of it.
    half = _halved(thumb)
    hr, hc = half.shape
    # How much two unrelated rows (columns) differ: the mirror test's yardstick.
    typical_r, typical_c = _typical(half)
    full_r, full_c = _typical(thumb)
    # The columns as rows, in memory (the scans below read a line at a time).
    half_t = np.ascontiguousarray(half.T)
    found: dict[str, tuple[float, ...]] = {
        "trim": (*_flat_pair(half), *_flat_pair(half_t)),
        "frame": (*_edge_pair(half), *_edge_pair(half_t)),
    }
    scale_r, scale_c = rows / hr, cols / hc
    # Mirrors are placed on the thumbnail itself (in its bins, to half a bin).
    mirror = (
        *_mirror_pair(half, thumb, typical_r, full_r),
        *_mirror_pair(half_t, thumb.T, typical_c, full_c),
    )
    found["mirror"] = tuple(
        b / scale for b, scale in zip(mirror, (scale_r, scale_r, scale_c, scale_c), strict=True)
    )
    # A blurred fill's lack of detail is found on the thumbnail itself (the halved one blurs
    # the picture's fine detail towards the fill's; means only, little work).
    along_rows_detail, along_cols_detail = _details(np.ascontiguousarray(thumb))
    fill = (
        *_blur_pair(along_rows_detail),
        *_blur_pair(along_cols_detail),
    )
    found["unblur"] = tuple(
        b / scale for b, scale in zip(fill, (scale_r, scale_r, scale_c, scale_c), strict=True)
    )
    boxes = {
        name: (top * scale_r, bottom * scale_r, left * scale_c, right * scale_c)
        for name, (top, bottom, left, right) in found.items()
    }
    r, _, c, _ = boxes["centre"] = _centred(boxes.values(), rows, cols)
    if r and c:  # padded on one axis only, a spurious border found on the other
        boxes["centre-tb"] = (r, r, 0.0, 0.0)
        boxes["centre-lr"] = (0.0, 0.0, c, c)
    # A fill fitted as the picture's own blurred, enlarged copy, on the thumbnail quartered.
    grid = _halved(half)
    fill_r, fill_c = _fill_pair(grid)
    fill_r *= rows / grid.shape[0]
    fill_c *= cols / grid.shape[1]
    boxes["fill"] = (fill_r, fill_r, fill_c, fill_c)
    for name, box in boxes.items():
        checked = _checked(box, rows, cols)
        if checked is not None and checked not in out.values():
            out[name] = checked
    return out


def _centred(boxes: Iterable[Box], rows: int, cols: int) -> Box:
    """One border width per axis, on both sides: the width most of the finders' sides agree
    on (to _AGREE of the side; the narrowest of equals). Padding is mostly centred, and a
    finder often sees one side of it only (a blurred fill as smooth as the picture's edge on the
    other side, a mirror's axis on a quiet line), or a spurious border on the other axis."""
    boxes = list(boxes)

    def agreed(widths: list[float], n: int) -> float:
        widths = [w for w in widths if _MIN_SIDE_BORDER * n <= w <= (1 - _MIN_CONTENT) / 2 * n]
        if not widths:
            return 0.0
        votes = [(sum(abs(v - w) <= _AGREE * n for v in widths), -w) for w in widths]
        return -max(votes)[1]

    r = agreed([w for box in boxes for w in box[:2]], rows)
    c = agreed([w for box in boxes for w in box[2:]], cols)
    return r, r, c, c


def _luma_lines(pixels: np.ndarray, lo: int, hi: int, axis: int) -> np.ndarray:
    """Luma of pixel rows (axis 0) or columns (axis 1) lo..hi-1, as rows, at most 512 samples
    along each."""
    n = pixels.shape[1 - axis]
    step = max(1, n // 512)
    if pixels.ndim == 3:
        return _rgb_lines(pixels, lo, hi, axis, step)
    part = pixels[lo:hi, ::step] if axis == 0 else pixels[::step, lo:hi].swapaxes(0, 1)
    return np.asarray(part, dtype=np.float32)


@numba.njit(cache=True, nogil=True)
def _rgb_lines(
    pixels: np.ndarray, lo: int, hi: int, axis: int, step: int
) -> np.ndarray:  # pragma: no cover
    # `_luma_lines` of RGB(X) pixels: the luma in double, R, G, B weighed and added in that
    # order (as NumPy did it on the sliced arrays, the same values), without the slices' copies.
    count = hi - lo
    along = pixels.shape[1 - axis]
    samples = (along + step - 1) // step
    out = np.empty((count, samples), dtype=np.float64)
    # Along the pixels' rows in memory order: a row's lines within one sample (axis 1) are
    # neighbours there.
    for a in range(count if axis == 0 else samples):
        for b in range(samples if axis == 0 else count):
            i, s = (a, b) if axis == 0 else (b, a)
            y, x = (lo + i, s * step) if axis == 0 else (s * step, lo + i)
            out[i, s] = (
                np.float64(pixels[y, x, 0]) * 0.299
                + np.float64(pixels[y, x, 1]) * 0.587
                + np.float64(pixels[y, x, 2]) * 0.114
            )
    return out


def _refine(pixels: np.ndarray, edge: float, n: int, bins: int, axis: int, flip: bool) -> int:
    """The border's width in pixels: the strongest step between pixel lines near the start of
    thumbnail bin `edge` (counted from the far end when `flip`)."""
    if edge == 0:
        return 0
    whole = int(edge)
    lo = _first_pixel(max(whole - _REFINE_BINS, 0), n, bins)
    hi = _first_pixel(min(whole + _REFINE_BINS, bins), n, bins)
    if flip:
        lo, hi = n - hi, n - lo
    lo, hi = max(lo, 1), min(hi, n - 1)
    if hi - lo < 1:
        return _first_pixel(whole, n, bins)
    lines = _luma_lines(pixels, lo - 1, hi + 1, axis)
    # The first of the largest median steps across (step j: lines lo-1+j | lo+j).
    samples = lines.shape[1]
    y = lo + _strongest_step(lines, min(samples - 1, int(0.5 * (samples - 1))))
    return n - y if flip else y


@numba.njit(cache=True, nogil=True)
def _strongest_step(lines: np.ndarray, k: int) -> int:  # pragma: no cover - compiled
    # argmax over j of the k-th smallest |lines[j+1] - lines[j]| (the first of equals), as
    # np.argmax of _quantile_rows of np.diff: a step's k-th smallest is over the best so far
    # exactly when fewer than k+1 of its values are at most the best, a count; only such a
    # step (a few, mostly) is selected.
    n, width = lines.shape
    steps = np.empty(width, dtype=lines.dtype)
    where, best = 0, 0.0
    for j in range(n - 1):
        a, b = lines[j], lines[j + 1]
        at_most = 0
        for x in range(width):
            steps[x] = abs(b[x] - a[x])
            at_most += steps[x] <= best
        if j == 0 or at_most <= k:
            value = np.partition(steps, k)[k]
            if j == 0 or value > best:
                where, best = j, value
    return where


@numba.njit(cache=True, nogil=True)
def _mirror_best(lines: np.ndarray, lo: int, hi: int, pairs: int) -> int:  # pragma: no cover
    # The half-line position h in lo..hi-1 (as in _mirror_errors) about which the `pairs`
    # nearest pairs of lines differ least.
    n, width = lines.shape
    best, where = np.inf, lo
    for h in range(lo, hi):
        k = h // 2
        gap = h & 1
        count = min(pairs, k, n - k - gap)
        if count <= 0:
            continue
        total = 0.0
        for i in range(count):
            total += _line_distance(lines[k - 1 - i], lines[k + gap + i])
        total /= count
        if total < best:
            best, where = total, h
    return where


def _refine_mirror(
    pixels: np.ndarray, edge: float, n: int, bins: int, axis: int, flip: bool
) -> int:
    """A mirrored border's width in pixels: the axis about which the pixel lines near `edge`
    bins of the thumbnail (counted from the far end when `flip`) reflect best, to half a
    pixel (the picture's first line is the one after the axis, or on it)."""
    if edge == 0:
        return 0
    guess = edge * n / bins
    reach = int(2 * n / bins) + 2  # a bin either side of the thumbnail's axis
    lo = max(int(guess) - reach - _MIRROR_PAIRS, 0)
    hi = min(int(guess) + reach + _MIRROR_PAIRS + 1, n)
    if flip:
        lo, hi = n - hi, n - lo
    lines = np.ascontiguousarray(_luma_lines(pixels, lo, hi, axis), dtype=np.float32)
    if flip:
        lines = np.ascontiguousarray(lines[::-1])
    start = n - hi if flip else lo  # the pixel line that is lines[0], counted from its side
    centre = round(2 * (guess - start))
    h = _mirror_best(lines, max(2, centre - 2 * reach), centre + 2 * reach + 1, _MIRROR_PAIRS)
    return start + h // 2


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
def pad_band(n: int, before: int, after: int) -> Band:
    """PDQ's band matrix of an axis of n pixels with `before` more pixels ahead of it and `after`
    more behind, repeating the edge pixels: the margins' weights folded onto the edge pixels."""
    from vigil.fingerprint.pdq import _downscale_matrix

    dense = _downscale_matrix(n + before + after)
    folded = np.array(dense[:, before : before + n], dtype=np.float32)
    folded[:, 0] += dense[:, :before].sum(axis=1)
    folded[:, n - 1] += dense[:, before + n :].sum(axis=1)
    return _band(folded)


def _halved(thumb: np.ndarray) -> np.ndarray:
    """Means of 2x2 bins (the thumbnail itself when it is small)."""
    rows, cols = thumb.shape
    if rows < 64 or cols < 64:
        return thumb
    return _halve(thumb)


@numba.njit(cache=True, nogil=True)
def _halve(thumb: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    # The four bins of each 2x2 added in one order (top left, top right, bottom left, bottom
    # right), then a quarter: in one loop (it was four strided sums, a tenth of a 4-D reshape's
    # mean; this, a tenth of those).
    rows, cols = thumb.shape[0] // 2, thumb.shape[1] // 2
    out = np.empty((rows, cols), dtype=np.float32)
    quarter = np.float32(0.25)
    for i in range(rows):
        top, bottom = thumb[2 * i], thumb[2 * i + 1]
        for j in range(cols):
            out[i, j] = (top[2 * j] + top[2 * j + 1] + bottom[2 * j] + bottom[2 * j + 1]) * quarter
    return out


def _first_pixel(bin_: int, n: int, bins: int) -> int:
    """The first of the n pixels in thumbnail bin `bin_` (pixel i is in bin i * bins // n)."""
    return -(-bin_ * n // bins)


def variant_frames(
    pixels: np.ndarray, thumb: np.ndarray
) -> tuple[list[tuple[str, Band, Band]], list[tuple[str, Band, Band]]]:
    """(name, row band, column band) of every variant of decoded `pixels` whose thumbnail is
    `thumb`: the bands give the variant's 64x64 block, from the pixels (first list: the borders
    taken off, exactly) or from the thumbnail (second list: the re-padded ones, whose made-up
    margins already differ from the original more than the thumbnail does)."""
    rows, cols = pixels.shape[0], pixels.shape[1]
    out: list[tuple[str, Band, Band]] = []
    trows, tcols = thumb.shape
    seen: set[tuple[int, int, int, int]] = set()
    refined: dict[tuple[float, int, bool], int] = {}

    def refine(edge: float, axis: int, flip: bool) -> int:
        # The finders often agree on a side (and `centre` takes one of theirs): refined once.
        key = (edge, axis, flip)
        if key not in refined:
            n, bins = (rows, trows) if axis == 0 else (cols, tcols)
            refined[key] = _refine(pixels, edge, n, bins, axis, flip)
        return refined[key]

    for name, (top, bottom, left, right) in trim_boxes(thumb).items():
        if name == "mirror":  # no step at a mirror's axis: the axis the pixel lines reflect about
            r0 = _refine_mirror(pixels, top, rows, trows, 0, False)
            r1 = rows - _refine_mirror(pixels, bottom, rows, trows, 0, True)
            c0 = _refine_mirror(pixels, left, cols, tcols, 1, False)
            c1 = cols - _refine_mirror(pixels, right, cols, tcols, 1, True)
        elif name == "fill":  # where the smooth fill gives way to the picture's detail
            r0, r1 = _refine_fill(pixels, top, rows, trows, 0)
            c0, c1 = _refine_fill(pixels, left, cols, tcols, 1)
            r1, c1 = rows - r1, cols - c1
        else:
            r0 = refine(top, 0, False)
            r1 = rows - refine(bottom, 0, True)
            c0 = refine(left, 1, False)
            c1 = cols - refine(right, 1, True)
        if r1 - r0 >= MIN_SIDE and c1 - c0 >= MIN_SIDE and (r0, r1, c0, c1) not in seen:
            seen.add((r0, r1, c0, c1))
            out.append((name, crop_band(r0, r1 - r0), crop_band(c0, c1 - c0)))
    return out, list(_padded_frames(*thumb.shape))


@functools.lru_cache(maxsize=64)
def _padded_frames(trows: int, tcols: int) -> tuple[tuple[str, Band, Band], ...]:
    """(name, row band, column band) of the re-padded variants of a thumbnail of trows x tcols
    bins (the same for every picture of that thumbnail's size)."""
    padded: list[tuple[str, Band, Band]] = []
    for share in PAD_SHARES:
        prow, pcol = max(1, round(trows * share / 100)), max(1, round(tcols * share / 100))
        padded.append((f"pad{share}", pad_band(trows, prow, prow), pad_band(tcols, pcol, pcol)))
    # One side only (a copy cut on one side), at one share.
    prow, pcol = max(1, round(trows * SIDE_SHARE / 100)), max(1, round(tcols * SIDE_SHARE / 100))
    rows_as_is, cols_as_is = pad_band(trows, 0, 0), pad_band(tcols, 0, 0)
    for side, row_band, col_band in (
        ("t", pad_band(trows, prow, 0), cols_as_is),
        ("b", pad_band(trows, 0, prow), cols_as_is),
        ("l", rows_as_is, pad_band(tcols, pcol, 0)),
        ("r", rows_as_is, pad_band(tcols, 0, pcol)),
    ):
        padded.append((f"pad{SIDE_SHARE}{side}", row_band, col_band))
    return tuple(padded)


@numba.njit(cache=True, nogil=True)
def _corner_fill(block: np.ndarray, k: int) -> None:  # pragma: no cover - compiled
    """Fill the top-left k x k of `block` in place from the row and the column just past it:
    each bin a blend of the two, the nearer weighing more."""
    # (below * across + beside * down) / (down + across) of float32s, each operation as the
    # broadcast arrays did it (down, across: the distance of row i, column j from row,
    # column k), without them; the row and the column read before any bin is written.
    below = block[k, :k].copy()  # the row under the corner, continued up
    beside = block[:k, k].copy()  # the column beside it, continued left
    for i in range(k):
        down = np.float32(k - i)
        for j in range(k):
            across = np.float32(k - j)
            block[i, j] = (below[j] * across + beside[i] * down) / (down + across)


def masked_blocks(block: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """(name, 64x64 block) of the watermark variants of PDQ's downscaled `block`: each corner
    (`mask-tl`, `mask-tr`, `mask-bl`, `mask-br`: MASK_CORNER of each side) and the top and
    bottom bands (`mask-top`, `mask-bottom`: MASK_BAND of the height) filled from their
    surroundings, where logos and captions are put. A local overlay moves many of PDQ's bits
    (each is a coefficient of the whole picture); without it the rest of the picture may still
    be near. From the block the plain hash was made of: no pass over the pixels."""
    out = []
    k = round(MASK_CORNER * block.shape[0])
    for name, flip_rows, flip_cols in (
        ("mask-tl", False, False),
        ("mask-tr", False, True),
        ("mask-bl", True, False),
        ("mask-br", True, True),
    ):
        copy = block.copy()
        view = copy[::-1] if flip_rows else copy
        view = view[:, ::-1] if flip_cols else view
        _corner_fill(view, k)
        out.append((name, copy))
    band = round(MASK_BAND * block.shape[0])
    top = block.copy()
    top[:band] = top[band]
    bottom = block.copy()
    bottom[-band:] = bottom[-band - 1]
    out += [("mask-top", top), ("mask-bottom", bottom)]
    return out


def warm() -> None:
    """Load (or compile) the thumbnail kernels now."""
    thumbnail(np.zeros((8, 8, 4), dtype=np.uint8))
    thumbnail(np.zeros((8, 8), dtype=np.uint8))
    thumbnail(np.zeros((8, 8), dtype=np.float32))
    for lines in (np.zeros((32, 8), dtype=np.float32), np.zeros((8, 32), dtype=np.float32).T):
        _mirror_errors(lines, 2, 8, 1.0, True)
        _mirror_error_at(lines, 8, 1.0, True)
    _mirror_best(np.zeros((32, 8), dtype=np.float32), 4, 8, 3)
    _mirror_refined(np.zeros((32, 8), dtype=np.float32), 8, 1.0, True)
    _details(np.zeros((32, 8), dtype=np.float32))
    _blur_pair(np.ones(64))
    for full in (np.zeros((64, 64), dtype=np.float32), np.zeros((64, 64), dtype=np.float32).T):
        _mirror_pair(np.zeros((32, 32), dtype=np.float32), full, 1.0, 1.0)
    _halve(np.zeros((64, 64), dtype=np.float32))
    _flat_ends(np.zeros((8, 8), dtype=np.float32), _FLAT_STEP, 3)
    _strongest_step(np.zeros((8, 8), dtype=np.float64), 3)
    for channels in (3, 4):
        _luma_lines(np.zeros((8, 8, channels), dtype=np.uint8), 2, 4, 0)
        # A strided view as well (the `fill` placement reads the middle of the lines).
        _luma_lines(np.zeros((8, 8, channels), dtype=np.uint8)[:, 2:6], 0, 4, 0)
    grid = np.arange(64 * 64, dtype=np.float32).reshape(64, 64) % 7
    _fill_scan(grid, _fill_blurred(grid, 1.0), 2, 8, 2)
    _fill_least(np.ones((2, 2, len(_FILL_SIGMAS) + 2)), 2, _FILL_STRUCTURE)
    _fill_errors(grid, _fill_blurred(grid, 1.0), 4.0, 4.0, 4.0, 0.875, 4.0, 0.875)
    _fill_edges(np.zeros((40, 16), dtype=np.float32), _FILL_LINES)
    _strongest_step(np.zeros((8, 8), dtype=np.float32), 3)
    masked_blocks(np.zeros((64, 64), dtype=np.float32))
    _typical(np.zeros((8, 8), dtype=np.float32))
    thumbnail_from_sums(np.ones((4, 4), dtype=np.float32), 8, 8, 1000.0)
    from vigil.fingerprint.downscale import downscale_pixels

    downscale_pixels(np.zeros((8, 8), dtype=np.float32))
