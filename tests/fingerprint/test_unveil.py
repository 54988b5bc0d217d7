"""The `unveil` variant: a semi-opaque text band taken off finds a captioned copy that the plain
hash and every other variant miss; a photo without one gets no such variant."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont
from skimage import data as skdata

from vigil.fingerprint.downscale import downscale_pixels
from vigil.fingerprint.pdq import PDQ_MATCH_DISTANCE, hamming, pdq_from_bytes
from vigil.fingerprint.unveil import (
    _base,
    _luma_rows,
    _row_detail,
    _row_fill,
    _running,
    _runs,
    find_band,
    take_off,
    undo_band,
    unveiled,
)
from vigil.fingerprint.variants import thumbnail
from vigil.matching.settings import PDQ_VARIANT_DISTANCE

MAX = 50_000_000


def jpeg(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, "JPEG", quality=90)
    return buf.getvalue()


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.truetype("DejaVuSans-Bold.ttf", size)
    except OSError:
        return ImageFont.load_default(size=size)


def captioned(image: Image.Image, top: float, share: float, white: bool) -> Image.Image:
    """A semi-opaque caption repeated across a band of `share` of the height from `top`."""
    w, h = image.size
    band = round(h * share)
    face = font(round(band * 0.7))
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    fill = (255, 255, 255, 210) if white else (0, 0, 0, 210)
    x = 0
    while x < w:
        draw.text((x, round(h * top)), "SAMPLE COPY  ", font=face, fill=fill)
        x += round(draw.textlength("SAMPLE COPY  ", font=face))
    return Image.alpha_composite(image.convert("RGBA"), layer)


@pytest.mark.parametrize(
    ("photo", "white"), [(skdata.rocket, True), (skdata.immunohistochemistry, False)]
)
def test_a_caption_band_is_taken_off_where_nothing_else_matches(photo, white) -> None:
    image = Image.fromarray(photo())
    original = pdq_from_bytes(jpeg(image), max_pixels=MAX).hash
    copy = pdq_from_bytes(jpeg(captioned(image, 0.4, 0.15, white)), max_pixels=MAX)
    found = {name: hamming(h, original) for name, h, quality in copy.variants if quality >= 50}
    unveil = found.pop("unveil")
    # The caption moved the plain hash past the plain distance and every other variant (the
    # masks among them) past theirs ...
    assert min(hamming(h, original) for h in copy.dihedral) > PDQ_MATCH_DISTANCE
    assert min(found.values()) > PDQ_VARIANT_DISTANCE
    # ... and with the band taken off the copy is near its original again.
    assert unveil <= PDQ_VARIANT_DISTANCE - 8


@pytest.mark.parametrize(
    "photo",
    [
        skdata.astronaut,
        skdata.coffee,
        skdata.chelsea,
        skdata.rocket,
        skdata.immunohistochemistry,
        lambda: skdata.stereo_motorcycle()[0],
    ],
)
def test_a_photo_without_a_caption_gets_no_unveil(photo) -> None:
    data = jpeg(Image.fromarray(photo()))
    assert "unveil" not in [name for name, _, _ in pdq_from_bytes(data, max_pixels=MAX).variants]
    pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    assert find_band(thumbnail(pixels)) is None


def windowed(values: np.ndarray, k: int, axis: int) -> np.ndarray:
    """Every centred window of k along `axis` (the edge values repeated past the ends)."""
    half = k // 2
    pad = [(0, 0), (0, 0)]
    pad[axis] = (half, half)
    edged = np.pad(values, pad, mode="edge")
    return np.lib.stride_tricks.sliding_window_view(edged, k, axis=axis)


@pytest.mark.parametrize("shape", [(41, 37), (5, 60), (2, 3), (256, 171)])
def test_the_running_filter_and_the_opening_are_their_definitions(shape) -> None:
    rng = np.random.default_rng(3)
    values = rng.uniform(0, 255, shape).astype(np.float32)
    for k in (3, 7, 13):
        low, high = windowed(values, k, 0).min(axis=2), windowed(values, k, 0).max(axis=2)
        assert np.array_equal(_running(values, k, False, False), low)
        assert np.array_equal(_running(values, k, True, False), high)
        assert np.array_equal(_running(values, k, False, True), low.T)
        assert np.array_equal(_running(values, k, True, True), high.T)
        # The opening: the k x k minimum, then the k x k maximum of that; the closing: the other
        # way round.
        low = windowed(windowed(values, k, 0).min(axis=2), k, 1).min(axis=2)
        opened = windowed(windowed(low, k, 0).max(axis=2), k, 1).max(axis=2)
        assert np.array_equal(_base(values, k, True), opened)
        high = windowed(windowed(values, k, 0).max(axis=2), k, 1).max(axis=2)
        closed = windowed(windowed(high, k, 0).min(axis=2), k, 1).min(axis=2)
        assert np.array_equal(_base(values, k, False), closed)


def test_the_row_detail_is_the_top_hats_along_the_rows() -> None:
    values = np.random.default_rng(5).uniform(0, 255, (40, 37)).astype(np.float32)
    low, high = windowed(values, 3, 1).min(axis=2), windowed(values, 3, 1).max(axis=2)
    opened = windowed(low, 3, 1).max(axis=2)
    closed = windowed(high, 3, 1).min(axis=2)
    white, black = values - opened, closed - values
    assert np.allclose(_row_detail(values), (white + black).mean(axis=1), atol=1e-3)


@pytest.mark.parametrize(
    ("photo", "white"),
    [(skdata.rocket, True), (skdata.immunohistochemistry, False), (skdata.coffee, True)],
)
def test_the_band_found_covers_the_caption_and_knows_its_colour(photo, white) -> None:
    image = Image.fromarray(photo())
    data = jpeg(captioned(image, 0.4, 0.12, white))
    pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    found = find_band(thumbnail(pixels))
    assert found is not None
    first, end, light = found
    # The glyphs' rows (the font's ink, inside the line of 0.12 from 0.4) are in the band, and
    # the band is not much more than the caption.
    assert 0.35 <= first <= 0.42 and 0.47 <= end <= 0.56
    assert light == white


def test_a_known_overlay_is_inverted_and_the_rest_left_alone() -> None:
    # A picture that varies along its rows (a ramp and a slow wave): what the inversion and the
    # row's fill give under the strokes agree with it; pixels away from the strokes stay.
    x = np.arange(200, dtype=np.float32)
    y = np.arange(30, dtype=np.float32)[:, None]
    original = (60.0 + 0.4 * x + 15.0 * np.sin(x / 9.0 + y / 7.0)).astype(np.float32)
    glyph = np.zeros(original.shape, dtype=bool)
    glyph[5:25, 10::20] = glyph[5:25, 11::20] = True  # strokes 2 pixels wide
    near = glyph.copy()
    near[:, 1:] |= glyph[:, :-1]
    near[:, :-1] |= glyph[:, 1:]
    for light, colour in ((True, 255.0), (False, 0.0)):
        observed = original.copy()
        observed[glyph] = 0.6 * colour + 0.4 * original[glyph]
        back = take_off(observed, original, light)  # the opening's level: the picture's own
        assert np.allclose(back[near], original[near], atol=1.5)
        assert np.array_equal(back[~near], observed[~near])


def test_the_row_fill_is_the_line_between_the_pixels_either_side() -> None:
    rng = np.random.default_rng(4)
    values = rng.uniform(0, 255, (6, 40)).astype(np.float32)
    mask = rng.random(values.shape) < 0.4
    mask[0] = True  # a row masked throughout is left
    mask[1, :5] = True  # runs at a row's ends take the nearest pixel's value
    mask[1, -3:] = True
    filled = _row_fill(values, mask)
    assert np.array_equal(filled[0], values[0])
    xs = np.arange(values.shape[1])
    for i in range(1, values.shape[0]):
        keep = ~mask[i]
        expected = np.interp(xs, xs[keep], values[i, keep])
        assert np.allclose(filled[i], expected, atol=1e-3)


def test_a_long_run_of_hot_rows_is_split_at_its_peak() -> None:
    # A detailed stretch of the picture (z 6) joined with a caption's rows (z 60): the run is
    # too long for a band, its hottest part is one.
    z = np.zeros(128, dtype=np.float32)
    z[30:70] = 6.0
    z[50:60] = 60.0
    runs = _runs(z)
    assert (30, 70) in runs and (50, 60) in runs
    # A run short enough for a band is not split.
    z[:] = 0.0
    z[40:50] = 6.0
    z[50:60] = 60.0
    assert _runs(z) == [(40, 60)]


def test_the_unveiled_block_is_pdq_s_downscale_of_the_undone_pixels() -> None:
    image = Image.fromarray(skdata.rocket())
    data = jpeg(captioned(image, 0.4, 0.15, True))
    pixels = np.ascontiguousarray(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))
    thumb = thumbnail(pixels)
    block = downscale_pixels(pixels)
    got = unveiled(pixels, thumb, block)
    assert got is not None
    found = find_band(thumb)
    assert found is not None
    r0, r1, rows_undone = undo_band(pixels, *found)
    undone = _luma_rows(pixels, 0, pixels.shape[0])
    undone[r0:r1] = rows_undone
    assert np.allclose(got, downscale_pixels(undone), atol=0.05)
    # ... and the band was changed: the block moved.
    assert np.abs(got - block).max() > 1.0
