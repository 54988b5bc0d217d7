"""The `unveil` variant: a semi-opaque text band (a caption, a tiled watermark) taken off.

A caption of colour c laid over the picture at opacity a leaves observed = a*c + (1-a)*original
in its glyphs and the picture untouched between them, so the original can be had back,
(observed - a*c) / (1-a), where the glyphs are, once a, c and the glyphs are known.

Finding a band (on every picture, so cheap: `find_band`, ~30 microseconds): on the variants'
thumbnail halved (128 bins a side), each row's detail along it (`_row_detail`: what an opening
and a closing over 3 bins take off, added; one compiled pass) is compared with the median
row's (robust z: median absolute deviation, plus _MAD_FLOOR). A band is a run of hot rows
(z > _MIN_Z) of 3-25% of the height whose mean z is at least _MIN_SCORE and whose mean detail is
at least _MIN_RATIO times that of the picture's busy rows outside it (its 90th percentile): a
picture's own detailed stretch is either not set apart from its other rows or spans more of
them. A run longer than that is looked at again with only its rows above _SPLIT of its highest
z hot (text over a stretch of the picture that has detail of its own stands far above it). The
text is light when the band is brighter than the rows just outside it. Most pictures leave at
the first test (no row stands out).

Undoing it (only when a band is found: `undo_band`): on the band's pixel rows (a margin added),
at the decoded pixels' own size, c is white (light text) or black, the picture under the glyphs
is estimated by a grey opening (light) or closing (dark) over a square of _WINDOW of the shorter
side and at least _BAND_WINDOW of the band's height (wider than the strokes), and a is the
_OPACITY_QUANTILE of how far the glyph pixels are from it towards c (`take_off`). Each pixel at
least _GLYPH_SHARE of the opacity of the way there is inverted and kept between the observed
value and the opening; the others are left. The glyph pixels and one pixel either side along the
row are then averaged (_FILL_WEIGHT) with the row filled across them from the pixels either side
(`_row_fill`): over a textured picture the opening's level is wrong and the inversion carries
its error, the fill another one. The change is added to the block PDQ already made
through its own downscale matrices (linear: no pass over the other rows), and hashed as one more
query, named `unveil`.

The bounds were chosen on captioned copies made by benchmarks/bench_robustness.py's caption
generator with draws of their own (seed 7), not the benchmark's, and checked with the benchmark
(README, "Robustness"): no listed photo gets an `unveil`, 0.5% of unrelated tiles do. What it does
not undo: text over a picture whose own texture has the strokes' scale and contrast (wood,
stripes, fine grids: the band is not set apart, or the opening takes the texture off with the
text), a logo (a large region, not thin strokes), vertical text, text of another colour than
white or black (c is not estimated), a band of rows whose detail the picture already has over
more than a quarter of its height.
"""

from __future__ import annotations

import numba
import numpy as np

# The square of the opening that takes the glyphs off: this share of the picture's shorter side
# (wider than the strokes of a caption band up to a fifth of the picture's height).
_WINDOW = 0.025
# ... and at least this share of the band's height (a large caption's strokes are wider).
_BAND_WINDOW = 0.25
# A row is hot when its detail is this many robust deviations (median absolute deviation, plus
# _MAD_FLOOR levels) above the median row's; hot rows fewer than _JOIN apart are one run.
_MIN_Z = 4.0
_MAD_FLOOR = 0.3
_JOIN = 3
# A band: a run of _MIN_ROWS to _MAX_ROWS of the rows, its rows' mean z at least _MIN_SCORE, and
# its mean detail at least _MIN_RATIO times that of the picture's busy rows outside it (the
# _BUSY quantile of the other rows' detail, at least _BUSY_FLOOR levels).
_MIN_ROWS = 0.03
_MAX_ROWS = 0.25
_MIN_SCORE = 8.0
_MIN_RATIO = 2.0
# A run of hot rows longer than _MAX_ROWS is looked at again with only the rows above this
# share of its highest z hot.
_SPLIT = 0.25
_BUSY = 0.9
_BUSY_FLOOR = 0.5
# The band taken off reaches this many rows of the halved thumbnail past the run (a run's rows
# are those of the strokes' bulk; ascenders, descenders and anti-aliased edges lie around).
_MARGIN = 2
# The text's opacity: this quantile of the share of the way to the text's colour (white or
# black) that the glyph pixels (those over _MIN_SHARE of the way) are, at most _MAX_OPACITY.
_OPACITY_QUANTILE = 0.7
_MIN_SHARE = 0.15
_MIN_ROOM = 20.0
_MAX_OPACITY = 0.95
# A pixel is a glyph's (undone) when it is at least this share of the opacity of the way to the
# text's colour; the others are left as they are.
_GLYPH_SHARE = 0.5
# The glyph pixels (and one pixel either side along the row) end as this share of the row's
# fill (`_row_fill`: the nearest pixels outside them, interpolated) and the rest of the
# inversion: two estimates of the picture under the strokes whose errors differ.
_FILL_WEIGHT = 0.5


