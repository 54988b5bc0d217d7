"""The `unlogo` variant: a semi-opaque flat-coloured region in a corner (a logo) taken off.

A region of colour c laid over the picture at opacity a leaves observed = a*c + (1-a)*original
in it, in each channel and so in luma (luma is linear): inside = s*original + t, s = 1 - a,
t = a*Y(c). Across a straight edge of the region the original is continuous, so the bins just
inside are an affine function of the bins just outside, inside ~= s*outside + t, with one s and
one t along every edge of the region; the picture's own edges rarely keep such a relation
along two perpendicular lines that meet and run to the picture's sides.

Found on the variants' 256-bin luma thumbnail (`variants.thumbnail`), corner by corner, in one
compiled call each (`_corner_search`): candidate edges are the columns whose mean step across
(bins j - 1 and j + 1) over a band of rows near the picture's side (`_NEAR_SIDE`) stands out
(`_PEAKS` local maxima, `_PROMINENCE` times the median; and up to `_FITTED` more of the
`_MAX_PEAKS` highest whose bins just inside fit an affine function of those just outside there,
`_LINE_FIT`: a pattern's own edges, grid lines, tiles, wood grain, often step higher than an
overlay's but rarely keep that relation), and the rows likewise; each pair of
a candidate column x0 and row y0 (`_MIN_SIDE` to `_MAX_SIDE` of each side, within `_MAX_ASPECT`
of each other; one of the two prime, among the `_BOTH` highest of its side or fitting: a logo's
colour may be close to the picture's along one edge, or a pattern's own steps outrank it) is
then fitted along the middle of both edges (`_FIRST` to `_LAST` of each:
rounded corners bend the rest), the bins just inside against those just outside, pooled:
s is the spread inside over the spread outside (the least-squares slope is drawn towards 0 by
the picture's own change between the bins, so it is only required not to fall far short of
it), t from the means. A region is a fit whose residual is under `_STRICT`'s share of the
squared steps across the edges (pooled, and each edge alone), with `_MIN_S` <= s <= `_MAX_S`,
steps and a picture outside that varies along the edges (over a flat original, s is not
determined), and the picture's detail along the edges inside over that outside (`_contrast`)
near s as well, and a step across the edges along most of them (`_cover`: a picture's own edge
that happens to fit often steps along a part only). The best of the four corners is kept.

Taken off on a luma thumbnail of `variants.FINE` bins a side (one more pass over the pixels, made
only when a region is found), when the region fits there too, under the same bounds and with its
step along most of its edges (`_holds`: most regions the coarser thumbnail finds in a picture
without one do not, and are left before the costlier undoing): the edges placed again to the bin
there (`_place`), s and t fitted again, original = (observed - t)/s inside. Parts of the logo of
another colour (an inner shape, lettering) are left then as patches offset by a constant from the
picture around them: steps far over the region's own outline them, and each closed patch inside the
region is moved by the median step across its outline, when those steps agree (`_offsets`); parts
of the picture inside such a patch (its own bright or dark shapes, whose steps across their outline
do not agree) are moved with the patches that enclose them (`_ENCLOSED` of their pairs across);
when no patch stands out so on the region smoothed over 3 x 3 bins, patches are looked for again on
it smoothed over 11 x 11 (`_SCALES`, `_COARSE_SHARE`: a finely patterned picture's own steps fade
there, a patch's stay); patches on the region's sides that the overlay did not cover (its rounded
corners) are put back as they were; then the bins outside a quarter ellipse in each of the region's
four corners (a rounded overlay left them bare, the inner corner too, and undone as if covered they
were tens of levels off over hundreds of bins) are put back as observed, with the radius (0 to
`_ROUND` of the region's height; an ellipse on bins that are not square) that leaves the least
total variation over the four corner blocks (`_round_corners`, compiled). Clipped to 0..255. The
affine part is then made again on PDQ's own downscale of the region's pixels (it is linear; a pass
over the region's pixels only) and the rest (patches, corners, clipping) added from the fine
thumbnail through PDQ's matrices summed over each bin's pixels: PDQ's box-thumbnail and its own
downscale differ by tens of levels on fine detail, which moved the hash of some pictures past the
distance on its own. One more query, named `unlogo`.

The bounds were chosen on copies made by benchmarks/bench_robustness.py's logo generator (draws
of their own, seed 5, not the benchmark's) and the 43 listed source photos. Limits: a region
that is not in a corner (a margin between it and the sides), one that is not a rectangle (a
round badge; the corners' radius is taken as one for all four), an opaque one (s under
`_MIN_S`: the picture is mostly gone under it; the `mask-*` variants fill it from around
instead), one over a flat corner of the picture (no s to
fit: the masks' fill does well there), one whose colour is close to the picture's along its
edges (no step stands out), and patches that do not stand out from the picture's own steps.
"""

from __future__ import annotations

import functools

import numba
import numpy as np

from vigil.fingerprint.downscale import downscale_banded
from vigil.fingerprint.variants import fine_thumbnail

