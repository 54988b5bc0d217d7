"""PDQ and image decoding: agreement with pdqhash, robustness, colour modes, bad input."""

from __future__ import annotations

import io
import zlib
from pathlib import Path

import numpy as np
import pdqhash
import pytest
from PIL import Image, ImageDraw, ImageOps
from skimage import data as skdata

from vigil.errors import LimitExceeded, UnreadableItem
from vigil.fingerprint.fingerprints import DIHEDRAL_NAMES
from vigil.fingerprint.image import decode_luma, luma_from_image
from vigil.fingerprint.pdq import (
    PDQ_MATCH_DISTANCE,
    PDQ_QUALITY_THRESHOLD,
    _gradient_sum,
    _jarosz_window,
    downscale_64,
    downscale_band,
    hamming,
    pdq_from_bytes,
    pdq_from_luma,
)

MAX = 50_000_000
MODES_DIR = "conformance/pdq-vectors/pdq/data/misc-images/modes"


def pdqhash_hex(bits: np.ndarray) -> str:
    """pdqhash's 256-bit vector as hex: its element 0 is the most significant bit."""
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex()


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **params)
    return buf.getvalue()


def photo(name: str) -> Image.Image:
    array = getattr(skdata, name)()
    return Image.fromarray(array).convert("RGB")


def pdq_of(image: Image.Image) -> str:
    return pdq_from_bytes(encode(image, "PNG"), max_pixels=MAX).hash


# --- the algorithm ------------------------------------------------------------------------------


def test_pdqhash_bit_order_against_known_vector(shared_dir: Path) -> None:
    # pdqhash-python's own test vector (pdq-photo-hasher output, 0 bits allowed upstream).
    path = shared_dir / "conformance/pdq-vectors/extra/pdqhash-python/images/image2.jpg"
    expected = "6d4da52c96e436e6c933db32364a648c4daddb6ce673c6669d6c4018f4d0a8cd"
    bits, _ = pdqhash.compute(np.asarray(Image.open(path).convert("RGB")))
    assert hamming(pdqhash_hex(bits), expected) <= 2
    assert hamming(pdqhash_hex(bits[::-1]), expected) > 64  # the other order is not it
    ours = pdq_from_bytes(path.read_bytes(), max_pixels=MAX)
    assert hamming(ours.hash, expected) <= 2


@pytest.mark.parametrize(
    "name", ["astronaut", "coffee", "chelsea", "rocket", "camera", "immunohistochemistry", "moon"]
)
def test_agrees_with_pdqhash(name: str) -> None:
    rgb = np.asarray(photo(name))
    bits, quality = pdqhash.compute(rgb)
    ours = pdq_from_bytes(encode(Image.fromarray(rgb), "PNG"), max_pixels=MAX)
    distance = hamming(ours.hash, pdqhash_hex(bits))
    print(f"{name}: {distance} bits from pdqhash, quality {ours.quality} vs {quality}")
    assert distance <= 4
    assert abs(ours.quality - quality) <= 2


def box1d_reference(vector: np.ndarray, full: int) -> np.ndarray:
    """A line-by-line port of `box1DFloat` (downscaling.cpp), float32 running sums and all."""
    n, half = len(vector), (full + 2) // 2
    out = np.zeros(n, dtype=np.float32)
    total, size, li, ri, oi = np.float32(0), 0, 0, 0, 0
    for _ in range(half - 1):
        total, size, ri = total + vector[ri], size + 1, ri + 1
    for _ in range(full - half + 1):
        total, size = total + vector[ri], size + 1
        out[oi] = total / np.float32(size)
        ri, oi = ri + 1, oi + 1
    for _ in range(n - full):
        total = total + vector[ri] - vector[li]
        out[oi] = total / np.float32(size)
        li, ri, oi = li + 1, ri + 1, oi + 1
    for _ in range(half - 1):
        total, size = total - vector[li], size - 1
        out[oi] = total / np.float32(size)
        li, oi = li + 1, oi + 1
    return out