@numba.njit(cache=True, nogil=True, fastmath=True)
def _row_detail(t: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    # Per row: the mean of its white and black top-hats along the row (what an opening and a
    # closing over 3 bins take off), the two added: a row of glyphs is full of them. Running
    # minima and maxima of 3 written out (the compiler vectorises each loop).
    rows, cols = t.shape
    out = np.empty(rows, dtype=np.float32)
    lo = np.empty(cols, dtype=np.float32)
    hi = np.empty(cols, dtype=np.float32)
    last = cols - 1
    for i in range(rows):
        x = t[i]
        lo[0], hi[0] = min(x[0], x[1]), max(x[0], x[1])
        lo[last], hi[last] = min(x[last - 1], x[last]), max(x[last - 1], x[last])
        for j in range(1, last):
            lo[j] = min(min(x[j - 1], x[j]), x[j + 1])
            hi[j] = max(max(x[j - 1], x[j]), x[j + 1])
        total = (min(hi[0], hi[1]) - max(lo[0], lo[1])) + (
            min(hi[last - 1], hi[last]) - max(lo[last - 1], lo[last])
        )
        for j in range(1, last):
            opened = max(max(lo[j - 1], lo[j]), lo[j + 1])
            closed = min(min(hi[j - 1], hi[j]), hi[j + 1])
            total += closed - opened
        out[i] = total / cols
    return out


@numba.njit(cache=True, nogil=True, fastmath=True)
def _running(
    lines: np.ndarray, k: int, take_max: bool, transposed: bool
) -> np.ndarray:  # pragma: no cover
    # The running minimum (maximum) over a window of k down each column, centred (k odd), the
    # edge values repeated past the ends: van Herk / Gil-Werman, a whole row at a time (the
    # compiler vectorises along it), one block of k rows of the padded lines after another: the
    # backward scan of a block and the forward scan of the next give its k outputs (small
    # scratch rows, not whole-size arrays: those cost more in fresh pages than the scans).
    # `transposed`: the result written transposed (k values of a row of it at a time; a
    # transposed copy afterwards costs more than the scan).
    n, cols = lines.shape
    half = k // 2
    out = np.empty((cols, n), dtype=lines.dtype) if transposed else np.empty_like(lines)
    fwd = np.empty((k, cols), dtype=lines.dtype)
    bwd = np.empty((k, cols), dtype=lines.dtype)
    blocks = (n + 2 * half + k - 1) // k
    for block in range(blocks + 1):  # one more: the last block's outputs
        start = block * k
        # Forward scan of this block: outputs of the block before (rows start-k .. start-1 of
        # the padded lines) take their window's end from it.
        for j in range(k):
            src = lines[min(max(start + j - half, 0), n - 1)]
            row = fwd[j]
            if j == 0:
                row[:] = src
            else:
                prev = fwd[j - 1]
                for x in range(cols):
                    row[x] = max(prev[x], src[x]) if take_max else min(prev[x], src[x])
        # Output row y (its window: padded rows y .. y+k-1) = bwd[j] of the block before with
        # fwd[j-1] of this one, y = start - k + j.
        count = min(k, n - (start - k))
        if block > 0 and count > 0 and transposed:
            for x in range(cols):
                target = out[x]
                target[start - k] = bwd[0, x]
                for j in range(1, count):
                    a, b = bwd[j, x], fwd[j - 1, x]
                    target[start - k + j] = max(a, b) if take_max else min(a, b)
        elif block > 0:
            for j in range(count):
                a = bwd[j]
                target = out[start - k + j]
                if j == 0:
                    target[:] = a
                else:
                    b = fwd[j - 1]
                    for x in range(cols):
                        target[x] = max(a[x], b[x]) if take_max else min(a[x], b[x])
        # Backward scan of this block, for the outputs that start in it.
        for j in range(k - 1, -1, -1):
            src = lines[min(max(start + j - half, 0), n - 1)]
            row = bwd[j]
            if j == k - 1:
                row[:] = src
            else:
                nxt = bwd[j + 1]
                for x in range(cols):
                    row[x] = max(nxt[x], src[x]) if take_max else min(nxt[x], src[x])
    return out


@numba.njit(cache=True, nogil=True)
def _row_fill(values: np.ndarray, mask: np.ndarray) -> np.ndarray:  # pragma: no cover
    # `values` with each run of masked pixels along a row replaced by the straight line between
    # the unmasked pixels either side of it (the nearest one's value at a row's ends; a row
    # masked throughout is left).
    rows, cols = values.shape
    out = values.copy()
    for i in range(rows):
        j = 0
        while j < cols:
            if not mask[i, j]:
                j += 1
                continue
            start = j
            while j < cols and mask[i, j]:
                j += 1
            if start == 0 and j == cols:
                break
            left = values[i, start - 1] if start > 0 else values[i, j]
            right = values[i, j] if j < cols else values[i, start - 1]
            span = j - start + 1
            for x in range(start, j):
                t = (x - start + 1) / span
                out[i, x] = left + (right - left) * t
    return out


def _square(t: np.ndarray, k: int, take_max: bool) -> np.ndarray:
    """The running minimum (maximum) of `t` over a k x k square, transposed (down the columns,
    written transposed, then down the columns of that: a scan along a row is one long
    dependency chain, several times slower)."""
    return _running(_running(t, k, take_max, True), k, take_max, False)


def _base(t: np.ndarray, k: int, light: bool) -> np.ndarray:
    """The opening of `t` (light: a running minimum, then maximum) or its closing (dark) over
    a k x k square."""
    t = np.ascontiguousarray(t, dtype=np.float32)
    return _square(_square(t, k, not light), k, light)  # transposed twice: as `t`


@numba.njit(cache=True, nogil=True)
def _robust_z(values: np.ndarray, floor: float) -> np.ndarray:  # pragma: no cover - compiled
    # (values - their median) / (their median absolute deviation + floor): compiled, a tenth of
    # NumPy's two medians' cost on these 128 values.
    median = np.median(values)
    spread = np.median(np.abs(values - median)) + floor
    return (values - median) / spread


def _window(rows: int, cols: int) -> int:
    k = max(3, round(_WINDOW * min(rows, cols)))
    return k | 1


def _hot_runs(z: np.ndarray, threshold: float, offset: int = 0) -> list[tuple[int, int]]:
    """The runs (first, end) of rows whose z is above `threshold`, gaps under _JOIN joined."""
    hot = np.flatnonzero(z > threshold)
    if hot.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(hot) > _JOIN)
    firsts = np.concatenate([[0], breaks + 1])
    lasts = np.concatenate([breaks, [hot.size - 1]])
    return [
        (int(hot[f]) + offset, int(hot[e]) + 1 + offset) for f, e in zip(firsts, lasts, strict=True)
    ]