# Sides of a corner region: this share of the picture's side at least and at most, and at most
# _MAX_ASPECT times one another (as shares).
_MIN_SIDE = 0.12
_MAX_SIDE = 0.55
_MAX_ASPECT = 2.5
# The part of each edge the fit uses (shares of its length from the picture's side): rounded
# corners bend the rest.
_FIRST = 0.25
_LAST = 0.75
# 1 - opacity: within _MIN_S.._MAX_S (more opaque: the picture is mostly gone under it; less:
# it hardly moves PDQ's bits); the least-squares slope at least _MIN_SLOPE of it.
_MIN_S = 0.1
_MAX_S = 0.75
_MIN_SLOPE = 0.3
# Candidate edges: the mean step across a column over the rows in this part of the height from
# the corner's side (a row, over columns likewise) a local maximum at least _PROMINENCE times
# the median (and _STEP_FLOOR levels); the _PEAKS highest of each, and up to _FITTED more of
# the _MAX_PEAKS highest whose line fits there (the residual of inside = s*outside + t over the
# bins of that part at most _LINE_FIT of their squared steps: a pattern's own steps, often
# higher than an overlay's, rarely keep that relation); a column and a row paired when one of
# them is prime (among the _BOTH highest, or its line fits), each pair fitted with its edges
# within _REACH_EDGE bins of the candidates; a fit kept when the step across the edges is over
# _COVER_STEP levels on at least _MIN_COVER of the bins along them (`_cover`).
_NEAR_SIDE = (0.04, 0.15)
_PROMINENCE = 1.5
_STEP_FLOOR = 1.0
_PEAKS = 6
_MAX_PEAKS = 16
_LINE_FIT = 0.3
_FITTED = 3
_BOTH = 3
_MIN_COVER = 0.6
_COVER_STEP = 6.0
_REACH_EDGE = 2
# The detail along the edges inside over that outside (`_contrast`, in bands of _BAND lines).
_BAND = 6
# The bounds of a fit (`_corner_fit`): the residual at most this share of the squared steps
# across the edges (pooled), and on each edge alone (with the pooled s, t); s within these; the
# steps at least this root mean square (levels of 0..255) and the picture outside the edges at
# least this standard deviation along them; `_contrast` within these shares of s (0.65-1.5
# before: logos over pictures whose detail differs across the edges were left); the sides' aspect.
_Bounds = tuple[float, float, float, float, float, float, float, float, float]
_STRICT: _Bounds = (0.05, 0.1, _MIN_S, _MAX_S, 8.0, 4.0, 0.5, 2.0, _MAX_ASPECT)
# The edges placed on the fine thumbnail: within this many bins of where the thumbnail put
# them, the best fit of any s.
_PLACE = 2
_PLACING: _Bounds = (np.inf, np.inf, 0.0, 1.0, 0.0, 0.0, 0.0, np.inf, np.inf)
# Fits of one place (edges within this many bins) are one (`_keep`).
_NEAR = 2
# Patches of another colour (`_offsets`): outlined by steps (over two bins of the region
# smoothed over 3 x 3) above _OFFSET_STEP levels and _OFFSET_SHARE times the region's median;
# compared across their outline _REACH bins apart; moved when at least _MIN_PATCH bins with
# _MIN_PAIRS pairs across, and the steps agree (median deviation under _AGREE of their median).
_OFFSET_STEP = 12.0
_OFFSET_SHARE = 6.0
_REACH = 4
_MIN_PATCH = 20
_MIN_PAIRS = 10
_AGREE = 0.35
# The scales patches are looked for on, in turn until one moves something (the region smoothed
# over 2 scale + 1 bins a side, steps across two bins scale apart, pairs _REACH scale apart);
# on the coarser ones outlines are steps over _COARSE_SHARE times the median (and
# _OFFSET_STEP).
_SCALES = (1, 5)
_COARSE_SHARE = 2.0
# A part that patches moved enclose (at least this share of its pairs across, and this many)
# is moved with them.
_ENCLOSED = 0.6
_MIN_ENCLOSED = 4
# A patch on the region's sides is put back as it was when that leaves under this share of the
# step across its outline.
_RESTORE = 0.5
# Rounded corners of the region (`_round_corners`): a radius up to this share of its height
# looked for.
_ROUND = 0.25


@numba.njit(cache=True, nogil=True)
def _line_sums(h: np.ndarray, lo: int, hi: int, along: int, across: bool) -> np.ndarray:
    # Running sums [out, in, out^2, in^2, in*out] (the first axis) along each candidate line j
    # in lo..hi-1 (the bin the edge falls in): the bins j - 1 (inside) and j + 1 (outside).
    # `across`: the lines are rows (samples along the columns), else columns.
    out = np.empty((5, hi - lo, along + 1))
    for j in range(lo, hi):
        line = j - lo
        s0 = s1 = s2 = s3 = s4 = 0.0
        out[0, line, 0] = out[1, line, 0] = out[2, line, 0] = 0.0
        out[3, line, 0] = out[4, line, 0] = 0.0
        for k in range(along):
            if across:
                a, b = np.float64(h[j + 1, k]), np.float64(h[j - 1, k])
            else:
                a, b = np.float64(h[k, j + 1]), np.float64(h[k, j - 1])
            s0 += a
            s1 += b
            s2 += a * a
            s3 += b * b
            s4 += a * b
            out[0, line, k + 1] = s0
            out[1, line, k + 1] = s1
            out[2, line, k + 1] = s2
            out[3, line, k + 1] = s3
            out[4, line, k + 1] = s4
    return out


@numba.njit(cache=True, nogil=True)
def _ratio(
    n: float, sx: float, sy: float, sxx: float, syy: float, sxy: float, s: float, t: float
) -> float:
    # On one line: the residual of inside = s*outside + t over the squared steps across it.
    res = syy - 2 * s * sxy - 2 * t * sy + s * s * sxx + 2 * s * t * sx + n * t * t
    return res / max(sxx - 2 * sxy + syy, 1e-9)


@numba.njit(cache=True, nogil=True)
def _corner_fit(
    h: np.ndarray,
    x_lo: int,
    x_hi: int,
    y_lo: int,
    y_hi: int,
    first: float,
    last: float,
    max_ratio: float,
    max_line_ratio: float,
    min_s: float,
    max_s: float,
    min_step: float,
    min_spread: float,
    min_contrast: float,
    max_contrast: float,
    max_aspect: float,
    keep: int,
) -> np.ndarray:  # pragma: no cover - compiled
    # The `keep` best regions (rows, best first; one of each place) in the top-left corner of
    # `h` with edges in columns x_lo..x_hi-1 and rows y_lo..y_hi-1 (2 <= x_lo, x_hi <= columns -
    # 3, the same for the rows): (score, x0, y0, s, t), score inf if none; x0, y0: the bins its
    # edges fall in; the score: the residual of the least-squares fit over the squared steps
    # across the edges, pooled.
    if x_hi <= x_lo or y_hi <= y_lo:
        best = np.zeros((keep, 5))
        best[:, 0] = np.inf
        return best
    # Column x0 sampled over rows first*y0 .. last*y0; row y0 over columns first*x0 .. last*x0.
    v = _line_sums(h, x_lo, x_hi, int(last * (y_hi - 1)) + 1, False)
    w = _line_sums(h, y_lo, y_hi, int(last * (x_hi - 1)) + 1, True)
    return _sums_fit(
        h,
        v,
        w,
        x_lo,
        x_hi,
        y_lo,
        y_hi,
        x_lo,
        y_lo,
        first,
        last,
        max_ratio,
        max_line_ratio,
        min_s,
        max_s,
        min_step,
        min_spread,
        min_contrast,
        max_contrast,
        max_aspect,
        keep,
    )


