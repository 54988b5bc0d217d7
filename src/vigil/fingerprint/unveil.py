"""The `unveil` variant: a semi-opaque text band (a caption, a tiled watermark) taken off.

A watermark of colour c laid over the picture at opacity a leaves observed = a*c + (1-a)*original
in its glyphs and the picture untouched between them. Glyph strokes are thin (a few percent of
the picture's side at most), so a grey-scale opening (a running minimum, then a running maximum,
over a square wider than a stroke) takes a light overlay's glyphs off and leaves what is around
them: the picture's own level just beside each stroke, which at PDQ's 64x64 scale is the level
under it. A closing does the same for a dark overlay. Over a whole picture an opening would also
take off the picture's own thin light detail, so it is applied to one band of rows only: the
rows where what the opening takes off (the white top-hat, or the black one for a closing) stands
far above the picture's other rows.

Found on the variants' 256-bin luma thumbnail (`variants.thumbnail`: both polarities, the band
of rows whose mean top-hat is `_MIN_Z` robust deviations above the median row's, the strongest
band kept when its mean score is at least `_MIN_SCORE`), and taken off on a luma thumbnail of
`FINE` bins a side (one more pass over the pixels, made only when a band is found: strokes of
small captions are a bin or two of the coarse thumbnail, and a fill there blurs the rows around
them), which PDQ's own downscale then hashes: one more query, named `unveil`.

The bounds were chosen on copies made by benchmarks/bench_robustness.py's caption generator
(draws of their own, not the benchmark's) and checked with the benchmark (README, "Robustness":
with them no source photo gets an `unveil`); what it does not undo: a
logo (a large region, not thin strokes: an opening fills it from around, as the masks do), text
over a picture whose own texture has the strokes' scale and contrast (wood, fine patterns: its
rows score like the band's), vertical text.
"""

from __future__ import annotations

import numba
import numpy as np

from vigil.fingerprint.downscale import pixel_words

# Bins a side of the luma thumbnail a band is taken off on.
FINE = 512
# The square of the opening: this share of the thumbnail's shorter side (wider than the strokes
# of a caption band up to a fifth of the picture's height).
_WINDOW = 0.025
# A row is in a band when its mean top-hat is this many robust deviations (median absolute
# deviation, plus _MAD_FLOOR levels) above the median row's; rows of a band closer than the
# window are joined.
_MIN_Z = 4.0
_MAD_FLOOR = 0.3
# A band found: at least this share of the rows, and its rows' mean score at least _MIN_SCORE.
_MIN_ROWS = 0.03
_MIN_SCORE = 20.0


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


def _window(t: np.ndarray) -> int:
    k = max(3, round(_WINDOW * min(t.shape)))
    return k | 1


def find_band(thumb: np.ndarray) -> tuple[float, float, bool] | None:
    """(first, end) rows of a text band as shares of the height, and whether the text is light,
    or None: the band of rows where an opening (light) or a closing (dark) of the luma
    thumbnail takes off far more than in the picture's other rows."""
    rows, cols = thumb.shape
    if rows < 32 or cols < 32:
        return None
    k = _window(thumb)
    best: tuple[float, float, float, bool] | None = None
    for light in (True, False):
        base = _base(thumb, k, light)
        top = (thumb - base) if light else (base - thumb)
        row = top.mean(axis=1)
        median = float(np.median(row))
        spread = float(np.median(np.abs(row - median))) + _MAD_FLOOR
        z = (row - median) / spread
        hot = np.flatnonzero(z > _MIN_Z)
        if hot.size == 0:
            continue
        # Runs of hot rows, gaps narrower than the window joined; the longest kept.
        breaks = np.flatnonzero(np.diff(hot) > k)
        starts = np.concatenate([[0], breaks + 1])
        ends = np.concatenate([breaks, [hot.size - 1]])
        i = int(np.argmax(hot[ends] - hot[starts]))
        r0, r1 = int(hot[starts[i]]), int(hot[ends[i]]) + 1
        if r1 - r0 < _MIN_ROWS * rows:
            continue
        score = float(z[r0:r1].mean())
        if score >= _MIN_SCORE and (best is None or score > best[0]):
            best = (score, r0 / rows, r1 / rows, light)
    if best is None:
        return None
    return best[1], best[2], best[3]


def fine_thumbnail(pixels: np.ndarray) -> np.ndarray:
    """Box-averaged luma (float32, 0..255) of at most FINE x FINE bins of decoded pixels (as
    `variants.thumbnail` takes them)."""
    from vigil.fingerprint.variants import _bin_plane, _bin_words, _counts

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


def take_off(fine: np.ndarray, first: float, end: float, light: bool) -> np.ndarray:
    """`fine` with the rows first..end (shares of the height) replaced by their opening (light)
    or closing (dark), made on those rows and a window's more either side."""
    rows = fine.shape[0]
    k = _window(fine)
    r0, r1 = int(first * rows), min(rows, int(np.ceil(end * rows)))
    a0, a1 = max(0, r0 - k), min(rows, r1 + k)
    base = _base(fine[a0:a1], k, light)
    out = fine.copy()
    out[r0:r1] = base[r0 - a0 : r1 - a0]
    return out


def unveiled(pixels: np.ndarray, thumb: np.ndarray) -> np.ndarray | None:
    """The luma thumbnail (FINE bins a side) of decoded `pixels` with a text band found on
    their thumbnail `thumb` taken off, or None when there is none."""
    found = find_band(thumb)
    if found is None:
        return None
    return take_off(fine_thumbnail(pixels), *found)


def warm() -> None:
    """Load (or compile) the kernels now."""
    _base(np.zeros((4, 8), dtype=np.float32), 3, True)
    _base(np.zeros((4, 8), dtype=np.float32), 3, False)
