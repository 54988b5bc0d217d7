"""PDQ's 64x64 downscale straight from decoded 8-bit pixels, in one compiled pass.

`pdq.downscale_64` is `Mrows @ luma @ Mcols.T` with two 64xN band matrices (the Jarosz box
filters and the decimation of each axis). Each of their rows is non-zero on a narrow band only
(about N/64 pixels), so the product is 64 weighted sums of a few image rows, then 64 weighted
sums of a few columns of that. This module does exactly that on uint8 RGB (or grey) pixels as a
decoder wrote them: the luma `(299 R + 587 G + 114 B) / 1000` (Pillow's RGB->F, which the float
path uses) is formed per pixel inside the row sums, so neither the float luma plane nor the dense
products are ever made. The 1/1000 is applied once to the 64x64 result (a positive scale of the
whole block: it changes no bit, and the quality metric sees the same 0..255 range).

With the scanned-side variants (`vigil.fingerprint.variants`), the same pass also sums the luma
into the variants' thumbnail bins (`downscale_pixels_binned`): each pixel row is read and its
luma formed once for both, with every sum's terms added in the order of the separate kernels,
so the block and the thumbnail are theirs to the bit. The variants' regions of the pixels (the
picture without its borders) are made in one more pass for all of them (`downscale_regions`),
each sum's terms again in the order of the pass for one region alone.
"""

from __future__ import annotations

import functools
import sys

import numba
import numpy as np

_OUT = 64
_LITTLE = sys.byteorder == "little"


@functools.lru_cache(maxsize=128)
def reduced_band(matrix_key: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(start, weights) of `pdq._reduced_matrix(full, n)`: row k is weights[k] at start[k]."""
    from vigil.fingerprint import pdq

    full, n = matrix_key
    return _band(np.asarray(pdq._reduced_matrix(full, n), dtype=np.float32))


def _band(dense: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rows, n = dense.shape
    nonzero = dense != 0
    any_nz = nonzero.any(axis=1)
    first = np.where(any_nz, nonzero.argmax(axis=1), 0)
    last = np.where(any_nz, n - 1 - nonzero[:, ::-1].argmax(axis=1), 0)
    width = int((last - first).max()) + 1
    start = np.minimum(first, max(n - width, 0)).astype(np.int64)
    width = min(width, n)
    weights = np.zeros((rows, width), dtype=np.float32)
    for k in range(rows):
        weights[k] = dense[k, start[k] : start[k] + width]
    start.setflags(write=False)
    weights.setflags(write=False)
    return start, weights


@numba.njit(cache=True)
def jarosz_band(n: int, full: int, half: int) -> tuple[np.ndarray, np.ndarray]:
    """The band form of PDQ's downscale matrix along an axis of n pixels (window `full`,
    half-window `half`): row k is `weights[k]` placed at column `start[k]`.

    Compiled because every image size met costs one per axis (a corpus of many sizes pays it
    per photo): about 5x the NumPy formulation, which the tests keep as the reference and
    compare with bit for bit."""
    lo = np.empty(n, np.int64)
    hi = np.empty(n, np.int64)
    for o in range(n):
        lo[o] = max(o - (full - half), 0)
        hi[o] = min(o + half - 1, n - 1)
    start = np.empty(_OUT, np.int64)
    weights = np.zeros((_OUT, 2 * full), np.float32)
    wt = np.empty(full, np.float64)
    olo = np.empty(full, np.int64)
    ohi = np.empty(full, np.int64)
    for k in range(_OUT):
        # Decimation picks the target centre, in double as `decimateFloat` does.
        pick = np.int64(((k + 0.5) * n) / _OUT)
        first = lo[pick]
        last = hi[pick]
        s = lo[min(first, n - 1)]
        start[k] = s
        # Row k = e_pick^T B B: the first-pass outputs o in window(pick) each spread
        # 1 / len(window(o)) / len(window(pick)) over their own window.
        for t in range(full):
            o = first + t
            oc = min(o, n - 1)
            wt[t] = 1.0 / ((hi[oc] - lo[oc] + 1) * (last - first + 1)) if o <= last else 0.0
            olo[t] = lo[oc]
            ohi[t] = hi[oc]
        for b in range(2 * full):
            j = s + b
            if j > n - 1:
                continue  # past the last pixel: no weight
            total = 0.0
            for t in range(full):
                if olo[t] <= j and j <= ohi[t]:
                    total += wt[t]
            weights[k, b] = np.float32(total)
    return start, weights


def axis_bands(
    shape: tuple[int, int], full_shape: tuple[int, int] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Band forms of the row and column matrices for an image of `shape` (rows, columns).

    `full_shape`: the size of the full image when `shape` is a reduced (DCT-scaled) decode.
    """
    rows, cols = shape
    if full_shape is None or full_shape == shape:
        from vigil.fingerprint.pdq import downscale_band

        r = downscale_band(rows)
        c = downscale_band(cols)
    else:
        r = reduced_band((full_shape[0], rows))
        c = reduced_band((full_shape[1], cols))
    return r[0], r[1], c[0], c[1]


