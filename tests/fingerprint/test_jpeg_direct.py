"""The direct JPEG path (libjpeg-turbo into NumPy, one compiled luma + band-filter pass).

It must see exactly the pixels Pillow decodes, give the PDQ of the float path, and hand anything
unusual (CMYK, damaged or truncated data, a pixel limit) to the Pillow path or its limit error.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from vigil.errors import LimitExceeded, UnreadableItem
from vigil.fingerprint.downscale import downscale_pixels
from vigil.fingerprint.image import decode_jpeg_pixels, decode_luma, reduced_jpeg_decode
from vigil.fingerprint.pdq import downscale_64, hamming, pdq_from_bytes, pdq_from_luma

MAX = 50_000_000


def jpeg(image: Image.Image, **params: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", **params)
    return buf.getvalue()


def photos() -> list[Image.Image]:
    out = []
    for name in ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry"):
        out.append(Image.fromarray(getattr(skdata, name)()).convert("RGB"))
    return out


@pytest.mark.parametrize("subsampling", [0, 1, 2])  # 4:4:4, 4:2:2, 4:2:0
@pytest.mark.parametrize("progressive", [False, True])
def test_same_pixels_as_pillow(subsampling: int, progressive: bool) -> None:
    for image in photos():
        for size in (image.size, (image.width * 2 + 3, image.height * 2 + 1)):
            data = jpeg(
                image.resize(size),
                quality=90,
                subsampling=subsampling,
                progressive=progressive,
            )
            direct = decode_jpeg_pixels(data, max_pixels=MAX)
            assert direct is not None
            pixels, full = direct
            expected = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
            assert full == expected.shape[:2]
            assert np.array_equal(pixels[..., :3], expected)


def test_same_pixels_as_pillow_at_half_size() -> None:
    for image in photos():
        data = jpeg(image.resize((image.width * 2 + 1, image.height * 2 + 3)), quality=85)
        direct = decode_jpeg_pixels(data, max_pixels=MAX, reduce=2)
        assert direct is not None
        pixels, full = direct
        with Image.open(io.BytesIO(data)) as im:
            expected = np.asarray(reduced_jpeg_decode(im).convert("RGB"))
        assert full == (image.height * 2 + 3, image.width * 2 + 1)
        assert np.array_equal(pixels[..., :3], expected)


def test_greyscale_jpeg() -> None:
    grey = photos()[1].convert("L")
    data = jpeg(grey, quality=90)
    direct = decode_jpeg_pixels(data, max_pixels=MAX)
    assert direct is not None
    pixels, _ = direct
    assert pixels.ndim == 2
    assert np.array_equal(pixels, np.asarray(Image.open(io.BytesIO(data))))
    plain = pdq_from_bytes(data, max_pixels=MAX, variants=False)
    assert plain == pdq_from_luma(decode_luma(data, max_pixels=MAX))


def test_same_pdq_as_the_float_path() -> None:
    for image in photos():
        data = jpeg(image, quality=90)
        direct = pdq_from_bytes(data, max_pixels=MAX)
        float_path = pdq_from_luma(decode_luma(data, max_pixels=MAX))
        assert hamming(direct.hash, float_path.hash) <= 2
        assert abs(direct.quality - float_path.quality) <= 1
        assert len(direct.dihedral) == 8


def test_compiled_downscale_equals_the_matrix_products() -> None:
    rng = np.random.default_rng(3)
    for shape in ((5, 7), (63, 64), (64, 64), (65, 200), (480, 640), (1001, 333)):
        rgbx = rng.integers(0, 256, (*shape, 4), dtype=np.uint8)
        luma = (rgbx[..., :3].astype(np.int32) @ np.array([299, 587, 114])).astype(np.float32)
        expected = downscale_64(luma / np.float32(1000))
        assert np.abs(downscale_pixels(rgbx) - expected).max() < 1e-2
        rgb = np.ascontiguousarray(rgbx[..., :3])
        assert np.abs(downscale_pixels(rgb) - expected).max() < 1e-2
        grey = rgbx[..., 0]
        assert np.abs(downscale_pixels(grey) - downscale_64(grey.astype(np.float32))).max() < 1e-2


def test_cmyk_jpeg_goes_through_pillow() -> None:
    data = jpeg(photos()[0].convert("CMYK"), quality=90)
    assert decode_jpeg_pixels(data, max_pixels=MAX) is None
    rgb_hash = pdq_from_bytes(jpeg(photos()[0], quality=90), max_pixels=MAX).hash
    assert hamming(pdq_from_bytes(data, max_pixels=MAX).hash, rgb_hash) <= 10


def test_truncated_and_damaged_jpegs_keep_their_reasons() -> None:
    data = jpeg(photos()[1], quality=90)
    assert decode_jpeg_pixels(data[: len(data) // 2], max_pixels=MAX) is None
    with pytest.raises(UnreadableItem) as err:
        pdq_from_bytes(data[: len(data) // 2], max_pixels=MAX)
    assert err.value.reason == "truncated"
    damaged = bytearray(data)
    damaged[4:40] = bytes(36)
    with pytest.raises(UnreadableItem) as err:
        pdq_from_bytes(bytes(damaged), max_pixels=MAX)
    assert err.value.reason == "corrupt"


def test_pixel_limit_before_decoding() -> None:
    data = jpeg(Image.new("RGB", (600, 400), "white"), quality=90)
    with pytest.raises(LimitExceeded) as err:
        pdq_from_bytes(data, max_pixels=100_000)
    assert err.value.limit == "max_image_pixels"
    assert pdq_from_bytes(data, max_pixels=240_000).quality == 0
