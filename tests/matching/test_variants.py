"""Scanned-side PDQ variants: padded, framed and cropped copies of benign photos that plain PDQ
misses are found, named by their variant; flat, near-flat and unrelated images are not."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter
from skimage import data as skdata

from vigil.catalog.store import Catalog
from vigil.fingerprint.fingerprints import PDQ, Fingerprints
from vigil.fingerprint.pdq import hamming, pdq_from_bytes
from vigil.hashsets.entry import Entry, ParseReport
from vigil.matching.matcher import Matcher, MatchSettings
from vigil.matching.settings import (
    AGREE_ANCHOR,
    AGREE_MASKS,
    AGREE_WITH,
    PDQ_AGREE_DISTANCE,
    PDQ_AGREE_PLAIN,
    PDQ_VARIANT_DISTANCE,
)

MAX = 50_000_000
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry")
REFERENCE = MatchSettings(pdq_variants=False, pdq_low_quality=MatchSettings.pdq_quality)


def photo(name: str) -> Image.Image:
    return Image.fromarray(getattr(skdata, name)()).convert("RGB")


def jpeg(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=92)
    return buf.getvalue()


def fingerprints(data: bytes) -> Fingerprints:
    return Fingerprints(
        size=len(data),
        md5="0" * 32,
        sha1="0" * 40,
        sha256="0" * 64,
        media_type="image/jpeg",
        pdq=pdq_from_bytes(data, max_pixels=MAX),
    )


# -- the copies ----------------------------------------------------------------------------------


def solid_pad(
    im: Image.Image, share: float = 0.15, colour: tuple[int, int, int] = (20, 60, 200)
) -> Image.Image:
    px, py = round(im.width * share), round(im.height * share)
    canvas = Image.new("RGB", (im.width + 2 * px, im.height + 2 * py), colour)
    canvas.paste(im, (px, py))
    return canvas


def letterbox(im: Image.Image) -> Image.Image:
    """Black bars above and below (a 4:3 picture in a 16:9 frame)."""
    height = round(im.width * 9 / 16) if im.width * 9 / 16 > im.height else im.height * 4 // 3
    canvas = Image.new("RGB", (im.width, max(height, im.height + 2 * im.height // 6)), (0, 0, 0))
    canvas.paste(im, (0, (canvas.height - im.height) // 2))
    return canvas


def blurred_pad(im: Image.Image, share: float = 0.15) -> Image.Image:
    px, py = round(im.width * share), round(im.height * share)
    size = (im.width + 2 * px, im.height + 2 * py)
    canvas = im.resize(size).filter(ImageFilter.GaussianBlur(max(size) / 40))
    canvas.paste(im, (px, py))
    return canvas


def mirrored_pad(im: Image.Image, share: float = 0.12) -> Image.Image:
    px, py = round(im.width * share), round(im.height * share)
    return Image.fromarray(np.pad(np.asarray(im), ((py, py), (px, px), (0, 0)), mode="symmetric"))


def mirrored_rows(im: Image.Image, share: float = 0.07) -> Image.Image:
    """Mirrored padding above and below only, of a width that falls inside a thumbnail bin."""
    py = round(im.height * share)
    return Image.fromarray(np.pad(np.asarray(im), ((py, py), (0, 0), (0, 0)), mode="symmetric"))


def blurred_rows(im: Image.Image, share: float = 0.18) -> Image.Image:
    """A blurred fill above and below only (a portrait picture made landscape)."""
    py = round(im.height * share)
    size = (im.width, im.height + 2 * py)
    canvas = im.resize(size).filter(ImageFilter.GaussianBlur(max(size) / 40))
    canvas.paste(im, (0, py))
    return canvas


def logo(im: Image.Image, corner: int, share: float = 0.09) -> Image.Image:
    """An opaque badge over `share` of the area in a corner (0: top left ... 3: bottom right)."""
    w, h = round(im.width * share**0.5), round(im.height * share**0.5)
    x = 0 if corner in (0, 2) else im.width - w
    y = 0 if corner in (0, 1) else im.height - h
    layer = Image.new("RGBA", im.size, (0, 0, 0, 0))
    ImageDraw.Draw(layer).rounded_rectangle(
        (x, y, x + w, y + h), radius=h // 5, fill=(250, 40, 40, 255)
    )
    return Image.alpha_composite(im.convert("RGBA"), layer).convert("RGB")


def crop_all_sides(im: Image.Image, share: float = 0.03) -> Image.Image:
    dx, dy = round(im.width * share), round(im.height * share)
    return im.crop((dx, dy, im.width - dx, im.height - dy))


def crop_left(im: Image.Image, share: float = 0.04) -> Image.Image:
    return im.crop((round(im.width * share), 0, im.width, im.height))


@dataclass(frozen=True)
class Case:
    how: str
    make: object  # Callable[[Image.Image], Image.Image]
    variants: tuple[str, ...]  # the names the copy may be found by
    at_least: int  # of the PHOTOS


CENTRES = ("centre", "centre-tb", "centre-lr")
MASKS = ("mask-tl", "mask-tr", "mask-bl", "mask-br", "mask-top", "mask-bottom")
SOLID = ("trim", "frame", "unblur", *CENTRES)
MIRROR = ("mirror", *CENTRES)
PADS = ("pad2", "pad3", "pad4", "pad5", "pad4t", "pad4b", "pad4l", "pad4r")
AGREED = tuple(f"{AGREE_ANCHOR}+{partner}" for partner in AGREE_WITH)
CASES = (
    # A solid border is flat, a straight edge and without detail: 'trim', 'frame' or 'unblur',
    # whichever is nearest.
    Case("solid padding 15%", solid_pad, SOLID, len(PHOTOS)),
    # Black bars around the Hubble deep field (black sky at its edges) are not told from it.
    Case("letterbox", letterbox, SOLID, len(PHOTOS) - 1),
    Case("blurred padding 15%", blurred_pad, SOLID, len(PHOTOS) // 2),
    Case("mirrored padding 12%", mirrored_pad, MIRROR, len(PHOTOS) - 2),
    # The mirror's axis placed to half a bin of the whole thumbnail, not of the halved one.
    Case("mirrored padding 7%, rows", mirrored_rows, MIRROR, len(PHOTOS) - 1),
    # A finder's border on the other axis too: `centre-tb` keeps the rows the finders agree on.
    Case("blurred padding 18%, rows", blurred_rows, SOLID, len(PHOTOS) // 2),
    # Re-padding is a guess at what was cut away: most, not all, come within the distance.
    Case("crop 3% all sides", crop_all_sides, PADS + AGREED, len(PHOTOS) - 2),
    Case("crop 4% off the left", crop_left, PADS + AGREED, len(PHOTOS) - 2),
)


@pytest.fixture(scope="module")
def originals() -> dict[str, Image.Image]:
    return {name: photo(name) for name in PHOTOS}


@pytest.fixture(scope="module")
def copies(originals: dict[str, Image.Image]) -> dict[tuple[str, str], Fingerprints]:
    return {
        (case.how, name): fingerprints(jpeg(case.make(image)))  # type: ignore[operator]
        for case in CASES
        for name, image in originals.items()
    }


def listed(catalog: Catalog, originals: dict[str, Image.Image]) -> Matcher:
    """A catalog listing the PDQ of each original (the plain hash of the original file)."""
    entries = [
        Entry({"pdq": pdq_from_bytes(jpeg(image), max_pixels=MAX).hash}, id=name)
        for name, image in originals.items()
    ]
    catalog.import_entries("police", entries, ParseReport(format="pdq"), source="p", version="1")
    return Matcher.compile(catalog)


# -- the tests -----------------------------------------------------------------------------------


def test_variants_leave_the_plain_hash_as_it_was(originals: dict[str, Image.Image]) -> None:
    for image in originals.values():
        data = jpeg(solid_pad(image))
        with_variants = pdq_from_bytes(data, max_pixels=MAX)
        plain = pdq_from_bytes(data, max_pixels=MAX, variants=False)
        assert (with_variants.hash, with_variants.quality, with_variants.dihedral) == (
            plain.hash,
            plain.quality,
            plain.dihedral,
        )
        assert plain.variants == ()
        assert {name for name, _, _ in with_variants.variants} >= {"trim", "pad3"}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.how)
def test_each_variant_finds_copies_plain_pdq_misses(
    catalog: Catalog,
    originals: dict[str, Image.Image],
    copies: dict[tuple[str, str], Fingerprints],
    case: Case,
) -> None:
    matcher = listed(catalog, originals)
    found = 0
    for name in originals:
        fp = copies[(case.how, name)]
        # Plain PDQ (with its 8 rotations) misses the copy: that is what the variant is for.
        assert matcher.lookup(fp, REFERENCE) == [], (case.how, name)
        hits = matcher.lookup(fp)
        assert all(matcher.entry(h.entry_id).ext_id == name for h in hits), (case.how, name)
        if hits:
            (hit,) = hits
            assert hit.kind == "pdq"
            assert hit.transform in case.variants, (case.how, name, hit)
            agreed = hit.transform in AGREED
            assert hit.distance <= (PDQ_AGREE_DISTANCE if agreed else PDQ_VARIANT_DISTANCE)
            found += 1
    assert found >= case.at_least, (case.how, found)


@pytest.mark.parametrize(
    ("name", "corner"), [("hubble_deep_field", 0), ("immunohistochemistry", 3)]
)
def test_a_masked_corner_finds_a_copy_with_a_logo(
    catalog: Catalog, originals: dict[str, Image.Image], name: str, corner: int
) -> None:
    # A badge over 9% of the picture (30% of each side) in a corner moves too many bits for
    # plain PDQ; with the corner filled from around it, the rest of the picture is near.
    matcher = listed(catalog, originals)
    fp = fingerprints(jpeg(logo(originals[name], corner)))
    assert matcher.lookup(fp, REFERENCE) == []
    (hit,) = matcher.lookup(fp)
    assert matcher.entry(hit.entry_id).ext_id == name
    assert hit.transform in MASKS and hit.distance <= PDQ_VARIANT_DISTANCE


@pytest.mark.parametrize("share", [0.08, 0.12])
def test_centre_on_one_axis_finds_what_a_spurious_border_hid(
    catalog: Catalog, share: float
) -> None:
    # The cameraman with a blurred fill left and right: the finders also see a border at the top
    # (his flat sky), so `centre` is cut on both axes; `centre-lr` is the picture itself.
    original = photo("camera")
    matcher = listed(catalog, {"camera": original})
    px = round(original.width * share)
    size = (original.width + 2 * px, original.height)
    copy = original.resize(size).filter(ImageFilter.GaussianBlur(max(size) / 40))
    copy.paste(original, (px, 0))
    fp = fingerprints(jpeg(copy))
    assert matcher.lookup(fp, REFERENCE) == []
    (hit,) = matcher.lookup(fp)
    assert hit.transform == "centre-lr" and hit.distance <= PDQ_VARIANT_DISTANCE


def test_variant_distance_is_the_tighter_one(
    catalog: Catalog, originals: dict[str, Image.Image], copies: dict[tuple[str, str], Fingerprints]
) -> None:
    matcher = listed(catalog, originals)
    for name in originals:
        fp = copies[("solid padding 15%", name)]
        assert fp.pdq is not None
        (hit,) = matcher.lookup(fp)
        assert hit.transform in SOLID
        # The variants' own distance is what decides, not the plain hash's.
        assert matcher.lookup(fp, MatchSettings(pdq_variant_distance=hit.distance)) == [hit]
        if hit.distance:
            tight = MatchSettings(pdq_variant_distance=hit.distance - 1)
            assert all(h.distance < hit.distance for h in matcher.lookup(fp, tight))
        # Never looser than the plain hash's distance.
        capped = MatchSettings(pdq_distance=hit.distance - 1, pdq_variant_distance=31)
        assert all(h.distance < hit.distance for h in matcher.lookup(fp, capped))


def test_agreement_finds_a_crop_no_single_variant_brings_near(
    catalog: Catalog, originals: dict[str, Image.Image]
) -> None:
    # Cut by 3.5% a side, the stained tissue's re-padded variants are 28-32 bits from the
    # original (pad3 30, pad4 28), its plain hash 60: with single variants allowed 27 bits only,
    # pad3 and pad4 agreeing within 36 (and the plain hash within 72) find it.
    original = originals["immunohistochemistry"]
    matcher = listed(catalog, {"immunohistochemistry": original})
    fp = fingerprints(jpeg(crop_all_sides(original, 0.035)))
    assert matcher.lookup(fp, REFERENCE) == []
    single = MatchSettings(pdq_variant_distance=27, pdq_agree_distance=0)
    assert matcher.lookup(fp, single) == []
    (hit,) = matcher.lookup(fp, MatchSettings(pdq_variant_distance=27))
    assert matcher.entry(hit.entry_id).ext_id == "immunohistochemistry"
    assert hit.transform in AGREED and 27 < hit.distance <= PDQ_AGREE_DISTANCE


def _flipped(hex_: str, start: int, count: int) -> str:
    """`hex_` with bits start..start+count-1 flipped."""
    value = int(hex_, 16)
    for bit in range(start, start + count):
        value ^= 1 << bit
    return f"{value:064x}"


def _made(plain: str, variants: dict[str, str], quality: int = 90) -> Fingerprints:
    pdq = PDQ(plain, quality, (plain,) * 8, tuple((n, h, quality) for n, h in variants.items()))
    return Fingerprints(1, "0" * 32, "0" * 40, "0" * 64, "image/jpeg", pdq=pdq)


def test_agreement_rule_needs_a_partner_and_the_plain_hash(catalog: Catalog) -> None:
    listed_hash = "5a" * 32
    entry = Entry({"pdq": listed_hash}, id="listed")
    catalog.import_entries("police", [entry], ParseReport(format="pdq"), source="p", version="1")
    matcher = Matcher.compile(catalog)

    def case(anchor: int, partner: int, plain: int, **kw: int) -> list[str | None]:
        fp = _made(
            _flipped(listed_hash, 0, plain),
            {
                AGREE_ANCHOR: _flipped(listed_hash, 100, anchor),
                AGREE_WITH[1]: _flipped(listed_hash, 150, partner),
                "pad4t": _flipped(listed_hash, 0, 20 if kw.pop("side", 0) else 90),
            },
        )
        return [h.transform for h in matcher.lookup(fp, MatchSettings(**kw))]  # type: ignore[arg-type]

    agreed = f"{AGREE_ANCHOR}+{AGREE_WITH[1]}"
    assert case(33, 35, 60) == [agreed]
    assert case(PDQ_AGREE_DISTANCE, PDQ_AGREE_DISTANCE, PDQ_AGREE_PLAIN) == [agreed]
    # The anchor alone, an anchor past the rule's distance, a partner too far, the plain hash
    # too far: no match.
    assert case(33, 90, 60) == []
    assert case(PDQ_AGREE_DISTANCE + 1, 30, 60) == []
    assert case(33, PDQ_AGREE_DISTANCE + 1, 60) == []
    assert case(33, 35, PDQ_AGREE_PLAIN + 1) == []
    # A one-side re-padding near the entry is a single variant, not a partner of the anchor.
    assert case(33, 90, 60, side=1) == ["pad4t"]
    # Off: without variants, with the rule's distance at the variants', or a tighter PDQ
    # distance (never more than 5 bits looser than it).
    assert case(33, 35, 60, pdq_agree_distance=0) == []
    assert case(33, 35, 60, pdq_variants=False) == []
    assert case(33, 35, 60, pdq_distance=27) == []
    assert case(32, 32, 60, pdq_distance=27) == [agreed]
    # The plain hash's bound is a setting too; a nearer single variant wins.
    assert case(33, 35, 60, pdq_agree_plain=59) == []
    assert case(33, 20, 60) == [AGREE_WITH[1]]


def test_plain_hash_near_the_threshold_needs_a_mask_to_agree(catalog: Catalog) -> None:
    # With `pdq_agree_masks` only (off by default: README, "Robustness").
    listed_hash = "96" * 32
    entry = Entry({"pdq": listed_hash}, id="listed")
    catalog.import_entries("police", [entry], ParseReport(format="pdq"), source="p", version="1")
    matcher = Matcher.compile(catalog)

    def case(plain: int, mask: int, **kw: int) -> list[tuple[str | None, int]]:
        fp = _made(
            _flipped(listed_hash, 0, plain),
            {"mask-br": _flipped(listed_hash, 120, mask), "pad3": _flipped(listed_hash, 40, 90)},
        )
        settings = MatchSettings(**{"pdq_agree_masks": True, **kw})  # type: ignore[arg-type]
        return [(h.transform, h.distance) for h in matcher.lookup(fp, settings)]

    # A badge in a corner: the plain hash a few bits past 31, the corner filled within 36.
    assert case(34, 30) == [("original+mask-br", 34)]
    assert case(PDQ_AGREE_DISTANCE, PDQ_AGREE_DISTANCE) == [("original+mask-br", 36)]
    assert case(31, 90) == [("original", 31)]  # within the plain distance: no partner needed
    assert case(27, 90) == [("original", 27)]
    # Alone, or with the mask too far, or the plain hash past the rule's distance: no match.
    assert case(34, 90) == []
    assert case(34, PDQ_AGREE_DISTANCE + 1) == []
    assert case(PDQ_AGREE_DISTANCE + 1, 20) == [("mask-br", 20)]  # the mask alone, as before
    assert case(PDQ_AGREE_DISTANCE + 1, 30) == []
    assert case(34, 30, pdq_agree_distance=0) == []
    assert case(34, 30, pdq_variants=False) == []
    assert case(34, 30, pdq_agree_masks=False) == []  # the default
    # A re-padded variant is no partner of the plain hash.
    fp = _made(_flipped(listed_hash, 0, 34), {"pad2": _flipped(listed_hash, 120, 30)})
    assert matcher.lookup(fp, MatchSettings(pdq_agree_masks=True)) == []
    assert "mask-br" in AGREE_MASKS


def test_a_logo_just_past_the_plain_distance_is_found_with_a_mask(catalog: Catalog) -> None:
    # A badge over 12% of the cat photo, bottom right: the plain hash 32 bits from the
    # original, the bottom-right corner filled 30: neither matches alone, together they do.
    original = photo("chelsea")
    matcher = listed(catalog, {"chelsea": original})
    fp = fingerprints(jpeg(logo(original, 3, 0.12)))
    assert matcher.lookup(fp) == []
    (hit,) = matcher.lookup(fp, MatchSettings(pdq_agree_masks=True))
    assert matcher.entry(hit.entry_id).ext_id == "chelsea"
    assert hit.transform == "original+mask-br" and 31 < hit.distance <= PDQ_AGREE_DISTANCE


def test_agreement_needs_hashes_of_the_gates_quality(catalog: Catalog) -> None:
    listed_hash = "c3" * 32
    entry = Entry({"pdq": listed_hash}, id="listed")
    catalog.import_entries("police", [entry], ParseReport(format="pdq"), source="p", version="1")
    matcher = Matcher.compile(catalog)
    hashes = {
        AGREE_ANCHOR: _flipped(listed_hash, 100, 33),
        AGREE_WITH[0]: _flipped(listed_hash, 150, 34),
    }
    plain = _flipped(listed_hash, 0, 60)
    assert len(matcher.lookup(_made(plain, hashes))) == 1
    assert matcher.lookup(_made(plain, hashes, quality=45)) == []


def flat_images() -> list[Image.Image]:
    """Solid colours, faint gradients and faint noise (PDQ quality under the low-quality gate),
    some with borders of their own."""
    rng = np.random.default_rng(3)
    colours = ((0, 0, 0), (255, 255, 255), (90, 140, 30), (200, 40, 40))
    out = [Image.new("RGB", (640, 480), colour) for colour in colours]
    for rise in (4, 8):
        g = np.add.outer(np.linspace(0, rise, 480), np.linspace(100, 100 + rise, 640))
        out.append(Image.fromarray(g.astype(np.uint8)).convert("RGB"))
        out.append(Image.fromarray(g.T.astype(np.uint8)).convert("RGB"))
    for level in (0.5, 1.0):
        noise = 128 + rng.normal(0, level, (480, 640))
        out.append(Image.fromarray(np.clip(noise, 0, 255).astype(np.uint8)).convert("RGB"))
    framed = []
    for im in out[:8]:
        # A border a few levels off the picture's own colour: the whole is still near-flat.
        level = tuple(min(255, c + 6) for c in im.getpixel((0, 0)))  # type: ignore[union-attr]
        framed.append(solid_pad(im, 0.1, level))  # type: ignore[arg-type]
        framed.append(mirrored_pad(im, 0.1))
        framed.append(blurred_pad(im, 0.1))
    return out + framed


def test_flat_and_near_flat_images_never_match(catalog: Catalog) -> None:
    flats = flat_images()
    # The list holds flat pictures too (police lists do: a hash of any quality can be listed).
    entries = [
        Entry({"pdq": pdq_from_bytes(jpeg(im), max_pixels=MAX).hash}, id=f"flat{i}")
        for i, im in enumerate(flats[::2])
    ]
    catalog.import_entries("police", entries, ParseReport(format="pdq"), source="p", version="1")
    matcher = Matcher.compile(catalog)
    for im in flats[1::2]:
        fp = fingerprints(jpeg(im))
        # The premise: flat, and so are its variants (a solid border around a flat picture).
        assert fp.pdq is not None and fp.pdq.quality < MatchSettings.pdq_low_quality
        assert all(q < MatchSettings.pdq_quality for _, _, q in fp.pdq.variants)
        assert matcher.lookup(fp) == []


def test_unrelated_photos_never_match(
    catalog: Catalog, originals: dict[str, Image.Image], copies: dict[tuple[str, str], Fingerprints]
) -> None:
    # Half the photos listed; every copy of the other half, and the other half themselves,
    # with every variant: no match.
    names = list(originals)
    matcher = listed(catalog, {n: originals[n] for n in names[::2]})
    # With the agreement of the plain hash and a mask too (off by default).
    for settings in (MatchSettings(), MatchSettings(pdq_agree_masks=True)):
        for name in names[1::2]:
            assert matcher.lookup(fingerprints(jpeg(originals[name])), settings) == [], name
            for case in CASES:
                assert matcher.lookup(copies[(case.how, name)], settings) == [], (case.how, name)


def vigil(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`vigil ARGS` in a new process with `env`."""
    return subprocess.run(
        [sys.executable, "-m", "vigil.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def listed_home(tmp_path: Path, lines: str) -> dict[str, str]:
    """A home under tmp_path with the PDQ list `lines` imported as set `police`; its env."""
    listing = tmp_path / "police.pdq"
    listing.write_text(lines)
    env = {**os.environ, "VIGIL_HOME": str(tmp_path / "home")}
    imported = vigil(env, "hashset", "import", str(listing), "--name", "police")
    assert imported.returncode == 0, imported.stderr
    return env


def test_the_variant_is_named_in_the_scan_output(
    tmp_path: Path, originals: dict[str, Image.Image]
) -> None:
    original = originals["astronaut"]
    env = listed_home(
        tmp_path, f"pdq {pdq_from_bytes(jpeg(original), max_pixels=MAX).hash} astronaut\n"
    )
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "framed.jpg").write_bytes(jpeg(solid_pad(original)))
    (tree / "holiday.jpg").write_bytes(jpeg(originals["coffee"]))
    proc = vigil(env, "scan", str(tree), "--json")
    assert proc.returncode == 1, proc.stderr
    (match,) = [json.loads(line) for line in proc.stdout.splitlines()]
    assert Path(match["path"]).name == "framed.jpg"
    assert match["kind"] == "pdq"
    assert match["transform"] in SOLID
    assert match["distance"] <= PDQ_VARIANT_DISTANCE
    # The reference's rule (no variants) finds nothing.
    proc = vigil(env, "scan", str(tree), "--json", "--no-cache", "--no-pdq-variants")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""
    assert (
        hamming(
            pdq_from_bytes(jpeg(solid_pad(original)), max_pixels=MAX).hash,
            pdq_from_bytes(jpeg(original), max_pixels=MAX).hash,
        )
        > MatchSettings.pdq_distance
    )


def test_agreements_are_named_in_the_scan_output(tmp_path: Path) -> None:
    # The stained tissue cut by 3.75% a side: no single variant within 28 (pad5 32, pad3 36),
    # pad3 and pad5 agreeing within 36 and the plain hash 66 find it by default. The cat with a
    # badge: the plain hash and a mask agreeing, with --pdq-agree-masks only.
    tissue, cat = photo("immunohistochemistry"), photo("chelsea")
    env = listed_home(
        tmp_path,
        "".join(
            f"pdq {pdq_from_bytes(jpeg(im), max_pixels=MAX).hash} {name}\n"
            for name, im in (("tissue", tissue), ("cat", cat))
        ),
    )
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "cropped.jpg").write_bytes(jpeg(crop_all_sides(tissue, 0.0375)))
    (tree / "badge.jpg").write_bytes(jpeg(logo(cat, 3, 0.12)))

    def scan(*extra: str) -> dict[str, tuple[str, int]]:
        proc = vigil(env, "scan", str(tree), "--json", *extra)
        assert proc.returncode in (0, 1), proc.stderr
        matches = [json.loads(line) for line in proc.stdout.splitlines()]
        return {Path(m["path"]).name: (m["transform"], m["distance"]) for m in matches}

    assert scan() == {"cropped.jpg": ("pad3+pad5", 36)}
    assert scan("--pdq-agree-masks") == {
        "cropped.jpg": ("pad3+pad5", 36),
        "badge.jpg": ("original+mask-br", 32),
    }
    assert scan("--no-pdq-variants") == {}