@numba.njit(cache=True, nogil=True)
def _sums_fit(
    h: np.ndarray,
    v: np.ndarray,
    w: np.ndarray,
    x_lo: int,
    x_hi: int,
    y_lo: int,
    y_hi: int,
    v_lo: int,
    w_lo: int,
    first: float,
    last: float,
    max_ratio: float,
    max_line_ratio: float,
    min_s: float,
    max_s: float,
    min_step: float,
    min_spread: float,
    min_contrast: float,
    max_contrast: float,
    max_aspect: float,
    keep: int,
) -> np.ndarray:  # pragma: no cover - compiled
    # `_corner_fit` on running sums made already (`_line_sums`): v of the columns from v_lo
    # (along at least last * (y_hi - 1) + 1 rows), w of the rows from w_lo likewise.
    best = np.zeros((keep, 5))
    best[:, 0] = np.inf
    if x_hi <= x_lo or y_hi <= y_lo:
        return best
    # y0 in columns' units (the region's sides as shares of the picture's compared).
    cols_scale = h.shape[1] / h.shape[0]
    for x0 in range(x_lo, x_hi):
        xa, xb = int(first * x0), int(last * x0)
        c = x0 - v_lo
        for y0 in range(y_lo, y_hi):
            if y0 * cols_scale > max_aspect * x0 or x0 > max_aspect * y0 * cols_scale:
                continue
            ya, yb = int(first * y0), int(last * y0)
            r = y0 - w_lo
            # The column's part and the row's, then both.
            ax, ay = v[0, c, yb] - v[0, c, ya], v[1, c, yb] - v[1, c, ya]
            axx, ayy, axy = (
                v[2, c, yb] - v[2, c, ya],
                v[3, c, yb] - v[3, c, ya],
                v[4, c, yb] - v[4, c, ya],
            )
            bx, by = w[0, r, xb] - w[0, r, xa], w[1, r, xb] - w[1, r, xa]
            bxx, byy, bxy = (
                w[2, r, xb] - w[2, r, xa],
                w[3, r, xb] - w[3, r, xa],
                w[4, r, xb] - w[4, r, xa],
            )
            n = np.float64(yb - ya + xb - xa)
            sx, sy, sxx, syy, sxy = ax + bx, ay + by, axx + bxx, ayy + byy, axy + bxy
            step = sxx - 2 * sxy + syy
            if step <= 0 or step < n * min_step * min_step:
                continue
            vxx = sxx - sx * sx / n
            if vxx <= 0 or vxx < n * min_spread * min_spread:
                continue
            vxy = sxy - sx * sy / n
            vyy = syy - sy * sy / n
            s = vxy / vxx
            # 1 - opacity: the spread inside over that outside (the least-squares slope is
            # drawn towards 0 by the picture's own change between the bins), which the slope
            # must not fall far short of.
            spread_ratio = np.sqrt(max(vyy, 0.0) / vxx)
            if spread_ratio < min_s or spread_ratio > max_s or s < _MIN_SLOPE * spread_ratio:
                continue
            score = (vyy - vxy * s) / step
            if score >= max_ratio or score >= best[keep - 1, 0]:
                continue
            t = (sy - s * sx) / n
            if (
                _ratio(yb - ya, ax, ay, axx, ayy, axy, s, t) >= max_line_ratio
                or _ratio(xb - xa, bx, by, bxx, byy, bxy, s, t) >= max_line_ratio
            ):
                continue
            if min_contrast > 0 or max_contrast < np.inf:
                contrast = _contrast(h, x0, y0, xa, xb, ya, yb) / max(spread_ratio, 1e-6)
                if contrast < min_contrast or contrast > max_contrast:
                    continue
            _keep(best, score, x0, y0, s, t)
    return best


@numba.njit(cache=True, nogil=True)
def _keep(best: np.ndarray, score: float, x0: int, y0: int, s: float, t: float) -> None:
    # Into the kept fits (ordered by score): one of a place (edges within _NEAR bins), the best.
    keep = best.shape[0]
    slot = keep - 1
    for i in range(keep):
        if abs(best[i, 1] - x0) <= _NEAR and abs(best[i, 2] - y0) <= _NEAR and best[i, 0] < np.inf:
            if best[i, 0] <= score:
                return
            slot = i
            break
    best[slot, 0], best[slot, 1], best[slot, 2], best[slot, 3], best[slot, 4] = score, x0, y0, s, t
    # Back into order.
    i = slot
    while i > 0 and best[i - 1, 0] > best[i, 0]:
        for k in range(5):
            best[i - 1, k], best[i, k] = best[i, k], best[i - 1, k]
        i -= 1


@numba.njit(cache=True, nogil=True)
def _contrast(
    h: np.ndarray, x0: int, y0: int, xa: int, xb: int, ya: int, yb: int
) -> float:  # pragma: no cover - compiled
    # The picture's detail along the edges (mean step between neighbours along them) in a band
    # of _BAND lines inside over that in a band outside: s again under an overlay, from other
    # bins than the fit's.
    rows, cols = h.shape
    inside, outside = 0.0, 0.0
    for k in range(_BAND):
        ci, co = x0 - 2 - k, x0 + 2 + k
        if ci >= 0 and co < cols:
            for y in range(ya, yb - 1):
                inside += abs(np.float64(h[y + 1, ci]) - np.float64(h[y, ci]))
                outside += abs(np.float64(h[y + 1, co]) - np.float64(h[y, co]))
        ri, ro = y0 - 2 - k, y0 + 2 + k
        if ri >= 0 and ro < rows:
            for x in range(xa, xb - 1):
                inside += abs(np.float64(h[ri, x + 1]) - np.float64(h[ri, x]))
                outside += abs(np.float64(h[ro, x + 1]) - np.float64(h[ro, x]))
    return inside / max(outside, 1e-6)


# The corners as (flip rows, flip columns): top left, top right, bottom left, bottom right.
CORNERS = ((False, False), (False, True), (True, False), (True, True))


def _oriented(a: np.ndarray, flip_rows: bool, flip_cols: bool) -> np.ndarray:
    """`a` flipped so that the corner (flip_rows, flip_cols) is its top left (a view)."""
    a = a[::-1] if flip_rows else a
    return a[:, ::-1] if flip_cols else a


