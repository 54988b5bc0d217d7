"""Meta's PDQ perceptual hash in NumPy, faithful to the reference C++ (facebook/ThreatExchange).

The reference (`pdq/cpp/hashing/pdqhashing.cpp`, `pdq/cpp/downscaling/downscaling.cpp`):
float luma -> two passes of a Jarosz box filter per axis (window `(old + 2*64 - 1) / (2*64)`)
-> decimation to 64x64 by sampling pixel `(int)(((i + 0.5) * old) / 64)` -> quality metric on the
64x64 gradients -> 16x64 DCT (rows 1..16, no DC) applied on both sides -> 16x16 coefficients
-> bit k (k = 16*row + col) set where the coefficient is above the median (Torben's lower median).

The box filters and the decimation are linear and separable, so each axis is one 64xN matrix
(built once per dimension, cached); the whole downscale is `Mrows @ luma @ Mcols.T`. That is a
single BLAS call over the pixels instead of eight running-sum sweeps.
"""

from __future__ import annotations

import functools

import numba
import numpy as np

from vigil.fingerprint.downscale import (
    downscale_banded,
    downscale_columns,
    downscale_pixels,
    downscale_pixels_binned,
    downscale_regions,
    jarosz_band,
)
from vigil.fingerprint.downscale import warm as downscale_warm
from vigil.fingerprint.fingerprints import PDQ
from vigil.fingerprint.image import (
    REDUCED_SCALE,
    decode_jpeg_pixels,
    decode_luma,
    decode_luma_sized,
    reduced_jpeg_decode,
)
from vigil.fingerprint.unlogo import unlogoed
from vigil.fingerprint.unlogo import warm as unlogo_warm
from vigil.fingerprint.unveil import unveiled
from vigil.fingerprint.unveil import warm as unveil_warm
from vigil.fingerprint.variants import (
    masked_blocks,
    thumbnail,
    thumbnail_bins,
    thumbnail_from_sums,
    variant_frames,
)
from vigil.fingerprint.variants import warm as variants_warm
from vigil.kinds import (  # noqa: F401  (the thresholds are the PDQ kind's, named here too)
    PDQ_MATCH_DISTANCE,
    PDQ_QUALITY_THRESHOLD,
)

# The reference returns an all-zero hash of quality 0 below this size (pdqhashing.cpp).
MIN_HASHABLE_DIM = 5
_DOWNSAMPLE = 64
_NUM_JAROSZ_PASSES = 2
_ZERO_HASH = "0" * 64
_ZERO_PDQ = PDQ(_ZERO_HASH, 0, (_ZERO_HASH,) * 8)


def _jarosz_window(old: int, new: int) -> int:
    """`computeJaroszFilterWindowSize`: half of old/new per pass, rounded up."""
    return (old + 2 * new - 1) // (2 * new)


