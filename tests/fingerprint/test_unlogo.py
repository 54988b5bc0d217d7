"""The `unlogo` variant: a semi-opaque logo in a corner taken off finds a copy that the plain hash
and every other variant miss; a photo without one gets no such variant."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw
from skimage import data as skdata

from vigil.fingerprint.pdq import PDQ_MATCH_DISTANCE, hamming, pdq_from_bytes
from vigil.fingerprint.unlogo import (
    CORNERS,
    _moved_patches,
    _offsets,
    _round_corners,
    find_logo,
)
from vigil.fingerprint.variants import thumbnail
from vigil.matching.settings import PDQ_VARIANT_DISTANCE

MAX = 50_000_000


def jpeg(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, "JPEG", quality=90)
    return buf.getvalue()


def with_logo(
    image: Image.Image, corner: int, share: float, colour: tuple[int, int, int], alpha: int
) -> Image.Image:
    """A rounded rectangle of `colour` at opacity alpha/255 over `share` of the area in a corner
    (CORNERS' order), with a disc of the inverse colour inside it."""
    w, h = image.size
    side_w, side_h = round(w * share**0.5), round(h * share**0.5)
    flip_rows, flip_cols = CORNERS[corner]
    x = w - side_w if flip_cols else 0
    y = h - side_h if flip_rows else 0
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    draw.rounded_rectangle(
        (x, y, x + side_w, y + side_h), radius=side_h // 5, fill=(*colour, alpha)
    )
    inverse = (255 - colour[0], 255 - colour[1], 255 - colour[2], alpha)
    box = (x + side_w // 4, y + side_h // 4, x + 3 * side_w // 4, y + 3 * side_h // 4)
    draw.ellipse(box, fill=inverse)
    return Image.alpha_composite(image.convert("RGBA"), layer)


@pytest.mark.parametrize(
    ("photo", "corner", "share", "colour", "alpha", "margin"),
    [
        (skdata.chelsea, 3, 0.15, (20, 40, 200), 170, 8),
        (skdata.immunohistochemistry, 0, 0.12, (230, 200, 30), 160, 8),
        (skdata.coffee, 1, 0.18, (200, 30, 30), 180, 8),
        # The disc of the inverse colour over the picture's fine pattern: outlined on the
        # region smoothed over 11 x 11 bins only (38 bits from the original before).
        (skdata.immunohistochemistry, 0, 0.16, (230, 200, 30), 140, 8),
        # Parts of the picture inside the disc (the rocket's bright body), whose steps across
        # their outline do not agree, moved with the disc that encloses them (38 bits before).
        (skdata.rocket, 2, 0.16, (240, 240, 240), 210, 0),
        # Found once the finder took the highest steps whose lines fit as candidates too, and
        # allowed the detail along the edges inside 0.5-2 times s that outside (not found
        # before).
        (skdata.chelsea, 1, 0.15, (20, 40, 200), 190, 8),
        (skdata.rocket, 0, 0.15, (240, 240, 240), 220, 8),
        (skdata.immunohistochemistry, 0, 0.15, (200, 30, 30), 220, 8),
        (lambda: skdata.stereo_motorcycle()[0], 0, 0.15, (240, 240, 240), 190, 8),
    ],
)
def test_a_corner_logo_is_taken_off_where_nothing_else_matches(
    photo, corner, share, colour, alpha, margin
) -> None:
    image = Image.fromarray(photo())
    original = pdq_from_bytes(jpeg(image), max_pixels=MAX).hash
    copy = pdq_from_bytes(jpeg(with_logo(image, corner, share, colour, alpha)), max_pixels=MAX)
    found = {name: hamming(h, original) for name, h, quality in copy.variants if quality >= 50}
    unlogo = found.pop("unlogo")
    # The logo moved the plain hash past the plain distance and every other variant (the masks
    # among them) past theirs ...
    assert min(hamming(h, original) for h in copy.dihedral) > PDQ_MATCH_DISTANCE
    assert min(found.values()) > PDQ_VARIANT_DISTANCE
    # ... and with the logo taken off the copy is near its original again.
    assert unlogo <= PDQ_VARIANT_DISTANCE - margin


@pytest.mark.parametrize("corner", range(4))
def test_the_logo_is_found_in_its_corner_at_its_size(corner) -> None:
    image = Image.fromarray(skdata.coffee())
    assert_found_at(with_logo(image, corner, 0.15, (20, 40, 200), 170), corner, 0.15)


def assert_found_at(copy: Image.Image, corner: int, share: float) -> None:
    """`find_logo` finds the logo of `share` of the area in `copy`'s `corner`, at its size."""
    pixels = np.asarray(Image.open(io.BytesIO(jpeg(copy))).convert("RGB"))
    found = find_logo(thumbnail(pixels))
    assert found is not None
    where, width, height = found
    assert where == corner
    assert abs(width - share**0.5) < 0.01
    assert abs(height - share**0.5) < 0.01


@pytest.mark.parametrize(
    "photo",
    [
        skdata.astronaut,
        skdata.coffee,
        skdata.chelsea,
        skdata.rocket,
        skdata.camera,
        skdata.immunohistochemistry,
        lambda: skdata.stereo_motorcycle()[0],
    ],
)
def test_a_photo_without_a_logo_gets_no_unlogo(photo) -> None:
    data = jpeg(Image.fromarray(photo()))
    assert "unlogo" not in [name for name, _, _ in pdq_from_bytes(data, max_pixels=MAX).variants]
    pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    assert find_logo(thumbnail(pixels)) is None


def with_bands(image: Image.Image, at: list[float], corner: int) -> Image.Image:
    """`image` with white vertical bands 12 pixels wide at these shares of the width from the
    side of `corner` (CORNERS' order): straight steps far stronger than a logo's own edge."""
    out = image.convert("RGB")
    draw = ImageDraw.Draw(out)
    w, h = out.size
    for share in at:
        x = round((1 - share if CORNERS[corner][1] else share) * w)
        draw.rectangle((x, 0, x + 12, h), fill=(250, 250, 250))
    return out


@pytest.mark.parametrize(
    ("photo", "corner"),
    [(skdata.chelsea, 0), (skdata.chelsea, 2), (skdata.chelsea, 3), (skdata.coffee, 3)],
)
def test_a_logo_beside_stronger_straight_edges_is_found(photo, corner) -> None:
    # Two bands give four column steps stronger than the logo's: its column edge is not among
    # the three highest candidates (the finder once paired only those), its row edge is.
    striped = with_bands(Image.fromarray(photo()), [0.25, 0.5], corner)
    assert_found_at(with_logo(striped, corner, 0.15, (20, 40, 200), 170), corner, 0.15)
    # The bands alone are no logo.
    clean = np.asarray(Image.open(io.BytesIO(jpeg(striped))).convert("RGB"))
    assert find_logo(thumbnail(clean)) is None


def with_cells(image: Image.Image, size: int, seed: int) -> Image.Image:
    """`image` half and half with a grid of square cells of `size` pixels, each of a random
    grey: steps across every cell's sides, far stronger than a logo's own edges and many more
    than the finder takes the highest of."""
    a = np.asarray(image.convert("RGB")).astype(np.float64)
    h, w = a.shape[:2]
    levels = np.random.default_rng(seed).integers(0, 256, (h // size + 1, w // size + 1, 1))
    cells = np.repeat(np.repeat(levels, size, axis=0), size, axis=1)[:h, :w]
    return Image.fromarray((0.5 * a + 0.5 * cells).astype(np.uint8))


@pytest.mark.parametrize(
    ("photo", "size", "seed", "corner"),
    [
        (skdata.coffee, 20, 1, 0),
        (skdata.coffee, 20, 2, 2),
        (skdata.astronaut, 25, 1, 0),
        (skdata.astronaut, 30, 1, 3),
    ],
)
def test_a_logo_over_a_pattern_of_stronger_steps_is_found(photo, size, seed, corner) -> None:
    # Neither of the logo's edges is among the 6 highest steps of its side (the finder once
    # took only those); across them, unlike across the cells' sides, the bins inside are an
    # affine function of those outside.
    patterned = with_cells(Image.fromarray(photo()), size, seed)
    assert_found_at(with_logo(patterned, corner, 0.15, (20, 40, 200), 170), corner, 0.15)
    # The pattern alone is no logo.
    clean = np.asarray(Image.open(io.BytesIO(jpeg(patterned))).convert("RGB"))
    assert find_logo(thumbnail(clean)) is None


@pytest.mark.parametrize(
    ("photo", "size", "seed"),
    [(skdata.chelsea, 25, 1), (skdata.astronaut, 25, 2), (skdata.rocket, 30, 3)],
)
def test_a_region_the_finer_thumbnail_does_not_hold_is_not_undone(photo, size, seed) -> None:
    # The cells' sides, on the 256-bin thumbnail, fit as a corner region's edges; on the finer
    # thumbnail the region undoing works on they do not, so no `unlogo` is made (nor its cost).
    data = jpeg(with_cells(Image.fromarray(photo()), size, seed))
    pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    assert find_logo(thumbnail(pixels)) is not None
    assert "unlogo" not in [name for name, _, _ in pdq_from_bytes(data, max_pixels=MAX).variants]


@pytest.mark.parametrize("kind", ["flat", "gradient"])
def test_a_plain_picture_gets_no_unlogo(kind) -> None:
    y, x = np.mgrid[0:600, 0:800]
    if kind == "flat":
        grey = np.full(x.shape, 120.0)
    else:
        grey = 40 + 160 * x / 800 + 30 * y / 600
    image = Image.fromarray(np.repeat(grey[..., None], 3, axis=2).astype(np.uint8))
    data = jpeg(image)
    assert "unlogo" not in [name for name, _, _ in pdq_from_bytes(data, max_pixels=MAX).variants]
    pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    assert find_logo(thumbnail(pixels)) is None


def test_a_patch_offset_inside_the_region_is_moved_back() -> None:
    rng = np.random.default_rng(4)
    y, x = np.mgrid[0:120, 0:150]
    picture = 100 + 40 * np.sin(x / 17.0) * np.cos(y / 23.0) + rng.normal(0, 1.5, x.shape)
    patch = (y - 60) ** 2 / 30**2 + (x - 75) ** 2 / 40**2 < 1
    moved = _offsets(picture + 70.0 * patch, 0.3, 90.0)
    # The disc moved back as one, by its offset to within a tenth (the steps across its outline
    # hold the picture's own change over a few bins too).
    inner = (y - 60) ** 2 / 26**2 + (x - 75) ** 2 / 36**2 < 1
    left = (moved - picture)[inner]
    assert np.ptp(left) < 1e-6
    assert abs(float(left[0])) < 7.0
    # Outside it, the picture as it was.
    outer = (y - 60) ** 2 / 36**2 + (x - 75) ** 2 / 46**2 > 1
    assert np.abs(moved - picture)[outer].max() < 1e-6


def _rounded_region(radius: int, aspect: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(picture, observed, undone) of a 90 x 120-bin region under an overlay (s 0.3, t 90)
    that did not cover the outside of quarter ellipses of `radius` rows (radius * aspect
    columns) in its four corners."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:90, 0:120]
    picture = 110 + 50 * np.sin(x / 13.0 + y / 29.0) + rng.normal(0, 1.0, x.shape)
    covered = np.ones(x.shape, dtype=bool)
    if radius:
        for cy, cx in ((0, 0), (0, 119), (89, 0), (89, 119)):
            dy = np.maximum(radius - (np.abs(y - cy) + 0.5), 0.0) / radius
            dx = np.maximum(radius * aspect - (np.abs(x - cx) + 0.5), 0.0) / (radius * aspect)
            covered &= dy * dy + dx * dx <= 1.0
    observed = np.where(covered, 0.3 * picture + 90.0, picture)
    return picture, observed, (observed - 90.0) / 0.3


@pytest.mark.parametrize(("radius", "aspect"), [(15, 1.0), (12, 1.6), (18, 0.7)])
def test_the_corners_a_rounded_overlay_left_bare_are_put_back(radius, aspect) -> None:
    picture, observed, undone = _rounded_region(radius, aspect)
    # Undone everywhere, the bare corners are far off ...
    assert np.abs(undone - picture).max() > 100
    put_back = _round_corners(undone, observed, 22, aspect)
    # ... put back, everything is the picture again but a few bins on the arcs.
    off = np.abs(put_back - picture) > 1e-6
    assert off.sum() <= 4 * radius
    assert np.abs(put_back - picture)[~off].max() < 1e-6


def test_a_region_with_square_corners_is_left_as_undone() -> None:
    picture, observed, undone = _rounded_region(0, 1.0)
    assert np.array_equal(_round_corners(undone, observed, 22, 1.0), undone)


@pytest.mark.parametrize("side", [8, 20, 39, 41])
def test_a_small_region_is_looked_at_on_the_scales_it_can_hold(side) -> None:
    # A disc offset in regions about as small as the coarser scale's pairs are long (their
    # sides under 8 times the scale: that scale is skipped): undone, no error.
    y, x = np.mgrid[0:side, 0:side]
    picture = 100 + 10 * np.sin(x / 5.0) + 0.0 * y
    disc = (y - side / 2) ** 2 + (x - side / 2) ** 2 < (side / 4) ** 2
    region = picture + 80.0 * disc
    moved = _moved_patches(region, 0.3, 90.0)
    assert moved.shape == region.shape
    assert np.isfinite(moved).all()