@numba.njit(cache=True, nogil=True)
def _peaks(profile: np.ndarray, lo: int, prominence: float, floor: float, count: int) -> np.ndarray:
    # The `count` highest local maxima of `profile` (its index 0: bin `lo`) that stand
    # `prominence` times over its median (and `floor`), as bins, highest first (-1: none).
    out = np.full(count, -1)
    heights = np.zeros(count)
    bar = prominence * max(np.median(profile), floor)
    for i in range(1, profile.size - 1):
        p = profile[i]
        if p < bar or p < profile[i - 1] or p < profile[i + 1]:
            continue
        for k in range(count):
            if out[k] < 0 or p > heights[k]:
                for m in range(count - 1, k, -1):
                    out[m], heights[m] = out[m - 1], heights[m - 1]
                out[k], heights[k] = i + lo, p
                break
    return out


@numba.njit(cache=True, nogil=True)
def _candidates(
    h: np.ndarray,
    lo: int,
    hi: int,
    first: int,
    last: int,
    across: bool,
    prominence: float,
    floor: float,
    count: int,
) -> np.ndarray:  # pragma: no cover - compiled
    # The candidate edges among lines lo..hi-1 (rows when `across`, else columns), highest
    # first: the local maxima of the mean step across a line (bins j - 1 and j + 1) over the
    # part first..last of it (`_peaks`, `prominence`, `floor`), the `count` highest and up to
    # _FITTED more of the _MAX_PEAKS highest whose line fits (its bins there just inside an
    # affine function of those just outside: the least-squares residual at most _LINE_FIT of
    # the squared steps). A pattern's own edges often step higher than an overlay's, but an
    # overlay's keeps the relation.
    n = hi - lo
    profile = np.zeros(n)
    fits = np.zeros(n)
    m = np.float64(max(last - first, 1))
    for j in range(lo, hi):
        sx = sy = sxx = syy = sxy = total = 0.0
        for k in range(first, last):
            if across:
                a, b = np.float64(h[j + 1, k]), np.float64(h[j - 1, k])
            else:
                a, b = np.float64(h[k, j + 1]), np.float64(h[k, j - 1])
            total += abs(a - b)
            sx += a
            sy += b
            sxx += a * a
            syy += b * b
            sxy += a * b
        profile[j - lo] = total / m
        vxx = sxx - sx * sx / m
        vxy = sxy - sx * sy / m
        vyy = syy - sy * sy / m
        step = sxx - 2 * sxy + syy
        if vxx <= 1e-9 or step <= 1e-9:
            fits[j - lo] = np.inf
        else:
            fits[j - lo] = (vyy - vxy * vxy / vxx) / step
    peaks = _peaks(profile, lo, prominence, floor, _MAX_PEAKS)
    # out[0]: the candidates (-1: none), out[1]: 1 for the prime ones (a pair is fitted when
    # one of its lines is prime: the _BOTH highest, and those whose lines fit).
    out = np.full((2, count + _FITTED), -1)
    kept = fitted = 0
    for i in range(peaks.size):
        p = peaks[i]
        if p < 0:
            break
        fit = fits[p - lo] <= _LINE_FIT
        if i < count or (fit and fitted < _FITTED):
            out[0, kept] = p
            out[1, kept] = 1 if i < _BOTH or fit else 0
            fitted += fit and i >= count
            kept += 1
    return out


@numba.njit(cache=True, nogil=True)
def _corner_search(
    h: np.ndarray,
    x_lo: int,
    x_hi: int,
    y_lo: int,
    y_hi: int,
    near: float,
    far: float,
    prominence: float,
    floor: float,
    count: int,
) -> np.ndarray:  # pragma: no cover - compiled
    # The best region in the top-left corner of `h` (as `_corner_fit`, under the strict
    # bounds) among the pairs of candidate edges (`_candidates`): the columns whose mean step
    # across (bins j - 1 and j + 1) over the rows near..far of the height stands out, or whose
    # line fits there, and the rows likewise over the columns near..far of the width; a pair
    # fitted when one of its lines is prime.
    rows, cols = h.shape
    xs = _candidates(
        h, x_lo, x_hi, int(near * rows), int(far * rows), False, prominence, floor, count
    )
    ys = _candidates(
        h, y_lo, y_hi, int(near * cols), int(far * cols), True, prominence, floor, count
    )
    best = np.full(5, np.inf)
    # The running sums along each candidate's lines made once (`_line_sums`), for all its pairs.
    n = xs.shape[1]
    reach = 2 * _REACH_EDGE + 1
    v_all = np.empty((n, 5, reach, int(_LAST * (min(rows - 3, y_hi + _REACH_EDGE) - 1)) + 2))
    w_all = np.empty((n, 5, reach, int(_LAST * (min(cols - 3, x_hi + _REACH_EDGE) - 1)) + 2))
    for k in range(n):
        if xs[0, k] >= 0:
            lo = min(max(2, xs[0, k] - _REACH_EDGE), cols - 3 - reach)
            v_all[k] = _line_sums(h, lo, lo + reach, v_all.shape[3] - 1, False)
        if ys[0, k] >= 0:
            lo = min(max(2, ys[0, k] - _REACH_EDGE), rows - 3 - reach)
            w_all[k] = _line_sums(h, lo, lo + reach, w_all.shape[3] - 1, True)
    for i in range(n):
        x = xs[0, i]
        if x < 0:
            break
        x_from = min(max(2, x - _REACH_EDGE), cols - 3 - reach)
        for j in range(n):
            y = ys[0, j]
            if y < 0:
                break
            if xs[1, i] == 0 and ys[1, j] == 0:
                continue
            y_from = min(max(2, y - _REACH_EDGE), rows - 3 - reach)
            fit = _sums_fit(
                h,
                v_all[i],
                w_all[j],
                max(2, x - _REACH_EDGE),
                min(cols - 3, x + _REACH_EDGE + 1),
                max(2, y - _REACH_EDGE),
                min(rows - 3, y + _REACH_EDGE + 1),
                x_from,
                y_from,
                _FIRST,
                _LAST,
                _STRICT[0],
                _STRICT[1],
                _STRICT[2],
                _STRICT[3],
                _STRICT[4],
                _STRICT[5],
                _STRICT[6],
                _STRICT[7],
                _STRICT[8],
                1,
            )[0]
            if fit[0] < best[0] and _cover(h, int(fit[1]), int(fit[2])) >= _MIN_COVER:
                best[:] = fit
    return best