@functools.lru_cache(maxsize=128)
def downscale_band(n: int) -> tuple[np.ndarray, np.ndarray]:
    """`_downscale_matrix(n)` in band form: row k is `weights[k]` placed at column `start[k]`.

    Weights at columns past the last pixel are zero. Two Jarosz passes and the decimation:
    row k = e_pick^T B B, where (B x)_o = mean(x[lo[o]..hi[o]]) (`downscale.jarosz_band`).
    """
    full = _jarosz_window(n, _DOWNSAMPLE)
    start, weights = jarosz_band(n, full, (full + 2) // 2)
    start.setflags(write=False)
    weights.setflags(write=False)
    return start, weights


@functools.lru_cache(maxsize=64)
def _downscale_matrix(n: int) -> np.ndarray:
    """The 64 x n matrix of two box-filter passes followed by decimation, along one axis."""
    start, weights = downscale_band(n)
    cols = start[:, None] + np.arange(weights.shape[1])[None, :]
    real = cols <= n - 1
    rows = np.broadcast_to(np.arange(_DOWNSAMPLE)[:, None], cols.shape)
    matrix = np.zeros((_DOWNSAMPLE, n), dtype=np.float32)
    matrix[rows[real], cols[real]] = weights[real]
    matrix.setflags(write=False)
    return matrix


@functools.lru_cache(maxsize=64)
def _reduced_matrix(full: int, reduced: int) -> np.ndarray:
    """The full-size axis matrix summed over the pixels each reduced pixel stands for.

    A DCT-scaled decode at 1/s gives (about) the mean of each s x s block, so the full-size
    filter's weights of a block, summed, applied to its mean approximate the full-size result
    far better than filtering the small image with its own (much narrower) PDQ windows.
    """
    matrix = _downscale_matrix(full).astype(np.float64)
    scale = max(1, round(full / reduced))
    owner = np.minimum(np.arange(full) // scale, reduced - 1)
    # Sum the rows of matrix.T owned by each reduced pixel (owner is non-decreasing): cumulative
    # sums at the owners' boundaries (np.add.at did the same, ~100x slower).
    bounds = np.searchsorted(owner, np.arange(reduced + 1))
    cumulative = np.concatenate([np.zeros((1, _DOWNSAMPLE)), np.cumsum(matrix.T, axis=0)])
    out = cumulative[bounds[1:]] - cumulative[bounds[:-1]]
    result = np.ascontiguousarray(out.T, dtype=np.float32)
    result.setflags(write=False)
    return result


def _dct_matrix() -> np.ndarray:
    """The 16x64 DCT-II rows 1..16 (no DC), scaled by sqrt(2/64), as `dct_matrix_64`."""
    i = np.arange(1, 17, dtype=np.float64)[:, None]
    j = np.arange(64, dtype=np.float64)[None, :]
    matrix = np.sqrt(2.0 / 64) * np.cos((np.pi / 2.0 / 64) * i * (2 * j + 1))
    return matrix.astype(np.float32)


_DCT = _dct_matrix()
_DCT_T = np.ascontiguousarray(_DCT.T)

# Sign patterns that turn the DCT of the original into the DCT of a rotated/flipped picture
# (`dct16OriginalTo*` in pdqhashing.cpp): odd-index rows/columns are even functions of the flip.
_IDX = np.arange(16)
_ODD = np.where(_IDX & 1, 1.0, -1.0).astype(np.float32)
_SIGN_ROWS = _ODD[:, None]  # +1 on odd rows i, -1 on even rows
_SIGN_COLS = _ODD[None, :]  # +1 on odd columns j, -1 on even columns
_CHECKER = np.where((_IDX[:, None] + _IDX[None, :]) & 1, -1.0, 1.0).astype(np.float32)


def _dihedral_dcts(d: np.ndarray) -> tuple[np.ndarray, ...]:
    """The 16x16 DCT of each of the 8 variants, in DIHEDRAL_NAMES order."""
    return (
        d,  # original
        (d * _SIGN_COLS).T,  # rotate90
        d * _CHECKER,  # rotate180
        (d * _SIGN_ROWS).T,  # rotate270
        d * _SIGN_ROWS,  # flipx
        d * _SIGN_COLS,  # flipy
        d.T,  # flip_plus1
        (d * _CHECKER).T,  # flip_minus1
    )


# The same as a gather: variant v's coefficients are the original's at _PERM[v], times _SIGN[v].
# (Built by applying the variants to 1..256: a coefficient's number and sign, never -0.)
_TAGS = np.stack(_dihedral_dcts(np.arange(1, 257, dtype=np.float32).reshape(16, 16)))
_PERM = (np.abs(_TAGS).reshape(8, 256) - 1).astype(np.intp)
_SIGN = np.sign(_TAGS).reshape(8, 256).astype(np.float32)


def _hashes_hex(dcts: np.ndarray) -> tuple[str, ...]:
    """Per row of `dcts` (one 16x16 DCT per row, row-major): threshold at the median; bit k =
    coefficient k, hex most significant first."""
    # Torben's median over 256 values is the lower median: the 128th smallest.
    medians = np.partition(dcts, 127, axis=1)[:, 127:128]
    # Hash256 prints its 16-bit words from w[15] down to w[0]: the 256-bit number, big-endian.
    packed = np.packbits(dcts > medians, axis=1, bitorder="little")[:, ::-1]
    return tuple(row.tobytes().hex() for row in packed)


@numba.njit(cache=True, nogil=True)
def _gradient_sum(block: np.ndarray) -> int:  # pragma: no cover - compiled
    # Float32 arithmetic then C's truncation toward zero, as `int d = ((u - v) * 100) / 255`.
    # Each line's terms summed in 32 bits (a line of a 64x64 block of 0..255 values stays under
    # 6,500), whole lines at a time: the compiler vectorises that loop (twice as fast).
    total = 0
    hundred = np.float32(100.0)
    scale = np.float32(255.0)
    for i in range(63):
        a, b = block[i], block[i + 1]
        line = np.int32(0)
        for j in range(64):
            line += abs(np.int32((a[j] - b[j]) * hundred / scale))
        total += int(line)
    for i in range(64):
        a = block[i]
        line = np.int32(0)
        for j in range(63):
            line += abs(np.int32((a[j] - a[j + 1]) * hundred / scale))
        total += int(line)
    return total


@numba.njit(cache=True, nogil=True)
def _gradient_sums(blocks: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    sums = np.empty(blocks.shape[0], dtype=np.int64)
    for n in range(blocks.shape[0]):
        sums[n] = _gradient_sum(blocks[n])
    return sums


def _quality(block: np.ndarray) -> int:
    """`pdqImageDomainQualityMetric`: significant 64x64 gradients, scaled, capped at 100."""
    return min(_gradient_sum(np.ascontiguousarray(block, dtype=np.float32)) // 90, 100)


def downscale_64(luma: np.ndarray, full_shape: tuple[int, int] | None = None) -> np.ndarray:
    """The reference's 64x64 blurred, decimated luma (`buffer64x64`) of an HxW luma array.

    `full_shape`: the size of the image `luma` is a reduced decode of (see `_reduced_matrix`).
    """
    rows, cols = luma.shape
    image = np.asarray(luma, dtype=np.float32)
    if full_shape is not None and full_shape != (rows, cols):
        return (_reduced_matrix(full_shape[0], rows) @ image) @ _reduced_matrix(
            full_shape[1], cols
        ).T
    if rows == _DOWNSAMPLE and cols == _DOWNSAMPLE:
        return image.copy()
    # Multiply the long way round first: (64xH @ HxW) @ Wx64 touches every pixel once.
    return (_downscale_matrix(rows) @ image) @ _downscale_matrix(cols).T


def pdq_from_luma(luma: np.ndarray, full_shape: tuple[int, int] | None = None) -> PDQ:
    """PDQ hash, quality and the 8 dihedral variants of an HxW luma array (values 0..255).

    `full_shape`: when `luma` is a reduced-size decode, the size of the full image.
    """
    block = _luma_block(luma, full_shape)
    return _ZERO_PDQ if block is None else pdq_from_block(block)


def _luma_block(luma: np.ndarray, full_shape: tuple[int, int] | None) -> np.ndarray | None:
    """The 64x64 downscale of a luma array, None when the image is too small to hash."""
    if luma.ndim != 2:
        raise ValueError(f"expected a 2-D luma array, got shape {luma.shape}")
    rows, cols = full_shape if full_shape is not None else luma.shape
    if min(luma.shape) < MIN_HASHABLE_DIM or rows < MIN_HASHABLE_DIM or cols < MIN_HASHABLE_DIM:
        return None
    return downscale_64(luma, full_shape)


def pdq_from_block(block: np.ndarray) -> PDQ:
    """PDQ hash, quality and the 8 dihedral variants of a 64x64 downscaled block."""
    quality = _quality(block)
    dct16 = (_DCT @ block) @ _DCT_T
    hashes = _hashes_hex(dct16.ravel()[_PERM] * _SIGN)
    return PDQ(hashes[0], quality, hashes)


def variant_hashes(
    pixels: np.ndarray,
    block: np.ndarray,
    thumb: np.ndarray | None = None,
    row_sums: np.ndarray | None = None,
) -> tuple[tuple[str, str, int], ...]:
    """(name, hex hash, quality) of each scanned-side variant (vigil.fingerprint.variants) of
    decoded pixels (as `downscale_pixels` takes them, or a float luma plane) whose PDQ
    downscale is `block`, in the original orientation only. The re-framed ones are PDQ's own
    downscale of the region, from the pixels; the masked ones are made from `block`; `unveil`
    (vigil.fingerprint.unveil: a text band taken off) from `block` and the band's pixel rows, and
    `unlogo` (vigil.fingerprint.unlogo: a semi-opaque corner region taken off) from a finer
    thumbnail and the region's pixels, when
    one is found.
    `thumb`: the pixels' `variants.thumbnail` when already made (else made here); `row_sums`:
    the row pass of PDQ's own downscale of RGB pixels at their size (`downscale_pixels_binned`),
    which a region of all the rows (only its sides cut) is made from."""
    if thumb is None:
        thumb = thumbnail(pixels)
    exact, padded = variant_frames(pixels, thumb)
    masked = masked_blocks(block)
    all_rows = downscale_band(pixels.shape[0])
    summed = [row_sums is not None and _same_band(rows, all_rows) for _, rows, _ in exact]
    # The other regions from the pixels, in one pass over them for all.
    apart = [(rows, cols) for (_, rows, cols), done in zip(exact, summed, strict=True) if not done]
    made = iter(downscale_regions(pixels, apart))
    blocks = [
        downscale_columns(row_sums, cols) if done and row_sums is not None else next(made)
        for (_, _, cols), done in zip(exact, summed, strict=True)
    ]
    blocks += [downscale_banded(thumb, rows, cols) for _, rows, cols in padded]
    blocks += [masked_block for _, masked_block in masked]
    names = [name for name, _, _ in exact + padded] + [name for name, _ in masked]
    # A semi-opaque text band taken off (vigil.fingerprint.unveil), on the band's pixel rows.
    unveil = unveiled(pixels, thumb, block)
    if unveil is not None:
        blocks.append(unveil)
        names.append("unveil")
    # A semi-opaque corner region (a logo) taken off (vigil.fingerprint.unlogo).
    logo = unlogoed(pixels, thumb, block)
    if logo is not None:
        blocks.append(logo)
        names.append("unlogo")
    # One batched product for all the blocks (half the time of one product pair per block),
    # and one compiled call for all their qualities.
    stacked = np.stack(blocks).astype(np.float32, copy=False)
    dcts = np.matmul(np.matmul(_DCT, stacked), _DCT_T).reshape(len(blocks), 256)
    hashes = _hashes_hex(dcts)
    qualities = np.minimum(_gradient_sums(stacked) // 90, 100).tolist()
    return tuple(zip(names, hashes, qualities, strict=True))


def _same_band(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> bool:
    return a[1].shape == b[1].shape and np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def _with_variants(pdq: PDQ, source: np.ndarray, block: np.ndarray) -> PDQ:
    return PDQ(pdq.hash, pdq.quality, pdq.dihedral, variant_hashes(source, block))


def pdq_from_bytes(
    data: bytes, *, max_pixels: int, fast: bool = False, variants: bool = True
) -> PDQ:
    """PDQ of an encoded image (any format `decode_luma` reads).

    `fast`: decode large JPEGs at half size (opt-in; its agreement with the full decode is in
    the README and `tests/fingerprint/test_pdq_faithful.py`). `variants`: also hash the
    scanned-side variants (`vigil.fingerprint.variants`), from the same decoded pixels.

    JPEGs (the common case) are decoded by libjpeg-turbo into a NumPy array of 8-bit pixels
    and downscaled in one compiled pass (`downscale.downscale_pixels`); everything else, and
    any JPEG that path declines, goes through Pillow and the float luma plane.
    """
    direct = decode_jpeg_pixels(data, max_pixels=max_pixels, reduce=REDUCED_SCALE if fast else 1)
    if direct is not None:
        pixels, (rows, cols) = direct
        if rows < MIN_HASHABLE_DIM or cols < MIN_HASHABLE_DIM:
            return _ZERO_PDQ
        height, width = pixels.shape[0], pixels.shape[1]
        # With the variants, their thumbnail from the same pass over the pixels as PDQ's own.
        binned = (
            downscale_pixels_binned(pixels, (rows, cols), thumbnail_bins(height, width))
            if variants and pixels.ndim == 3
            else None
        )
        if binned is None:
            block = downscale_pixels(pixels, (rows, cols))
            pdq = pdq_from_block(block)
            return _with_variants(pdq, pixels, block) if variants else pdq
        block, sums, row_sums = binned
        thumb = thumbnail_from_sums(sums, height, width, 1000.0)
        pdq = pdq_from_block(block)
        # The row sums serve the regions of all the rows only at the pixels' own size.
        same = row_sums if (height, width) == (rows, cols) else None
        found = variant_hashes(pixels, block, thumb, same)
        return PDQ(pdq.hash, pdq.quality, pdq.dihedral, found)
    if not fast:
        luma = decode_luma(data, max_pixels=max_pixels)
        full = None
    else:
        luma, full = decode_luma_sized(data, max_pixels=max_pixels, decode=reduced_jpeg_decode)
    luma_block = _luma_block(luma, full)
    if luma_block is None:
        return _ZERO_PDQ
    pdq = pdq_from_block(luma_block)
    return _with_variants(pdq, luma, luma_block) if variants else pdq


def warm() -> None:
    """Load (or compile) the compiled kernels now, e.g. in a parent before it forks workers."""
    downscale_warm()
    variants_warm()
    unveil_warm()
    unlogo_warm()
    _gradient_sum(np.zeros((64, 64), dtype=np.float32))
    _gradient_sums(np.zeros((1, 64, 64), dtype=np.float32))


def hamming(a: str, b: str) -> int:
    """Number of differing bits between two hex PDQ hashes."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def hex_to_bytes(h: str) -> bytes:
    """32 bytes of a 64-hex-digit hash (most significant first)."""
    return bytes.fromhex(h)


def bytes_to_hex(b: bytes) -> str:
    """Lowercase hex of a 32-byte hash."""
    return b.hex()