@numba.njit(inline="always")
def word_luma(p: int) -> np.float32:  # pragma: no cover - compiled (inlined where it is called)
    """The luma (x1000) of one RGBX pixel word (R in the low byte): 299 R + 587 G + 114 B, as
    PDQ weighs them, in float32."""
    return np.float32(
        np.int32(p & 255) * 299 + np.int32((p >> 8) & 255) * 587 + np.int32((p >> 16) & 255) * 114
    )


@numba.njit(cache=True, nogil=True, fastmath=True)
def _rows_rgbx(
    words: np.ndarray, rstart: np.ndarray, rweights: np.ndarray
) -> np.ndarray:  # pragma: no cover - compiled
    # words: HxW uint32, one RGBX pixel each (R in the low byte: little-endian memory order).
    # The luma is formed inside the weighted sum: the bands of neighbouring outputs hardly
    # share a row, so keeping a luma line to reuse cost more (an extra pass) than it saved.
    height, width = words.shape
    acc = np.zeros((_OUT, width), dtype=np.float32)
    for k in range(_OUT):
        s = rstart[k]
        a = acc[k]
        for t in range(rweights.shape[1]):
            w = rweights[k, t]
            y = s + t
            if w == 0.0 or y >= height:
                continue
            row = words[y]
            for x in range(width):
                p = row[x]
                a[x] += w * word_luma(p)
    return acc


@numba.njit(cache=True, nogil=True, fastmath=True)
def _rows_rgbx_binned(
    words: np.ndarray, rstart: np.ndarray, rweights: np.ndarray, out_rows: int, out_cols: int
) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    # `_rows_rgbx` and the thumbnail's bin sums (`variants._bin_words`) in one pass over the
    # pixels: each row's luma is formed once into a line, added to the bin's line, then to the
    # row sums of every output whose band has the row. Each sum adds the same terms in the same
    # order as those two kernels (rows ascending), so both results are theirs to the bit.
    height, width = words.shape
    acc = np.zeros((_OUT, width), dtype=np.float32)
    bins = np.zeros((out_rows, out_cols), dtype=np.float32)
    luma = np.empty(width, dtype=np.float32)
    line = np.empty(width, dtype=np.float32)
    # Column x is in bin x * out_cols // width: bin c ends at the first column of the next.
    ends = ((np.arange(1, out_cols + 1) * width) + out_cols - 1) // out_cols
    band = rweights.shape[1]
    first = 0  # the first output whose band may still hold a row (the starts ascend)
    y = 0
    for r in range(out_rows):
        end = ((r + 1) * height + out_rows - 1) // out_rows
        line[:] = 0.0
        while y < end:
            row = words[y]
            while first < _OUT and rstart[first] + band <= y:
                first += 1
            # The outputs whose band has this row: almost always one (PDQ's bands tile the
            # rows), then its sum is added in the same loop as the bin's.
            count = 0
            only = 0
            k = first
            while k < _OUT and rstart[k] <= y:
                if rweights[k, y - rstart[k]] != 0.0:
                    count += 1
                    only = k
                k += 1
            if count == 1:
                w = rweights[only, y - rstart[only]]
                a = acc[only]
                for x in range(width):
                    p = row[x]
                    v = word_luma(p)
                    line[x] += v
                    a[x] += w * v
                y += 1
                continue
            for x in range(width):
                p = row[x]
                v = word_luma(p)
                luma[x] = v
                line[x] += v
            k = first
            while k < _OUT and rstart[k] <= y:
                w = rweights[k, y - rstart[k]]
                if w != 0.0:
                    a = acc[k]
                    for x in range(width):
                        a[x] += w * luma[x]
                k += 1
            y += 1
        _add_bins(line, ends, bins[r])
    return acc, bins