@numba.njit(cache=True, nogil=True)
def _cover(h: np.ndarray, x0: int, y0: int) -> float:  # pragma: no cover - compiled
    # The share of the bins along the middle of both edges (as the fit samples them) whose step
    # across (bins j - 1 and j + 1) is over _COVER_STEP levels: an overlay's edge steps along
    # most of its length, a picture's own edge that happens to fit often only along part.
    ya, yb = int(_FIRST * y0), int(_LAST * y0)
    xa, xb = int(_FIRST * x0), int(_LAST * x0)
    steps = 0
    for y in range(ya, yb):
        if abs(np.float64(h[y, x0 - 1]) - np.float64(h[y, x0 + 1])) > _COVER_STEP:
            steps += 1
    for x in range(xa, xb):
        if abs(np.float64(h[y0 - 1, x]) - np.float64(h[y0 + 1, x])) > _COVER_STEP:
            steps += 1
    return steps / max(yb - ya + xb - xa, 1)


def find_logo(thumb: np.ndarray) -> tuple[int, float, float] | None:
    """(corner index into CORNERS, width, height as shares of the picture's sides) of a
    semi-opaque corner region found on the luma thumbnail `thumb`, or None: candidate edges
    where the mean step across a column (a row) near the picture's side (_NEAR_SIDE of it)
    stands out, each pair of them then fitted along the whole edges (`_corner_search`)."""
    rows, cols = thumb.shape
    if rows < 64 or cols < 64:
        return None
    xs = (max(2, int(_MIN_SIDE * cols)), min(cols - 3, int(_MAX_SIDE * cols) + 1))
    ys = (max(2, int(_MIN_SIDE * rows)), min(rows - 3, int(_MAX_SIDE * rows) + 1))
    best: tuple[float, int, float, float] | None = None
    for corner, (flip_rows, flip_cols) in enumerate(CORNERS):
        fit = _corner_search(
            _oriented(thumb, flip_rows, flip_cols),
            *xs,
            *ys,
            *_NEAR_SIDE,
            _PROMINENCE,
            _STEP_FLOOR,
            _PEAKS,
        )
        if np.isfinite(fit[0]) and (best is None or fit[0] < best[0]):
            best = (fit[0], corner, (fit[1] + 0.5) / cols, (fit[2] + 0.5) / rows)
    if best is None:
        return None
    return best[1:]


def _edge_fit(f: np.ndarray, x0: int, y0: int) -> tuple[float, float]:
    """(s, t) of inside = s*outside + t across the edges of a region whose edges fall in column
    x0 and row y0 of `f` (its corner at the top left): s from the spreads of the two sides
    (the least-squares slope is drawn towards 0 by the picture's own change between them)."""
    ya, yb = int(_FIRST * y0), max(int(_LAST * y0), int(_FIRST * y0) + 1)
    xa, xb = int(_FIRST * x0), max(int(_LAST * x0), int(_FIRST * x0) + 1)
    inside = np.concatenate([f[ya:yb, x0 - 1], f[y0 - 1, xa:xb]]).astype(np.float64)
    outside = np.concatenate([f[ya:yb, x0 + 1], f[y0 + 1, xa:xb]]).astype(np.float64)
    spread = float(outside.std())
    s = float(inside.std()) / spread if spread > 0 else 0.0
    return s, float(inside.mean() - s * outside.mean())


def _fit_near(f: np.ndarray, width: float, height: float, bounds: _Bounds) -> np.ndarray:
    """The best fit (`_corner_fit`'s row) under `bounds` of a region of `f` (the corner at its
    top left) whose edges fall within _PLACE bins of width x height (shares of the sides)."""
    rows, cols = f.shape
    x, y = int(width * cols), int(height * rows)
    xs = (max(2, x - _PLACE), min(cols - 3, x + _PLACE + 1))
    ys = (max(2, y - _PLACE), min(rows - 3, y + _PLACE + 1))
    return _corner_fit(f, xs[0], xs[1], ys[0], ys[1], _FIRST, _LAST, *bounds, 1)[0]


def _place(f: np.ndarray, width: float, height: float) -> tuple[int, int]:
    """The bins (column, row) of `f` (the corner at its top left) the region's edges fall in:
    the best fit within _PLACE bins of width x height (shares of the sides)."""
    fit = _fit_near(f, width, height, _PLACING)
    if not np.isfinite(fit[0]):
        return int(width * f.shape[1]), int(height * f.shape[0])
    return int(fit[1]), int(fit[2])


def take_off(
    fine: np.ndarray, corner: int, width: float, height: float, aspect: float = 1.0
) -> tuple[np.ndarray, tuple[int, int], float, float] | None:
    """`fine` (a luma thumbnail) with the corner region found taken off: its edges placed
    again on `fine`, s and t fitted there, original = (observed - t)/s inside, patches of
    another colour moved back (`_offsets`), clipped to 0..255; with the region's bins (rows,
    columns from the corner) and s, t. None when s is out of bounds."""
    out = fine.astype(np.float32, copy=True)
    view = _oriented(out, *CORNERS[corner])
    x0, y0 = _place(view, width, height)
    s, t = _edge_fit(view, x0, y0)
    if not _MIN_S <= s <= _MAX_S:
        return None
    observed = view[:y0, :x0].astype(np.float64)
    linear = (observed - t) / s
    region = _moved_patches(linear, s, t)
    if _ROUND > 0:
        region = _round_corners(region, observed, int(_ROUND * y0), aspect)
    view[:y0, :x0] = np.clip(region, 0.0, 255.0)
    return out, (y0, x0), s, t


def _moved_patches(linear: np.ndarray, s: float, t: float) -> np.ndarray:
    """`linear` (the region undone) with the patches of another colour moved back
    (`_offsets`): on each of `_SCALES` in turn until one moves something."""
    for scale in _SCALES:
        region = _offsets(linear, s, t, scale)
        if region is not linear:
            return region
    return linear