@pytest.mark.parametrize("shape", [(5, 7), (64, 64), (150, 37), (300, 520), (700, 129)])
def test_downscale_equals_reference_loops(shape: tuple[int, int]) -> None:
    # Windows 1..6, odd and even; jaroszFilterFloat then decimateFloat, literally.
    luma = np.random.default_rng(3).uniform(0, 255, shape).astype(np.float32)
    rows, cols = shape
    along_rows, along_cols = (cols + 127) // 128, (rows + 127) // 128
    image = luma.copy()
    for _ in range(2):
        image = np.stack([box1d_reference(r, along_rows) for r in image])
        image = np.stack([box1d_reference(c, along_cols) for c in image.T]).T
    pick_r = [int(((i + 0.5) * rows) / 64) for i in range(64)]
    pick_c = [int(((j + 0.5) * cols) / 64) for j in range(64)]
    expected = image[np.ix_(pick_r, pick_c)]
    assert np.abs(downscale_64(luma) - expected).max() < 1e-3


def band_numpy(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The downscale band of an axis of n pixels in NumPy (the reference for the compiled one).

    Row k = e_pick^T B B where (B x)_o = mean(x[lo[o]..hi[o]]): the first pass reads the outputs
    o in window(pick), and each o spreads 1/len(window(o)) over its own window.
    """
    full = _jarosz_window(n, 64)
    half = (full + 2) // 2
    out = np.arange(n)
    lo = np.maximum(out - (full - half), 0)
    hi = np.minimum(out + half - 1, n - 1)
    picks = (((np.arange(64) + 0.5) * n) / 64).astype(np.int64)
    first, last = lo[picks], hi[picks]
    o = first[:, None] + np.arange(full)[None, :]
    valid = o <= last[:, None]
    o = np.minimum(o, n - 1)
    weight = np.where(valid, 1.0 / ((hi[o] - lo[o] + 1) * (last - first + 1)[:, None]), 0.0)
    start = lo[o[:, 0]]
    j = np.minimum(start[:, None] + np.arange(2 * full)[None, :], n - 1)
    inside = (lo[o][:, None, :] <= j[:, :, None]) & (j[:, :, None] <= hi[o][:, None, :])
    band = (inside * weight[:, None, :]).sum(axis=2)
    real = start[:, None] + np.arange(2 * full)[None, :] <= n - 1
    return start.astype(np.int64), np.where(real, band, 0.0).astype(np.float32)


def test_compiled_band_weights_are_numpys_bit_for_bit() -> None:
    # The faithful-hash claims rest on these weights: every size up to 1,500, then a spread up to
    # panoramas, compared bit for bit with the NumPy formulation.
    for n in [*range(5, 1500), *range(1500, 20_000, 97), 30_011, 65_500]:
        start, weights = downscale_band(n)
        ref_start, ref_weights = band_numpy(n)
        assert np.array_equal(start, ref_start), n
        assert weights.shape == ref_weights.shape, n
        assert np.array_equal(weights.view(np.uint32), ref_weights.view(np.uint32)), n


def gradient_sum_numpy(block: np.ndarray) -> int:
    """The quality metric's sum as NumPy float32 array arithmetic (the compiled one's reference)."""
    dv = np.trunc(((block[:-1, :] - block[1:, :]) * np.float32(100)) / np.float32(255))
    dh = np.trunc(((block[:, :-1] - block[:, 1:]) * np.float32(100)) / np.float32(255))
    return int(np.abs(dv).sum(dtype=np.int64)) + int(np.abs(dh).sum(dtype=np.int64))


def test_compiled_quality_sum_is_the_float_formula() -> None:
    # Smooth fields of every steepness (qualities 0 to 100 and beyond the cap), and integer
    # steps that land exactly on the truncation's boundaries (2.55 = 1 after scaling).
    rng = np.random.default_rng(7)
    blocks = [np.zeros((64, 64), np.float32), np.full((64, 64), 255, np.float32)]
    for amplitude in np.geomspace(0.5, 4000, 60):
        walk = np.cumsum(np.cumsum(rng.normal(size=(64, 64)), axis=0), axis=1)
        blocks.append((walk / np.abs(walk).max() * amplitude).astype(np.float32))
    for step in (2.55, 5.1, 25.5, 255.0):
        ramp = np.arange(64, dtype=np.float32) * np.float32(step)
        blocks += [np.tile(ramp, (64, 1)), np.tile(ramp[:, None], (1, 64))]
    sums = [gradient_sum_numpy(b) for b in blocks]
    assert [_gradient_sum(b) for b in blocks] == sums
    assert min(sums) == 0 and sum(0 < s // 90 < 100 for s in sums) >= 10  # the range is covered


def test_dihedral_agrees_with_pdqhash() -> None:
    rgb = np.asarray(photo("coffee"))
    expected_bits, _ = pdqhash.compute_dihedral(rgb)
    ours = pdq_from_luma(np.asarray(Image.fromarray(rgb).convert("F")))
    for name, bits, got in zip(DIHEDRAL_NAMES, expected_bits, ours.dihedral, strict=True):
        assert hamming(got, pdqhash_hex(bits)) <= 4, name
    assert ours.dihedral[0] == ours.hash


def test_output_shape_and_constants() -> None:
    ours = pdq_from_luma(np.asarray(photo("chelsea").convert("F")))
    assert len(ours.hash) == 64 and int(ours.hash, 16) >= 0
    assert len(ours.dihedral) == 8
    assert 0 <= ours.quality <= 100
    assert bin(int(ours.hash, 16)).count("1") == 128  # above the median: half the bits
    assert (PDQ_MATCH_DISTANCE, PDQ_QUALITY_THRESHOLD) == (31, 50)


def test_tiny_and_flat_images() -> None:
    tiny = pdq_from_luma(np.zeros((4, 100), dtype=np.float32))
    assert tiny.hash == "0" * 64 and tiny.quality == 0  # as the reference, below 5 px
    flat = pdq_from_luma(np.full((100, 100), 128, dtype=np.float32))
    assert flat.quality == 0
    with pytest.raises(ValueError):
        pdq_from_luma(np.zeros((10, 10, 3), dtype=np.float32))


def test_hamming() -> None:
    assert hamming("0" * 64, "f" * 64) == 256
    assert hamming("0" * 63 + "1", "0" * 64) == 1


# --- robustness ---------------------------------------------------------------------------------


def alterations(original: Image.Image) -> dict[str, Image.Image]:
    w, h = original.size
    marked = original.copy()
    draw = ImageDraw.Draw(marked)
    draw.text((w - 90, h - 20), "(c) vigil 2024", fill=(255, 255, 255))
    return {
        "jpeg q70": Image.open(io.BytesIO(encode(original, "JPEG", quality=70))),
        "resize 50%": original.resize((w // 2, h // 2), Image.Resampling.BILINEAR),
        "greyscale": original.convert("L"),
        "watermark": marked,
    }


@pytest.mark.parametrize("name", ["coffee", "chelsea", "astronaut"])
def test_alterations_stay_within_match_distance(name: str) -> None:
    original = photo(name)
    base = pdq_of(original)
    for what, altered in alterations(original).items():
        distance = hamming(base, pdq_of(altered))
        print(f"{name} {what}: {distance} bits")
        assert distance <= PDQ_MATCH_DISTANCE, what


TRANSFORMS = [
    # Meta names a flip by its axis: flipy mirrors about the vertical axis (left-right).
    (ImageOps.mirror, "flipy"),
    (ImageOps.flip, "flipx"),
    (lambda im: im.transpose(Image.Transpose.ROTATE_90), "rotate90"),  # counter-clockwise
    (lambda im: im.transpose(Image.Transpose.ROTATE_180), "rotate180"),
    (lambda im: im.transpose(Image.Transpose.ROTATE_270), "rotate270"),
    (lambda im: im.transpose(Image.Transpose.TRANSPOSE), "flip_plus1"),
    (lambda im: im.transpose(Image.Transpose.TRANSVERSE), "flip_minus1"),
]


@pytest.mark.parametrize(("transform", "variant"), TRANSFORMS)
def test_rotations_and_flips_match_their_dihedral_variant(transform, variant: str) -> None:
    # 600x380: odd box windows (5, 3) and decimation points that mirror exactly, so the
    # DCT-domain variant equals the hash of the moved pixels up to float rounding.
    original = photo("coffee").crop((0, 0, 600, 380))
    base = pdq_from_bytes(encode(original, "PNG"), max_pixels=MAX)
    moved = pdq_of(transform(original))
    by_variant = hamming(moved, base.dihedral[DIHEDRAL_NAMES.index(variant)])
    print(f"{variant}: {by_variant} bits via the variant, {hamming(moved, base.hash)} plain")
    assert by_variant <= 2
    assert hamming(moved, base.hash) > PDQ_MATCH_DISTANCE  # the variant is what finds it


@pytest.mark.parametrize(("transform", "variant"), TRANSFORMS)
def test_dihedral_variants_match_on_any_size(transform, variant: str) -> None:
    # 600x400: the reference's even box window (4) is off-centre by a pixel, so a flip moves
    # the picture slightly; pdqhash shows the same (16 bits for an upside-down coffee).
    original = photo("coffee")
    base = pdq_from_bytes(encode(original, "PNG"), max_pixels=MAX)
    moved = pdq_of(transform(original))
    by_variant = hamming(moved, base.dihedral[DIHEDRAL_NAMES.index(variant)])
    print(f"600x400 {variant}: {by_variant} bits via the variant")
    assert by_variant <= PDQ_MATCH_DISTANCE


def test_unrelated_photos_are_far() -> None:
    names = ["coffee", "chelsea", "rocket", "astronaut"]
    hashes = {n: pdq_of(photo(n)) for n in names}
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert hamming(hashes[a], hashes[b]) > 70, (a, b)


# --- colour modes -------------------------------------------------------------------------------


def test_mode_vectors_hash_like_rgb(shared_dir: Path) -> None:
    modes = shared_dir / MODES_DIR
    reference = pdq_from_bytes((modes / "RGB.jpg").read_bytes(), max_pixels=MAX).hash
    files = sorted(p for p in modes.iterdir() if p.suffix != ".md")
    assert len(files) >= 10
    for path in files:
        distance = hamming(pdq_from_bytes(path.read_bytes(), max_pixels=MAX).hash, reference)
        print(f"modes/{path.name}: {distance} bits from RGB.jpg")
        assert distance <= 4, path.name


def test_naive_mode_handling_is_far_off(shared_dir: Path) -> None:
    # Proof that the mode test can fail: raw CMYK bytes or palette indices as pixels.
    modes = shared_dir / MODES_DIR
    reference = pdq_from_bytes((modes / "RGB.jpg").read_bytes(), max_pixels=MAX).hash
    cmyk = np.asarray(Image.open(modes / "CMYK.jpg")).astype(np.float32)
    naive_cmyk = 0.299 * cmyk[..., 0] + 0.587 * cmyk[..., 1] + 0.114 * cmyk[..., 2]
    indices = np.asarray(Image.open(modes / "P.png")).astype(np.float32)
    far_cmyk = hamming(pdq_from_luma(naive_cmyk).hash, reference)
    far_palette = hamming(pdq_from_luma(indices).hash, reference)
    print(f"naive CMYK: {far_cmyk} bits, naive palette: {far_palette} bits")
    assert far_cmyk > 100
    assert far_palette > 30


def saved_in_mode(original: Image.Image, mode: str) -> bytes:
    """The photo converted to `mode` and saved in a format that keeps that mode."""
    grey16 = np.asarray(original.convert("L"), dtype=np.uint16) * 257
    if mode == "I;16":
        return encode(Image.fromarray(grey16), "PNG")
    if mode == "I;16B":
        return encode(Image.fromarray(grey16.astype(">u2")), "TIFF")
    if mode == "I":
        return encode(Image.fromarray(grey16.astype(np.int32)), "TIFF")
    if mode == "F":
        return encode(Image.fromarray(grey16.astype(np.float32) / 65535), "TIFF")
    converted = original.convert(mode)
    if mode == "CMYK":
        return encode(converted, "JPEG", quality=95)
    if mode in ("YCbCr", "LAB", "PA"):
        return encode(converted, "TIFF")
    return encode(converted, "PNG")


@pytest.mark.parametrize(
    "mode",
    ["1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "YCbCr", "LAB", "I;16", "I;16B", "I", "F"],
)
def test_generated_modes_hash_like_rgb(mode: str) -> None:
    original = photo("coffee")
    reference = pdq_of(original)
    payload = saved_in_mode(original, mode)
    opened = Image.open(io.BytesIO(payload))
    assert opened.mode == mode  # the file really carries that mode
    got = pdq_from_bytes(payload, max_pixels=MAX)
    distance = hamming(got.hash, reference)
    print(f"{mode}: {distance} bits, quality {got.quality}")
    assert distance <= (12 if mode == "1" else 4)  # "1" is dithered to two levels


def test_hsv_and_rgba_in_memory() -> None:
    original = photo("coffee")
    reference = pdq_from_luma(luma_from_image(original)).hash
    assert hamming(pdq_from_luma(luma_from_image(original.convert("HSV"))).hash, reference) <= 4
    rgba = original.convert("RGBA")
    rgba.putalpha(0)  # fully transparent: the reference hashes the colour channels anyway
    assert np.array_equal(luma_from_image(rgba), luma_from_image(original))


def test_luma_is_float_not_rounded() -> None:
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]]], dtype=np.uint8)
    luma = decode_luma(encode(Image.fromarray(rgb), "PNG"), max_pixels=MAX)
    assert luma.dtype == np.float32 and luma.shape == (1, 4)
    assert np.allclose(luma[0], [76.245, 149.685, 29.07, 0.299 * 10 + 0.587 * 20 + 0.114 * 30])


def test_16_bit_is_scaled_not_clipped() -> None:
    grey = np.asarray(photo("coffee").convert("L"), dtype=np.uint16)
    payload = encode(Image.fromarray(grey * 257), "PNG")
    assert Image.open(io.BytesIO(payload)).mode == "I;16"
    luma = decode_luma(payload, max_pixels=MAX)
    assert np.abs(luma - grey).max() < 0.01
    # Pillow's own conversion clips at 255: nearly everything turns white.
    clipped = np.asarray(Image.open(io.BytesIO(payload)).convert("L"))
    assert (clipped == 255).mean() > 0.9


def test_exif_orientation_is_not_applied() -> None:
    original = photo("coffee")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    tagged = encode(original, "JPEG", quality=95, exif=exif.tobytes())
    plain = encode(original, "JPEG", quality=95)
    assert pdq_from_bytes(tagged, max_pixels=MAX) == pdq_from_bytes(plain, max_pixels=MAX)


def test_animated_gif_uses_first_frame() -> None:
    first = photo("coffee")
    second = photo("rocket").resize(first.size)
    payload = encode(first, "GIF", save_all=True, append_images=[second], duration=100)
    got = pdq_from_bytes(payload, max_pixels=MAX).hash
    assert hamming(got, pdq_of(first)) <= 16  # GIF's 256 colours cost a few bits
    assert hamming(got, pdq_of(second)) > 70


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP", "AVIF"])
def test_formats(fmt: str) -> None:
    original = photo("chelsea")
    params: dict[str, object] = {"quality": 95} if fmt in ("JPEG", "WEBP", "AVIF") else {}
    got = pdq_from_bytes(encode(original, fmt, **params), max_pixels=MAX).hash
    assert hamming(got, pdq_of(original)) <= 16


def test_heic() -> None:
    import pillow_heif  # a dependency of Vigil

    pillow_heif.register_heif_opener()
    original = photo("chelsea")
    payload = encode(original, "HEIF", quality=95)
    got = pdq_from_bytes(payload, max_pixels=MAX).hash
    assert hamming(got, pdq_of(original)) <= 16


# --- bad input ----------------------------------------------------------------------------------


def test_truncated_jpeg() -> None:
    payload = encode(photo("coffee"), "JPEG", quality=90)
    with pytest.raises(UnreadableItem) as err:
        decode_luma(payload[: len(payload) // 2], max_pixels=MAX)
    assert err.value.reason == "truncated"


def test_truncated_png() -> None:
    payload = encode(photo("coffee"), "PNG")
    with pytest.raises(UnreadableItem) as err:
        decode_luma(payload[: len(payload) // 2], max_pixels=MAX)
    assert err.value.reason == "truncated"


def test_random_bytes() -> None:
    noise = np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    with pytest.raises(UnreadableItem) as err:
        decode_luma(noise, max_pixels=MAX)
    assert err.value.reason == "unsupported"


def xpm_two_chars_per_pixel(named_colour: str = "gray100") -> bytes:
    """An 8x4 XPM with two characters per pixel (as /usr/share/pixmaps/openjdk-17.xpm), one of
    its colours given by X11 name, which Pillow refuses ("cannot read this XPM file")."""
    rows = ['"' + ("a.b." if y % 2 else "b.a.") * 4 + '"' for y in range(4)]
    return (
        "/* XPM */\nstatic char *icon[] = {\n"
        '"8 4 2 2",\n'
        '"a. c #34479E",\n'
        f'"b. c {named_colour}",\n' + ",\n".join(rows) + "\n};\n"
    ).encode()


def test_a_valid_variant_pillow_refuses_is_unsupported_not_corrupt() -> None:
    with pytest.raises(UnreadableItem) as err:
        decode_luma(xpm_two_chars_per_pixel(), max_pixels=MAX)
    assert err.value.reason == "unsupported"
    # The same picture with its colour as a number is read: it was the variant, not damage.
    assert decode_luma(xpm_two_chars_per_pixel("#FFFFFF"), max_pixels=MAX).shape == (4, 8)


def test_a_bmp_compression_pillow_lacks_is_unsupported() -> None:
    payload = bytearray(encode(photo("coffee"), "BMP"))
    payload[30:34] = (4).to_bytes(4, "little")  # BI_JPEG: a BMP holding a JPEG (printers)
    with pytest.raises(UnreadableItem) as err:
        decode_luma(bytes(payload), max_pixels=MAX)
    assert err.value.reason == "unsupported"


def test_corrupt_jpeg_body() -> None:
    payload = bytearray(encode(photo("coffee"), "JPEG", quality=90))
    payload[4:40] = bytes(36)  # keep the JPEG signature, destroy the markers after it
    with pytest.raises(UnreadableItem) as err:
        decode_luma(bytes(payload), max_pixels=MAX)
    assert err.value.reason == "corrupt"


def test_empty() -> None:
    with pytest.raises(UnreadableItem) as err:
        decode_luma(b"", max_pixels=MAX)
    assert err.value.reason == "truncated"


def png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body).to_bytes(4, "big")
        return len(body).to_bytes(4, "big") + kind + body + crc

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_pixel_limit_checked_from_header() -> None:
    bomb = png_header_only(100_000, 100_000)  # 10^10 px: beyond Pillow's own bomb limit too
    with pytest.raises(LimitExceeded) as err:
        decode_luma(bomb, max_pixels=178_956_970)
    assert err.value.limit == "max_image_pixels"


def test_pixel_limit_below_pillows() -> None:
    payload = encode(photo("coffee"), "PNG")  # 600x400
    with pytest.raises(LimitExceeded) as err:
        decode_luma(payload, max_pixels=100_000)
    assert err.value.limit == "max_image_pixels"
    assert decode_luma(payload, max_pixels=240_000).shape == (400, 600)


def test_no_warning_escapes(recwarn: pytest.WarningsRecorder, monkeypatch) -> None:
    payload = encode(photo("coffee"), "PNG")  # 240,000 px
    # Over Pillow's warning threshold but under its error threshold: Pillow warns, we don't.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 150_000)
    assert decode_luma(payload, max_pixels=MAX).shape == (400, 600)
    assert len(recwarn) == 0


def test_pillow_bomb_error_is_a_limit(monkeypatch) -> None:
    payload = encode(photo("coffee"), "PNG")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100_000)  # Pillow refuses > 200,000 px
    with pytest.raises(LimitExceeded) as err:
        decode_luma(payload, max_pixels=MAX)
    assert err.value.limit == "max_image_pixels"