@numba.njit(cache=True, nogil=True)
def _add_bins(line: np.ndarray, ends: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover
    # out[c] = the sum of line over bin c's columns, in column order (a sum per bin in a
    # register: adding each column into out[c] in memory waited on the store before it).
    x = 0
    for c in range(out.shape[0]):
        total = np.float32(0.0)
        end = ends[c]
        while x < end:
            total += line[x]
            x += 1
        out[c] = total


@numba.njit(cache=True, nogil=True, fastmath=True)
def _rows_grey(
    pixels: np.ndarray, rstart: np.ndarray, rweights: np.ndarray
) -> np.ndarray:  # pragma: no cover - compiled
    height, width = pixels.shape[0], pixels.shape[1]
    acc = np.zeros((_OUT, width), dtype=np.float32)
    for k in range(_OUT):
        s = rstart[k]
        for t in range(rweights.shape[1]):
            w = rweights[k, t]
            y = s + t
            if w == 0.0 or y >= height:
                continue
            a = acc[k]
            row = pixels[y]
            for x in range(width):
                a[x] += w * np.float32(row[x])
    return acc


@numba.njit(cache=True, nogil=True)
def _columns(
    acc: np.ndarray, cstart: np.ndarray, cweights: np.ndarray, scale: np.float32
) -> np.ndarray:  # pragma: no cover - compiled
    # Each output is one weighted sum, added in column order (no fastmath: the order is fixed);
    # four rows at a time give the processor four independent sums to overlap.
    width = acc.shape[1]
    out = np.empty((_OUT, _OUT), dtype=np.float32)
    for j in range(_OUT):
        s = cstart[j]
        n = min(cweights.shape[1], width - s)  # weights past the last column are zero
        wj = cweights[j]
        for k in range(0, _OUT, 4):
            a0, a1, a2, a3 = acc[k], acc[k + 1], acc[k + 2], acc[k + 3]
            t0 = t1 = t2 = t3 = np.float32(0.0)
            for t in range(n):
                w = wj[t]
                x = s + t
                t0 += w * a0[x]
                t1 += w * a1[x]
                t2 += w * a2[x]
                t3 += w * a3[x]
            out[k, j] = t0 * scale
            out[k + 1, j] = t1 * scale
            out[k + 2, j] = t2 * scale
            out[k + 3, j] = t3 * scale
    return out


def downscale_pixels(pixels: np.ndarray, full_shape: tuple[int, int] | None = None) -> np.ndarray:
    """The 64x64 PDQ block of uint8 pixels: HxWx3 (or HxWx4, the 4th ignored) RGB, or HxW grey.

    Equal (to float rounding) to `pdq.downscale_64` of the float luma of the same pixels.
    """
    rows, cols = pixels.shape[0], pixels.shape[1]
    rstart, rweights, cstart, cweights = axis_bands((rows, cols), full_shape)
    return downscale_banded(pixels, (rstart, rweights), (cstart, cweights))


def downscale_pixels_binned(
    pixels: np.ndarray, full_shape: tuple[int, int] | None, bins: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """`downscale_pixels` of HxWx3/HxWx4 pixels and, from the same pass over them, the luma
    summed over `bins` (rows, columns) boxes, scaled by 1000 (as `variants.thumbnail` sums
    them): the thumbnail the variants are cut from, without a second read of the pixels. Also
    the pass's row sums (64 x W): `downscale_columns` of them under another column band is the
    block of a region of all the rows, without another pass over the pixels. None when the row
    band's starts do not ascend (never for PDQ's bands): then the two passes apart."""
    rows, cols = pixels.shape[0], pixels.shape[1]
    rstart, rweights, cstart, cweights = axis_bands((rows, cols), full_shape)
    if np.any(rstart[1:] < rstart[:-1]):  # never seen (the kernel relies on it): two passes
        return None
    acc, sums = _rows_rgbx_binned(pixel_words(pixels), rstart, rweights, bins[0], bins[1])
    return _columns(acc, cstart, cweights, np.float32(1.0 / 1000.0)), sums, acc


@numba.njit(cache=True, nogil=True, fastmath=True)
def _rows_rgbx_regions(
    words: np.ndarray, rstarts: np.ndarray, rweights: np.ndarray, xlo: np.ndarray, xhi: np.ndarray
) -> np.ndarray:  # pragma: no cover - compiled
    # `_rows_rgbx` under m row bands at once (region i: rstarts[i], rweights[i], its weights
    # padded with zeros to one width), in one pass over the pixels: each row's luma is formed
    # once (over the columns any region reads), then added to the row sums of every output of
    # every region whose band has the row, over that region's columns xlo[i]..xhi[i]-1 only
    # (the others stay 0: the column pass does not read them). Each sum adds the same terms in
    # the same order as `_rows_rgbx` (rows ascending), so its sums over those columns are its
    # own.
    # The pass was bound by reading the pixels: a photo's regions cost about one pass, not one
    # each.
    height, width = words.shape
    m = rstarts.shape[0]
    band = rweights.shape[2]
    acc = np.zeros((m, _OUT, width), dtype=np.float32)
    luma = np.empty(width, dtype=np.float32)
    first = np.zeros(m, dtype=np.int64)  # per region, as in `_rows_rgbx_binned` (starts ascend)
    lo, hi = width, 0
    ylo, yhi = height, 0
    for i in range(m):
        lo = min(lo, xlo[i])
        hi = max(hi, xhi[i])
        ylo = min(ylo, rstarts[i, 0])
        yhi = max(yhi, rstarts[i, _OUT - 1] + band)
    for y in range(ylo, min(yhi, height)):
        formed = False
        for i in range(m):
            while first[i] < _OUT and rstarts[i, first[i]] + band <= y:
                first[i] += 1
            k = first[i]
            while k < _OUT and rstarts[i, k] <= y:
                w = rweights[i, k, y - rstarts[i, k]]
                if w != 0.0:
                    # Slices, each indexed from 0: a loop from another start is not
                    # vectorised (a negative index would wrap around).
                    if not formed:
                        row, line = words[y, lo:hi], luma[lo:hi]
                        for x in range(row.shape[0]):
                            p = row[x]
                            line[x] = word_luma(p)
                        formed = True
                    a, part = acc[i, k, xlo[i] : xhi[i]], luma[xlo[i] : xhi[i]]
                    for x in range(a.shape[0]):
                        a[x] += w * part[x]
                k += 1
    return acc


def _band_columns(col_band: Band, width: int) -> tuple[int, int]:
    """The columns lo..hi-1 `_columns` reads under a column band, within an image `width` wide
    (those it weighs, and the zero weights among them)."""
    cstart, cweights = col_band
    return int(cstart.min()), min(int(cstart.max()) + cweights.shape[1], width)


def downscale_regions(pixels: np.ndarray, regions: list[tuple[Band, Band]]) -> list[np.ndarray]:
    """`downscale_banded(pixels, rows, cols)` for each (rows, cols) of `regions`, to the bit:
    of HxWx3/HxWx4 pixels, the regions' row passes in one pass over the pixels (regions with
    the same row band share their row sums), each over the columns its column band reads
    (the pass is bound by forming each pixel's luma: once, not once a region); of a grey or
    float plane, apart (there a shared pass cost more than it saved)."""
    if pixels.ndim != 3:
        return [downscale_banded(pixels, rows, cols) for rows, cols in regions]
    if not regions:
        return []
    width = pixels.shape[1]
    keys: dict[tuple[bytes, bytes], int] = {}
    bands: list[Band] = []
    spans: list[list[int]] = []
    which: list[int] = []
    for rows, cols in regions:
        key = (rows[0].tobytes(), rows[1].tobytes())
        lo, hi = _band_columns(cols, width)
        i = keys.setdefault(key, len(bands))
        if i == len(bands):
            bands.append(rows)
            spans.append([lo, hi])
        else:
            spans[i] = [min(spans[i][0], lo), max(spans[i][1], hi)]
        which.append(i)
    if any(np.any(start[1:] < start[:-1]) for start, _ in bands):  # never for PDQ's bands
        return [downscale_banded(pixels, rows, cols) for rows, cols in regions]
    widest = max(weights.shape[1] for _, weights in bands)
    rstarts = np.stack([start for start, _ in bands])
    rweights = np.zeros((len(bands), _OUT, widest), dtype=np.float32)
    for i, (_, weights) in enumerate(bands):
        rweights[i, :, : weights.shape[1]] = weights
    xlo = np.array([lo for lo, _ in spans], dtype=np.int64)
    xhi = np.array([hi for _, hi in spans], dtype=np.int64)
    acc = _rows_rgbx_regions(pixel_words(pixels), rstarts, rweights, xlo, xhi)
    scale = np.float32(1.0 / 1000.0)
    return [
        _columns(acc[i], cols[0], cols[1], scale)
        for i, (_, cols) in zip(which, regions, strict=True)
    ]


def downscale_columns(row_sums: np.ndarray, col_band: Band) -> np.ndarray:
    """The 64x64 block of RGB pixels whose row pass left `row_sums` (`downscale_pixels_binned`)
    under the column band `col_band`: `downscale_banded` of the pixels with the same rows."""
    return _columns(row_sums, col_band[0], col_band[1], np.float32(1.0 / 1000.0))


Band = tuple[np.ndarray, np.ndarray]


def pixel_words(pixels: np.ndarray) -> np.ndarray:
    """HxW uint32 RGBX words of HxWx3/HxWx4 pixels (the decoder's buffer itself when it can)."""
    rows, cols = pixels.shape[0], pixels.shape[1]
    if _LITTLE and pixels.shape[2] == 4 and pixels.flags.c_contiguous:
        return pixels.view(np.uint32).reshape(rows, cols)  # the decoder's buffer as it is
    # RGB, or another byte order: the same words, built (an extra pass; rare)
    return (
        pixels[..., 0].astype(np.uint32)
        | (pixels[..., 1].astype(np.uint32) << 8)
        | (pixels[..., 2].astype(np.uint32) << 16)
    )


def downscale_banded(pixels: np.ndarray, row_band: Band, col_band: Band) -> np.ndarray:
    """The 64x64 block of pixels (as `downscale_pixels` takes them, or an HxW float luma plane)
    under any band matrices of the image's rows and columns (e.g. those of a region of it, or
    of it with margins added: vigil.fingerprint.variants)."""
    rstart, rweights = row_band
    cstart, cweights = col_band
    if pixels.ndim == 3:
        acc = _rows_rgbx(pixel_words(pixels), rstart, rweights)
        return _columns(acc, cstart, cweights, np.float32(1.0 / 1000.0))
    acc = _rows_grey(np.ascontiguousarray(pixels), rstart, rweights)
    return _columns(acc, cstart, cweights, np.float32(1.0))


def warm() -> None:
    """Load (or compile) every kernel now, e.g. in a parent before it forks its workers.

    Loading numba's compiled code takes a few tenths of a second per process; done once before
    `fork`, every worker inherits it instead of paying it on its first image.
    """
    downscale_pixels(np.zeros((8, 8, 4), dtype=np.uint8))
    downscale_pixels(np.zeros((8, 8), dtype=np.uint8))
    downscale_pixels_binned(np.zeros((8, 8, 4), dtype=np.uint8), None, (8, 8))
    band = jarosz_band(8, 1, 1)
    downscale_regions(np.zeros((8, 8, 4), dtype=np.uint8), [(band, band)])