def _runs(z: np.ndarray) -> list[tuple[int, int]]:
    """The runs of hot rows (z > _MIN_Z); a run longer than _MAX_ROWS of the rows is split
    again at _SPLIT of its highest z, its parts added (a band of text that joins a detailed
    stretch of the picture stands far above that stretch)."""
    out = []
    for r0, r1 in _hot_runs(z, _MIN_Z):
        out.append((r0, r1))
        peak = float(z[r0:r1].max())
        if r1 - r0 > _MAX_ROWS * z.size and peak * _SPLIT > _MIN_Z:
            out += _hot_runs(z[r0:r1], peak * _SPLIT, r0)
    return out


def find_band(thumb: np.ndarray) -> tuple[float, float, bool] | None:
    """(first, end) rows of a text band as shares of the height, and whether the text is light,
    or None: a run of rows of the halved thumbnail whose detail (`_row_detail`) stands far above
    the median row's and above the picture's busy rows, the text light when the band is
    brighter than the rows just outside it."""
    from vigil.fingerprint.variants import _halved

    half = _halved(thumb)
    rows, cols = half.shape
    if rows < 32 or cols < 32:
        return None
    detail = _row_detail(half)
    z = _robust_z(detail, _MAD_FLOOR)
    if z.max() <= _MIN_Z:  # most pictures: no row stands out
        return None
    best: tuple[float, int, int] | None = None
    for r0, r1 in _runs(z):
        if not _MIN_ROWS * rows <= r1 - r0 <= _MAX_ROWS * rows or z[r0:r1].mean() < _MIN_SCORE:
            continue
        outside = np.concatenate([detail[: max(0, r0 - _JOIN)], detail[r1 + _JOIN :]])
        busy = max(float(np.quantile(outside, _BUSY)) if outside.size else 0.0, _BUSY_FLOOR)
        ratio = float(detail[r0:r1].mean()) / busy
        if ratio >= _MIN_RATIO and (best is None or ratio > best[0]):
            best = (ratio, r0, r1)
    if best is None:
        return None
    _, r0, r1 = best
    level = half.mean(axis=1)
    around = np.concatenate([level[max(0, r0 - 5) : max(0, r0 - 2)], level[r1 + 2 : r1 + 5]])
    light = around.size == 0 or bool(level[r0:r1].mean() > around.mean())
    return max(0, r0 - _MARGIN) / rows, min(rows, r1 + _MARGIN) / rows, light