def _first_pixel(bin_: int, n: int, bins: int) -> int:
    """The first of the n pixels in bin `bin_` of `bins` (pixel i is in bin i * bins // n)."""
    return -(-bin_ * n // bins)


@functools.lru_cache(maxsize=64)
def _binned_matrix(n: int, bins: int) -> np.ndarray:
    """PDQ's 64 x n downscale matrix along an axis of n pixels, summed over the pixels of each
    of `bins` box bins (pixel i in bin i * bins // n): 64 x bins."""
    from vigil.fingerprint.pdq import _downscale_matrix

    dense = _downscale_matrix(n)
    owner = (np.arange(n) * bins) // n
    bounds = np.searchsorted(owner, np.arange(bins + 1))
    cumulative = np.concatenate(
        [np.zeros((1, dense.shape[0])), np.cumsum(dense.T, axis=0, dtype=np.float64)]
    )
    out = (cumulative[bounds[1:]] - cumulative[bounds[:-1]]).T.astype(np.float32)
    out.setflags(write=False)
    return out


def _region_blocks(
    pixels: np.ndarray, r0: int, r1: int, c0: int, c1: int
) -> tuple[np.ndarray, np.ndarray]:
    """PDQ's 64x64 downscale of `pixels` with everything outside rows r0..r1-1 and columns
    c0..c1-1 taken as 0, and that of the region's indicator (1 inside): its own band matrices
    cut to the region, over the region's pixels only."""
    from vigil.fingerprint.downscale import _band
    from vigil.fingerprint.pdq import _downscale_matrix

    rows, cols = pixels.shape[0], pixels.shape[1]
    dense_r = _downscale_matrix(rows)[:, r0:r1]
    dense_c = _downscale_matrix(cols)[:, c0:c1]
    indicator = np.outer(dense_r.sum(axis=1), dense_c.sum(axis=1)).astype(np.float32)
    # The kernels skip the zero weights of the outputs away from the region.
    part = np.ascontiguousarray(pixels[r0:r1, c0:c1])
    block = downscale_banded(part, _band(dense_r), _band(dense_c))
    return block, indicator


def _holds(fine: np.ndarray, corner: int, width: float, height: float) -> bool:
    """Whether the region found on the thumbnail fits under the strict bounds on the finer
    thumbnail too, its edges within _PLACE bins of where the thumbnail put them."""
    view = _oriented(fine, *CORNERS[corner])
    fit = _fit_near(view, width, height, _STRICT)
    return bool(np.isfinite(fit[0])) and _cover(view, int(fit[1]), int(fit[2])) >= _MIN_COVER


def unlogoed(pixels: np.ndarray, thumb: np.ndarray, block: np.ndarray) -> np.ndarray | None:
    """PDQ's 64x64 block of decoded `pixels` (whose block is `block`) with a semi-opaque corner
    region found on their thumbnail `thumb` taken off, or None when there is none. The
    affine part (observed -> (observed - t)/s) on PDQ's own downscale of the region's pixels
    (it is linear: only that region's pass is made again); what follows it (the patches of
    another colour, the rounded corners, the clipping) from the luma thumbnail of
    `variants.FINE` bins it is worked out on."""
    found = find_logo(thumb)
    if found is None:
        return None
    fine = fine_thumbnail(pixels)
    if not _holds(fine, *found):
        return None
    # Columns of `fine` a row of it spans (as long in pixels).
    aspect = (fine.shape[1] / pixels.shape[1]) / (fine.shape[0] / pixels.shape[0])
    undone = take_off(fine, *found, aspect)
    if undone is None:
        return None
    result, (y0, x0), s, t = undone
    flip_rows, flip_cols = CORNERS[found[0]]
    fine_rows, fine_cols = fine.shape
    # The affine part alone on the fine thumbnail, to take out of its result.
    linear = fine.astype(np.float32, copy=True)
    view = _oriented(linear, flip_rows, flip_cols)
    view[:y0, :x0] = (view[:y0, :x0] - t) / s
    rows, cols = pixels.shape[0], pixels.shape[1]
    r0, r1 = (
        (_first_pixel(fine_rows - y0, rows, fine_rows), rows)
        if flip_rows
        else (0, _first_pixel(y0, rows, fine_rows))
    )
    c0, c1 = (
        (_first_pixel(fine_cols - x0, cols, fine_cols), cols)
        if flip_cols
        else (0, _first_pixel(x0, cols, fine_cols))
    )
    region, indicator = _region_blocks(pixels, r0, r1, c0, c1)
    # PDQ's own downscale of the changes the fine thumbnail's bins stand for (each bin's
    # pixels taken as its value; only the region's bins changed): its matrices summed over the
    # pixels of each bin.
    fr0, fr1 = (fine_rows - y0, fine_rows) if flip_rows else (0, y0)
    fc0, fc1 = (fine_cols - x0, fine_cols) if flip_cols else (0, x0)
    change = result[fr0:fr1, fc0:fc1] - linear[fr0:fr1, fc0:fc1]
    rest = (
        _binned_matrix(rows, fine_rows)[:, fr0:fr1]
        @ change
        @ _binned_matrix(cols, fine_cols)[:, fc0:fc1].T
    )
    out = block + (1.0 / s - 1.0) * region - (t / s) * indicator + rest
    return out.astype(np.float32)


def _round_corners(
    region: np.ndarray, observed: np.ndarray, most: int, aspect: float
) -> np.ndarray:
    """`region` (undone) with the bins a rounded rectangle did not cover in its four corners
    put back as `observed`: the radius (0 to `most` rows; `aspect` columns a row, the bins
    being as long as `aspect` rows across) that leaves the least total variation over the
    four corner blocks."""
    rows, cols = region.shape
    most = min(most, rows // 2, int(cols / 2 / aspect))
    if most < 2:
        return region
    most_c = min(int(np.ceil(most * aspect)) + 1, cols // 2)
    # Each corner block seen with its corner at the top left (row 0, column 0).
    blocks = [
        (slice(0, most), slice(0, most_c), False, False),
        (slice(0, most), slice(cols - most_c, cols), False, True),
        (slice(rows - most, rows), slice(0, most_c), True, False),
        (slice(rows - most, rows), slice(cols - most_c, cols), True, True),
    ]
    undone = np.stack([_oriented(region[a, b], fr, fc) for a, b, fr, fc in blocks])
    seen = np.stack([_oriented(observed[a, b], fr, fc) for a, b, fr, fc in blocks])
    best_radius = _best_radius(undone, seen, aspect)
    if best_radius == 0:
        return region
    outside = _bare(best_radius, aspect, most, most_c)
    out = region.copy()
    for (a, b, fr, fc), o in zip(blocks, seen, strict=True):
        view = _oriented(out[a, b], fr, fc)
        view[...] = np.where(outside, o, view)
    return out


@numba.njit(cache=True, nogil=True)
def _bare(radius: int, aspect: float, rows: int, cols: int) -> np.ndarray:
    # The bins of a rows x cols corner block (the corner at its top left) outside the quarter
    # ellipse of `radius` rows (radius * aspect columns) there.
    out = np.zeros((rows, cols), dtype=np.bool_)
    if radius <= 0:
        return out
    ry, rx = np.float64(radius), radius * aspect
    for y in range(rows):
        dy = max(ry - (y + 0.5), 0.0) / ry
        for x in range(cols):
            dx = max(rx - (x + 0.5), 0.0) / rx
            out[y, x] = dy * dy + dx * dx > 1.0
    return out


@numba.njit(cache=True, nogil=True)
def _best_radius(undone: np.ndarray, seen: np.ndarray, aspect: float) -> int:  # pragma: no cover
    # The radius (0 .. the blocks' rows) whose bare corners (`_bare`) taken from `seen` and the
    # rest from `undone` leave the least total variation over the blocks (k, rows, cols): the
    # change from `undone`'s own, over the steps from the bins of the corner's window only
    # (the others join two bins that are not bare).
    count, rows, cols = undone.shape
    best, best_radius = 0.0, 0
    for radius in range(1, rows + 1):
        y_end = min(radius + 1, rows)
        x_end = min(int(np.ceil(radius * aspect)) + 2, cols)
        # The window and the bins after it (as `_bare`, which nothing past it is).
        bare = _bare(radius, aspect, min(y_end + 1, rows), min(x_end + 1, cols))
        change = 0.0
        for k in range(count):
            for y in range(y_end):
                for x in range(x_end):
                    v = seen[k, y, x] if bare[y, x] else undone[k, y, x]
                    u = undone[k, y, x]
                    if y + 1 < rows:
                        w = seen[k, y + 1, x] if bare[y + 1, x] else undone[k, y + 1, x]
                        change += abs(w - v) - abs(undone[k, y + 1, x] - u)
                    if x + 1 < cols:
                        w = seen[k, y, x + 1] if bare[y, x + 1] else undone[k, y, x + 1]
                        change += abs(w - v) - abs(undone[k, y, x + 1] - u)
        if change < best:
            best, best_radius = change, radius
    return best_radius


# -- patches of another colour inside the region ------------------------------------------


@numba.njit(cache=True, nogil=True)
def _label(free: np.ndarray) -> tuple[np.ndarray, int]:  # pragma: no cover - compiled
    # Connected components (4-neighbours) of the True bins: labels 1.., 0 elsewhere.
    rows, cols = free.shape
    labels = np.zeros((rows, cols), dtype=np.int32)
    stack = np.empty(rows * cols, dtype=np.int64)
    count = 0
    for i in range(rows):
        for j in range(cols):
            if not free[i, j] or labels[i, j]:
                continue
            count += 1
            labels[i, j] = count
            top = 0
            stack[0] = i * cols + j
            top = 1
            while top:
                top -= 1
                p = stack[top]
                y, x = p // cols, p % cols
                for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                    v, u = y + dy, x + dx
                    if 0 <= v < rows and 0 <= u < cols and free[v, u] and not labels[v, u]:
                        labels[v, u] = count
                        stack[top] = v * cols + u
                        top += 1
    return labels, count


def _pairs(
    labels: np.ndarray, values: np.ndarray, r: int = _REACH
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(label a, label b, value a, value b) of every two bins r apart along a row, a column or
    a diagonal that lie in two different components."""
    rows, cols = labels.shape
    out_a, out_b, out_va, out_vb = [], [], [], []
    for dy, dx in ((0, r), (r, 0), (r, r), (r, -r)):
        xa, xb = (
            (slice(0, cols - dx), slice(dx, cols))
            if dx >= 0
            else (slice(-dx, cols), slice(0, cols + dx))
        )
        a, b = labels[: rows - dy, xa], labels[dy:, xb]
        keep = (a > 0) & (b > 0) & (a != b)
        out_a.append(a[keep])
        out_b.append(b[keep])
        out_va.append(values[: rows - dy, xa][keep])
        out_vb.append(values[dy:, xb][keep])
    return (
        np.concatenate(out_a),
        np.concatenate(out_b),
        np.concatenate(out_va),
        np.concatenate(out_vb),
    )


def _offsets(region: np.ndarray, s: float, t: float, scale: int = 1) -> np.ndarray:
    """`region` (the corner region with the overlay's s, t taken off) with the patches of
    another colour inside it moved back: bins whose step to a neighbour is far over the
    region's typical one outline patches; a patch that does not reach the region's sides is
    moved by the median step across its outline to the patches known already (the largest on
    the sides: 0), when those steps agree (their median deviation under _AGREE of it); another
    patch on the sides (a rounded corner of the overlay, which left the picture there as it
    was) is put back as it was (s*value + t) when that takes most of the step across its
    outline away; the outline's own bins beside a moved patch are filled from their
    neighbours. A part of the picture inside a patch (steps across its outline far over the
    region's that do not agree) is moved with the patches that enclose it (_ENCLOSED of its
    pairs across). Looked for on `scale` (the region smoothed over 2 scale + 1 bins a side,
    steps across two bins `scale` apart, pairs _REACH times `scale` apart)."""
    rows, cols = region.shape
    if rows < 8 * scale or cols < 8 * scale:
        return region
    # Outlines looked for, and steps across them measured, on the region smoothed over 3 x 3
    # bins: a grainy picture's own steps are far smaller there, a patch's stay.
    # (On a coarser scale, `scale` bins for one, the picture's own finer pattern fades too.)
    r = scale
    if r == 1:
        padded = np.pad(region, 1, mode="edge")
        smooth = np.zeros_like(region)
        for i in range(3):
            for j in range(3):
                smooth += padded[i : i + rows, j : j + cols]
        smooth /= 9.0
    else:
        padded = np.pad(region, ((r + 1, r), (r + 1, r)), mode="edge")
        sums = padded.cumsum(axis=0).cumsum(axis=1)
        w = 2 * r + 1
        smooth = (sums[w:, w:] - sums[:-w, w:] - sums[w:, :-w] + sums[:-w, :-w]) / float(w * w)
    step = np.zeros_like(region)
    step[:, r:-r] = np.abs(smooth[:, 2 * r :] - smooth[:, : -2 * r])
    step[r:-r, :] = np.maximum(step[r:-r, :], np.abs(smooth[2 * r :, :] - smooth[: -2 * r, :]))
    share = _OFFSET_SHARE if scale == 1 else _COARSE_SHARE
    threshold = max(_OFFSET_STEP, share * float(np.median(step)))
    edge = step > threshold
    labels, count = _label(~edge)
    if count <= 1:
        return region
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    known = np.full(count + 1, np.nan)
    sides = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    sides = sides[sides > 0]
    main = int(sides[np.argmax(sizes[sides])]) if sides.size else int(np.argmax(sizes[1:]) + 1)
    known[main] = 0.0
    reach = _REACH * scale
    a, b, va, vb = _pairs(labels, smooth, reach)
    d = va - vb
    moved = np.zeros(count + 1, dtype=bool)
    restored = np.zeros(count + 1, dtype=bool)
    # The other patches on the sides: as they were (a rounded corner), else as they are.
    for k in sides:
        known[k] = 0.0
        if k == main or sizes[k] < _MIN_PATCH:
            continue
        mine_a = (a == k) & (b == main)
        mine_b = (b == k) & (a == main)
        if mine_a.sum() + mine_b.sum() < _MIN_PAIRS:
            continue
        here = np.concatenate([va[mine_a], vb[mine_b]])
        there = np.concatenate([vb[mine_a], va[mine_b]])
        as_is = float(np.median(np.abs(here - there)))
        back = float(np.median(np.abs(here * s + t - there)))
        restored[k] = as_is > threshold and back < _RESTORE * as_is
    # Each pair seen from both of its patches, grouped by the first: (patch, other, step).
    mine = np.concatenate([a, b])
    other = np.concatenate([b, a])
    steps = np.concatenate([d, -d])
    by = np.argsort(mine, kind="stable")
    mine, other, steps = mine[by], other[by], steps[by]
    bounds = np.searchsorted(mine, np.arange(count + 2))
    order = [k for k in np.argsort(-sizes) if k > 0 and sizes[k] >= _MIN_PATCH]
    unsure = np.zeros(count + 1, dtype=bool)
    changed = True
    while changed:
        changed = False
        for k in order:
            if not np.isnan(known[k]):
                continue
            lo, hi = bounds[k], bounds[k + 1]
            across = known[other[lo:hi]]
            ok = ~np.isnan(across)
            if ok.sum() < _MIN_PAIRS:
                continue
            diffs = steps[lo:hi][ok] + across[ok]
            shift = float(np.median(diffs))
            agree = float(np.median(np.abs(diffs - shift))) < _AGREE * abs(shift)
            if abs(shift) > threshold and not agree:
                # Not a reference for the others (a part of the picture inside a patch, or
                # one astride its outline): decided below.
                if not unsure[k]:
                    unsure[k] = True
                    changed = True
                continue
            known[k] = shift if abs(shift) > threshold else 0.0
            moved[k] = known[k] != 0.0
            changed = True
    # The parts left (small, or unsure) that the moved patches enclose: moved with them.
    if moved.any():
        changed = True
        while changed:
            changed = False
            for k in range(1, count + 1):
                if not np.isnan(known[k]):
                    continue
                lo, hi = bounds[k], bounds[k + 1]
                if hi - lo < _MIN_ENCLOSED:
                    continue
                partners = other[lo:hi]
                inside = moved[partners]
                if inside.mean() < _ENCLOSED:
                    continue
                known[k] = float(np.median(known[partners[inside]]))
                moved[k] = True
                changed = True
    if restored.any():
        region = np.where(restored[labels], region * s + t, region)
        moved |= restored
    if not moved.any():
        return region
    out = region.copy()
    shift = np.nan_to_num(known)[labels]
    out -= np.where(moved[labels], shift, 0.0)
    # The outline beside a moved patch (its bins mixed): filled from the neighbours.
    near = moved[labels]
    for _ in range(reach):
        near[1:] |= near[:-1]
        near[:-1] |= near[1:]
        near[:, 1:] |= near[:, :-1]
        near[:, :-1] |= near[:, 1:]
    hole = edge & near
    return _fill(out, hole, 2 * reach)


@numba.njit(cache=True, nogil=True)
def _fill(values: np.ndarray, hole: np.ndarray, passes: int) -> np.ndarray:  # pragma: no cover
    # `values` with the `hole` bins filled from their neighbours: in each of `passes` passes,
    # every hole bin beside a known one takes the mean of its known neighbours (as the pass
    # found them); the bins still unknown after that keep their values.
    rows, cols = values.shape
    out = values.copy()
    known = ~hole
    for _ in range(passes):
        now = known.copy()
        for y in range(rows):
            for x in range(cols):
                if known[y, x]:
                    continue
                total, n = 0.0, 0
                for v, u in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                    if 0 <= v < rows and 0 <= u < cols and known[v, u]:
                        total += out[v, u]
                        n += 1
                if n:
                    out[y, x] = total / n
                    now[y, x] = True
        known = now
    return out


def warm() -> None:
    """Load (or compile) the kernels now."""
    probe = np.zeros((64, 64), dtype=np.float32)
    for flip_rows, flip_cols in CORNERS:
        find_logo(np.ascontiguousarray(probe))
        _corner_search(
            _oriented(probe, flip_rows, flip_cols), 8, 30, 8, 30, 0.04, 0.12, 2.0, 1.0, 3
        )
    _place(_oriented(probe, True, True), 0.3, 0.3)
    _label(np.ones((4, 4), dtype=np.bool_))
    _fill(np.zeros((4, 4)), np.ones((4, 4), dtype=np.bool_), 1)
    _best_radius(np.zeros((4, 3, 3)), np.zeros((4, 3, 3)), 1.0)