def _luma_rows(pixels: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Luma (float32, 0..255, PDQ's weights) of pixel rows lo..hi-1."""
    part = pixels[lo:hi]
    if part.ndim == 2:
        return part.astype(np.float32)
    rgb = part[..., :3].astype(np.float32)
    return (rgb[..., 0] * 299 + rgb[..., 1] * 587 + rgb[..., 2] * 114) / np.float32(1000.0)


def take_off(luma: np.ndarray, base: np.ndarray, light: bool) -> np.ndarray:
    """The rows `luma` with the text's layer undone, `base` their opening (light text) or
    closing (dark): the opacity a estimated from the glyph pixels (`_OPACITY_QUANTILE` of how
    far each is from `base` towards the text's colour c, white or black), each pixel inverted,
    (observed - a c) / (1 - a), and kept between the observed value and `base` (a pixel no
    glyph covers stays near itself, an edge pixel partly covered falls back to `base`)."""
    colour = 255.0 if light else 0.0
    top = luma - base if light else base - luma
    room = colour - base if light else base - colour
    share = top / np.maximum(room, 1.0)
    glyph = share[(share > _MIN_SHARE) & (room > _MIN_ROOM)]
    if glyph.size < 16:
        return base
    opacity = min(float(np.quantile(glyph, _OPACITY_QUANTILE)), _MAX_OPACITY)
    undone = (luma - np.float32(opacity * colour)) / np.float32(1.0 - opacity)
    undone = np.clip(undone, base, luma) if light else np.clip(undone, luma, base)
    glyph_px = share >= _GLYPH_SHARE * opacity
    kept = np.where(glyph_px, undone, luma).astype(np.float32, copy=False)
    wide = glyph_px.copy()
    wide[:, 1:] |= glyph_px[:, :-1]
    wide[:, :-1] |= glyph_px[:, 1:]
    filled = _row_fill(kept, wide)
    mixed = np.float32(_FILL_WEIGHT) * filled + np.float32(1.0 - _FILL_WEIGHT) * kept
    return np.where(wide, mixed, kept)


def undo_band(
    pixels: np.ndarray, first: float, end: float, light: bool
) -> tuple[int, int, np.ndarray]:
    """(r0, r1, luma) of the pixel rows r0..r1-1 that the band first..end (shares of the height)
    covers, undone (`take_off`, over the opening of a square of _WINDOW of the shorter side and
    at least _BAND_WINDOW of the band's height)."""
    rows, cols = pixels.shape[0], pixels.shape[1]
    r0, r1 = int(first * rows), min(rows, int(np.ceil(end * rows)))
    k = max(_window(rows, cols), round(_BAND_WINDOW * (r1 - r0)) | 1)
    a0, a1 = max(0, r0 - k), min(rows, r1 + k)
    luma = _luma_rows(pixels, a0, a1)
    base = _base(luma, k, light)[r0 - a0 : r1 - a0]
    return r0, r1, take_off(luma[r0 - a0 : r1 - a0], base, light)


def unveiled(pixels: np.ndarray, thumb: np.ndarray, block: np.ndarray) -> np.ndarray | None:
    """PDQ's 64x64 downscale of decoded `pixels` (whose downscale is `block`) with a text band
    found on their thumbnail `thumb` taken off, or None when there is none: the band's pixel
    rows undone (`undo_band`) and the change added to `block` through PDQ's own (linear)
    downscale matrices (no pass over the other rows)."""
    found = find_band(thumb)
    if found is None:
        return None
    from vigil.fingerprint.pdq import _downscale_matrix

    r0, r1, undone = undo_band(pixels, *found)
    change = undone - _luma_rows(pixels, r0, r1)
    rows, cols = pixels.shape[0], pixels.shape[1]
    across = _downscale_matrix(rows)[:, r0:r1] @ change @ _downscale_matrix(cols).T
    return block + across.astype(block.dtype, copy=False)


def warm() -> None:
    """Load (or compile) the kernels now."""
    _row_detail(np.zeros((4, 8), dtype=np.float32))
    _robust_z(np.zeros(4, dtype=np.float32), _MAD_FLOOR)
    _row_fill(np.zeros((2, 4), dtype=np.float32), np.zeros((2, 4), dtype=np.bool_))
    _base(np.zeros((4, 8), dtype=np.float32), 3, True)
    _base(np.zeros((4, 8), dtype=np.float32), 3, False)
