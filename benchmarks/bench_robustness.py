"""Robustness of image matching: recall per transform at a fixed false-match budget.

In the spirit of Thorn's `perception` benchmark. Listed: the PDQ (Meta's reference, pdqhash) of
benign photos (Debian's mate-backgrounds and gnome-backgrounds, scikit-image's photographs;
`benchmarks.corpus`), each at most 1,600 pixels a side, with a low-contrast copy of each photo
(its PDQ quality brought down to 50-60) listed too, and `--random-hashes` random 256-bit hashes.
Scanned: generated transforms of every listed photo (crops, padding, borders, watermarks,
rotations, gamma, blur, JPEG quality, screenshot framing, low-quality copies), each made
`--samples` times with random parameters in the stated range and saved as JPEG (quality 90).
A larger sample of low-quality copies (`--low-samples` a low-contrast photo, drawn with a seed
of its own) is reported as well, and its part within 31 bits of the original (where the quality
gate, not the transform, decides).

Unrelated images: `--unrelated` random tiles of the same photos (a random 12-40% of each side,
anywhere, resized to 200-900 pixels wide, JPEG quality 70-95). A tile counts as a false match
when it matches any listed picture other than the photo it was cut from (or its light/dark or
size siblings: wallpapers named alike are one group), or any random hash. The tiles are also
matched against a list of their own hashes (pdqhash's plain hash of each tile: real-photo hashes,
which random ones cannot stand for), once with the entries of quality >= 50 only and once with
all: a tile that matches a tile of another group is a false match there.

Contenders: pdqhash at distance 31 (its own hashes of the decoded copy, the 8 rotations, quality
at least 50: the reference rule), Vigil with the reference's rule (`--no-pdq-variants`), and Vigil
with its default settings and a few others (the scanned-side variants and their distance, the
agreement rules, the low-quality gate). Recall is the share of copies that match their photo.
The margins: how near an unrelated tile comes to a listed photo by its plain hash, by a variant,
and under each agreement rule (by how many bits every bound would have to be loosened).

    python -m benchmarks.bench_robustness [--quick] [--samples 3] [--unrelated 10000]
        [--random-hashes 1000000] [--seed 1] [--only REGEX] [--low-samples 12] [--dump FILE]
        [--speed 300] [--speed-only]

`--quick`: 1 sample per transform, 1,000 unrelated tiles, 100,000 random hashes (a few
minutes). The full run takes about 25 minutes on one core.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import random
import re
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pdqhash
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont

from benchmarks.corpus import backgrounds, skimage_photos
from vigil.fingerprint.fingerprints import Fingerprints
from vigil.fingerprint.pdq import pdq_from_bytes
from vigil.matching.exact import prefix_directory
from vigil.matching.matcher import EXACT_KINDS, Matcher, _ExactTable
from vigil.matching.pdq_index import build_pdq_index
from vigil.matching.settings import AGREE_ANCHOR, AGREE_MASKS, AGREE_WITH, MatchSettings

MAX_SIDE = 1600
MAX_PIXELS = 100_000_000

Transform = Callable[[Image.Image, random.Random], Image.Image]


# -- the photos ------------------------------------------------------------------------------


def group_of(path: Path) -> str:
    """Wallpapers that are versions of one picture (light/dark, sizes, colourways) share a group."""
    stem = path.stem.lower()
    stem = re.sub(r"(-[ld]|_\d+x\d+|-light|-dark)$", "", stem)
    if stem.startswith("ubuntu-mate-"):
        return "ubuntu-mate"
    return stem.replace("mate-", "")


def load_photos() -> list[tuple[str, str, Image.Image]]:
    """(name, group, RGB image of at most MAX_SIDE a side) of every source photo."""
    out = []
    for path in [*backgrounds(), *skimage_photos()]:
        with Image.open(path) as im:
            rgb = im.convert("RGB")
        rgb.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
        out.append((path.name, group_of(path), rgb))
    return out


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def reference(image: Image.Image) -> tuple[list[str], int]:
    """pdqhash's 8 hashes (hex, DIHEDRAL order) and quality of an RGB image."""
    hashes, quality = pdqhash.compute_dihedral(np.asarray(image.convert("RGB")))
    out = []
    for bits in hashes:
        packed = np.packbits(np.asarray(bits, dtype=np.uint8))  # element 0: the top bit
        out.append(packed.tobytes().hex())
    return out, int(quality)


def low_contrast(image: Image.Image) -> Image.Image | None:
    """The photo with its contrast lowered until its PDQ quality is 50-60 (None if it never is)."""
    lo, hi = 0.02, 1.0
    for _ in range(12):
        mid = (lo + hi) / 2
        candidate = ImageEnhance.Contrast(image).enhance(mid)
        q = reference(candidate)[1]
        if 50 <= q <= 60:
            return candidate
        lo, hi = (mid, hi) if q < 50 else (lo, mid)
    return None


# -- the transforms --------------------------------------------------------------------------


def _crop(im: Image.Image, top: float, bottom: float, left: float, right: float) -> Image.Image:
    w, h = im.size
    return im.crop((round(w * left), round(h * top), w - round(w * right), h - round(h * bottom)))


def crop_all(lo: float, hi: float) -> Transform:
    def t(im: Image.Image, rng: random.Random) -> Image.Image:
        c = rng.uniform(lo, hi)
        return _crop(im, c, c, c, c)

    return t


def crop_one(lo: float, hi: float) -> Transform:
    def t(im: Image.Image, rng: random.Random) -> Image.Image:
        sides = [0.0] * 4
        sides[rng.randrange(4)] = rng.uniform(lo, hi)
        return _crop(im, *sides)

    return t


def pad(lo: float, hi: float, kind: str) -> Transform:
    def t(im: Image.Image, rng: random.Random) -> Image.Image:
        p = rng.uniform(lo, hi)
        w, h = im.size
        # Even on all sides, or on two opposite sides only (letterbox / pillarbox).
        py, px = (round(h * p), round(w * p))
        shape = rng.choice(["all", "rows", "cols"])
        if shape == "rows":
            px = 0
        elif shape == "cols":
            py = 0
        size = (w + 2 * px, h + 2 * py)
        if kind == "solid":
            colour = tuple(rng.randrange(256) for _ in range(3))
            canvas = Image.new("RGB", size, colour)  # type: ignore[arg-type]
        elif kind == "blurred":
            canvas = im.resize(size).filter(ImageFilter.GaussianBlur(max(size) / 40))
        else:  # mirrored
            a = np.asarray(im)
            canvas = Image.fromarray(np.pad(a, ((py, py), (px, px), (0, 0)), mode="symmetric"))
            return canvas
        canvas.paste(im, (px, py))
        return canvas

    return t


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for name in ("DejaVuSans-Bold.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


def text_layer(im: Image.Image, rng: random.Random, lo: float, hi: float) -> Image.Image:
    """The RGBA layer of a caption band of lo-hi of the area: full-width semi-opaque white or
    black text over a strip, somewhere (`watermark_text`)."""
    w, h = im.size
    share = rng.uniform(lo, hi)
    band_h = max(8, round(h * share))
    font = _font(max(6, round(band_h * 0.7)))
    text = rng.choice(["SAMPLE COPY", "www.example.org", "(c) 2026 Somebody", "PREVIEW ONLY"])
    layer = Image.new("RGBA", im.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    y = rng.randrange(0, max(1, h - band_h))
    x = 0
    alpha = rng.randrange(110, 200)
    fill = (255, 255, 255, alpha) if rng.random() < 0.5 else (0, 0, 0, alpha)
    while x < w:
        draw.text((x, y), text + "  ", font=font, fill=fill)
        x += max(1, round(draw.textlength(text + "  ", font=font)))
    return layer


def logo_layer(im: Image.Image, rng: random.Random, lo: float, hi: float) -> Image.Image:
    """The RGBA layer of a semi-opaque logo of lo-hi of the area in a corner: a rounded
    rectangle with an ellipse of the inverse colour inside it (`watermark_logo`)."""
    w, h = im.size
    share = rng.uniform(lo, hi)
    side_w = round(w * share**0.5)
    side_h = round(h * share**0.5)
    layer = Image.new("RGBA", im.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    corner = rng.randrange(4)
    x = 0 if corner in (0, 2) else w - side_w
    y = 0 if corner in (0, 1) else h - side_h
    alpha = rng.randrange(120, 220)
    colour = tuple(rng.randrange(256) for _ in range(3))
    draw.rounded_rectangle(
        (x, y, x + side_w, y + side_h), radius=side_h // 5, fill=(*colour, alpha)
    )
    draw.ellipse(
        (x + side_w // 4, y + side_h // 4, x + 3 * side_w // 4, y + 3 * side_h // 4),
        fill=(255 - colour[0], 255 - colour[1], 255 - colour[2], alpha),
    )
    return layer


def watermark_text(lo: float, hi: float) -> Transform:
    def t(im: Image.Image, rng: random.Random) -> Image.Image:
        layer = text_layer(im, rng, lo, hi)
        return Image.alpha_composite(im.convert("RGBA"), layer).convert("RGB")

    return t


def watermark_logo(lo: float, hi: float) -> Transform:
    def t(im: Image.Image, rng: random.Random) -> Image.Image:
        layer = logo_layer(im, rng, lo, hi)
        return Image.alpha_composite(im.convert("RGBA"), layer).convert("RGB")

    return t


def rotate(lo: float, hi: float) -> Transform:
    def t(im: Image.Image, rng: random.Random) -> Image.Image:
        angle = rng.uniform(lo, hi) * rng.choice([-1, 1])
        return im.rotate(angle, resample=Image.Resampling.BICUBIC, expand=False)

    return t


def gamma(lo: float, hi: float) -> Transform:
    def t(im: Image.Image, rng: random.Random) -> Image.Image:
        g = rng.uniform(lo, hi)
        lut = [round(255 * (i / 255) ** g) for i in range(256)] * 3
        return im.point(lut)

    return t


def blur(lo: float, hi: float) -> Transform:
    def t(im: Image.Image, rng: random.Random) -> Image.Image:
        return im.filter(ImageFilter.GaussianBlur(rng.uniform(lo, hi) * max(im.size) / 1000))

    return t


def low_jpeg(lo: int, hi: int) -> Transform:
    def t(im: Image.Image, rng: random.Random) -> Image.Image:
        q = rng.randint(lo, hi)
        return Image.open(io.BytesIO(jpeg(im.resize((im.width // 2, im.height // 2)), q)))

    return t


def screenshot(im: Image.Image, rng: random.Random) -> Image.Image:
    """The picture in a window on a desktop: a title bar with text and buttons, a toolbar, a grey
    margin around the picture, the desktop around the window."""
    w, h = im.size
    shot_w, shot_h = round(w * rng.uniform(1.15, 1.4)), round(h * rng.uniform(1.25, 1.5))
    desktop = tuple(rng.randrange(40, 200) for _ in range(3))
    canvas = Image.new("RGB", (shot_w, shot_h), desktop)  # type: ignore[arg-type]
    draw = ImageDraw.Draw(canvas)
    wx, wy = round(shot_w * 0.04), round(shot_h * 0.03)
    ww, wh = shot_w - 2 * wx, shot_h - 2 * wy
    bar = max(12, round(h * 0.06))
    draw.rectangle((wx, wy, wx + ww, wy + wh), fill=(236, 236, 236))
    draw.rectangle((wx, wy, wx + ww, wy + bar), fill=(48, 48, 52))
    font = _font(max(6, bar // 2))
    draw.text(
        (wx + bar, wy + bar // 4), "photo.jpg - Image Viewer", font=font, fill=(230, 230, 230)
    )
    for k in range(3):
        cx = wx + ww - bar * (k + 1)
        draw.ellipse(
            (cx, wy + bar // 4, cx + bar // 2, wy + 3 * bar // 4), fill=(200, 80 + 60 * k, 80)
        )
    tool_y = wy + bar
    draw.rectangle((wx, tool_y, wx + ww, tool_y + bar), fill=(220, 220, 224))
    for k in range(6):
        draw.rectangle(
            (
                wx + 8 + k * bar * 1.5,
                tool_y + 3,
                wx + 8 + k * bar * 1.5 + bar - 6,
                tool_y + bar - 3,
            ),
            fill=(120, 120, 140),
        )
    inner_w, inner_h = ww - 16, wh - 2 * bar - 16
    scale = min(inner_w / w, inner_h / h)
    pic = im.resize((max(1, round(w * scale)), max(1, round(h * scale))))
    px = wx + (ww - pic.width) // 2
    py = tool_y + bar + (wh - 2 * bar - pic.height) // 2
    canvas.paste(pic, (px, py))
    return canvas


def low_quality_copy(im: Image.Image, rng: random.Random) -> Image.Image:
    """A resized, mirrored, brightened or blurred copy (applied to the low-contrast photos)."""
    kind = rng.choice(["resize", "mirror", "brighten", "blur", "rotate90"])
    if kind == "resize":
        f = rng.uniform(0.3, 0.7)
        size = (max(8, round(im.width * f)), max(8, round(im.height * f)))
        return im.resize(size, Image.Resampling.BILINEAR)
    if kind == "mirror":
        return im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if kind == "brighten":
        return ImageEnhance.Brightness(im).enhance(rng.uniform(1.1, 1.4))
    if kind == "rotate90":
        return im.transpose(Image.Transpose.ROTATE_90)
    return im.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.5) * max(im.size) / 1000))


TRANSFORMS: dict[str, Transform] = {
    "crop 3% all sides": crop_all(0.03, 0.03),
    "crop 2-4% all sides": crop_all(0.02, 0.04),
    "crop 5-10% all sides": crop_all(0.05, 0.10),
    "crop 2-5% one side": crop_one(0.02, 0.05),
    "crop 5-10% one side": crop_one(0.05, 0.10),
    "pad 5-25% solid": pad(0.05, 0.25, "solid"),
    "pad 5-25% blurred": pad(0.05, 0.25, "blurred"),
    "pad 5-25% mirrored": pad(0.05, 0.25, "mirrored"),
    "watermark text 5-20%": watermark_text(0.05, 0.20),
    "watermark logo 5-20%": watermark_logo(0.05, 0.20),
    "rotate 1-5 deg": rotate(1, 5),
    "gamma 0.6-1.6": gamma(0.6, 1.6),
    "blur r 1-3 per mille": blur(1, 3),
    "jpeg q30-50 half size": low_jpeg(30, 50),
    "screenshot framing": screenshot,
}
LOW_QUALITY = "low-quality copy (q 40-49)"
# The larger sample of such copies (`--low-samples` a low-contrast photo, its own seeded draws,
# so the rows above and the unrelated tiles stay those of earlier runs), and its copies whose
# plain hash (nearest rotation) is within 31 bits of the original: there the quality gate, not
# the transform, decides.
LOW_MORE = "low-quality copies, more"
LOW_NEAR = "low-quality, more, d<=31"


def low_quality_more(im: Image.Image, rng: random.Random) -> tuple[bytes, Image.Image]:
    """One or two of `low_quality_copy`'s edits, or the contrast lowered a little more (a faded
    copy), then saved at a JPEG quality of 60-90: the JPEG and its decoded image."""
    kinds = rng.choice([1, 1, 2])
    for _ in range(kinds):
        if rng.random() < 0.25:
            im = ImageEnhance.Contrast(im).enhance(rng.uniform(0.7, 0.95))
        else:
            im = low_quality_copy(im, rng)
    data = jpeg(im, rng.randint(60, 90))
    return data, Image.open(io.BytesIO(data))


# -- the contenders --------------------------------------------------------------------------


def make_matcher(hashes: np.ndarray) -> Matcher:
    """A matcher over these PDQ hashes only (entry id = row), no catalog needed."""
    exact = {}
    for kind, width in EXACT_KINDS.items():
        values = np.zeros(0, dtype=f"S{width}")
        rows = np.zeros((0, width), dtype=np.uint8)
        exact[kind] = _ExactTable(
            values, np.zeros(0, np.int64), np.zeros(0, np.int32), prefix_directory(rows)
        )
    n = len(hashes)
    return Matcher(
        1,
        exact,
        build_pdq_index(hashes),
        np.arange(n, dtype=np.int64),
        np.ones(n, dtype=np.int32),
        {1: "bench"},
        set(),
    )


SETTINGS: dict[str, MatchSettings] = {
    "vigil reference rule": MatchSettings(
        pdq_variants=False, pdq_low_quality=MatchSettings.pdq_quality
    ),
    "vigil default": MatchSettings(),
    "no agreement": MatchSettings(pdq_agree_distance=0),
    "+ plain/mask agreement": MatchSettings(pdq_agree_masks=True),
    "variants d<=24": MatchSettings(pdq_variant_distance=24),
    "variants d<=31": MatchSettings(pdq_variant_distance=31),
    "low gate d<=20": MatchSettings(pdq_low_quality_distance=20),
    "low gate d<=31": MatchSettings(pdq_low_quality_distance=31),
}


def agreement_margins(fp: Fingerprints, listed: np.ndarray) -> dict[str, int]:
    """By how many bits every bound of each agreement rule of the default settings would have
    to be loosened for it to match `fp` to one of `listed`: the re-padded anchor with another
    re-padding and the plain hash; the plain hash with a masked variant."""
    default = MatchSettings()
    radius, plain_radius = default.agree_radii()
    if fp.pdq is None or fp.pdq.quality < default.pdq_quality:
        return {}
    usable = {name: h for name, h, q in fp.pdq.variants if q >= default.pdq_quality}

    def dist(hexes: list[str]) -> np.ndarray:
        qs = np.frombuffer(bytes.fromhex("".join(hexes)), np.uint8).reshape(-1, 32)
        return np.bitwise_count(qs[:, None, :] ^ listed[None, :, :]).sum(2).min(0).astype(int)

    out = {}
    plain = dist([fp.pdq.hash])
    partners = [usable[name] for name in AGREE_WITH if name in usable]
    if AGREE_ANCHOR in usable and partners:
        need = np.maximum(dist([usable[AGREE_ANCHOR]]) - radius, dist(partners) - radius)
        out["agreement, re-padded"] = int(np.maximum(need, plain - plain_radius).min())
    masks = [usable[name] for name in AGREE_MASKS if name in usable]
    if masks:
        out["agreement, plain + mask"] = int(np.maximum(plain - radius, dist(masks) - radius).min())
    return out


def tile_list_false_matches(
    tiles: list[tuple[str, list[str], int, Fingerprints]], contenders: list[str]
) -> dict[str, list[tuple[int, list[str]]]]:
    """The unrelated tiles matched against a list of their own hashes (pdqhash's plain hash of
    each: real photos' hashes, as police lists hold, where the random hashes are no test of
    likeness), first with the entries of quality >= 50 only (lists usually leave flat images
    out), then with all: per contender, how many tiles match a tile of another group, and a
    few examples. A tile matching its own entry, or a tile of its own group, is no error."""
    groups = np.array([g for g, _, _, _ in tiles])
    plain = np.frombuffer(bytes.fromhex("".join(h[0] for _, h, _, _ in tiles)), np.uint8)
    plain = plain.reshape(-1, 32)
    qualities = np.array([q for _, _, q, _ in tiles])
    fps = [fp for _, _, _, fp in tiles]
    out: dict[str, list[tuple[int, list[str]]]] = {c: [] for c in contenders}
    for rows in (np.flatnonzero(qualities >= 50), np.arange(len(tiles))):
        found: list[tuple[str, int, int, str]] = []  # (contender, tile, entry row, how)
        index = build_pdq_index(plain[rows])
        for k, (_, hashes, quality, _) in enumerate(tiles):
            if quality >= 50:
                q = np.frombuffer(bytes.fromhex("".join(hashes)), np.uint8).reshape(-1, 32)
                found += [("pdqhash d<=31", k, r, f"d={d}") for _, r, d in index.search(q, 31)]
        matcher = make_matcher(plain[rows])
        for label, settings in SETTINGS.items():
            for start in range(0, len(fps), 256):
                batch = matcher.match_many(fps[start : start + 256], settings)[1]
                found += [
                    (label, k, hit.entry_id, f"d={hit.distance} {hit.transform}")
                    for k, hits in enumerate(batch, start)
                    for hit in hits
                ]
        for c in contenders:
            wrong = [
                (k, int(rows[r]), how)
                for label, k, r, how in found
                if label == c and groups[rows[r]] != groups[k]
            ]
            examples = [
                f"tile {k} ({groups[k]}) ~ tile {e} ({groups[e]}, q{qualities[e]}) {how}"
                for k, e, how in wrong[:3]
            ]
            out[c].append((len({k for k, _, _ in wrong}), examples))
    return out


def fingerprints(data: bytes) -> Fingerprints:
    fp = Fingerprints(len(data), "", "", "", "image/jpeg")
    fp.pdq = pdq_from_bytes(data, max_pixels=MAX_PIXELS)
    return fp


def speed(n: int) -> None:
    """CPU time of `fingerprint_file` (digests, sniffing, decode, PDQ) per photo with and without
    the variants, interleaved in chunks of 10 on one core (the corpus of bench_images.py)."""
    import os
    import statistics
    from functools import partial

    from threadpoolctl import threadpool_limits

    from benchmarks.corpus import photos as corpus_photos
    from benchmarks.corpus import warm
    from vigil.fingerprint import pdq
    from vigil.limits import Limits
    from vigil.scan import worker

    files = corpus_photos(n)
    warm(files)
    cores = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cores[0]})
    limits = Limits()
    with_variants = pdq.pdq_from_bytes
    without = partial(pdq.pdq_from_bytes, variants=False)
    times: dict[str, list[float]] = {"without variants": [], "with variants": []}
    with threadpool_limits(1):
        # As the scanner does before it forks its workers (`worker.prepare`): every compiled
        # kernel loaded (one only some photos reach would otherwise pay its load inside the
        # timing).
        worker.prepare()
        for f in files[:3]:
            worker.fingerprint_file(str(f), limits)
        for start in range(0, len(files), 10):
            for label, fn in (("without variants", without), ("with variants", with_variants)):
                worker.pdq_from_bytes = fn  # type: ignore[assignment]
                for f in files[start : start + 10]:
                    t = time.process_time()
                    worker.fingerprint_file(str(f), limits)
                    times[label].append(time.process_time() - t)
    worker.pdq_from_bytes = with_variants  # type: ignore[assignment]
    os.sched_setaffinity(0, set(cores))
    print(f"\nfingerprint_file CPU time per photo ({len(files)} JPEGs of 1-3 MP, one core):")
    for label, ts in times.items():
        ms = sorted(1000 * t for t in ts)
        print(
            f"{label:20} mean {statistics.mean(ms):6.2f} ms  p50 {ms[len(ms) // 2]:6.2f}  "
            f"p90 {ms[int(len(ms) * 0.9)]:6.2f}  p99 {ms[min(len(ms) - 1, int(len(ms) * 0.99))]:6.2f}"
        )
    ratio = sum(times["with variants"]) / sum(times["without variants"])
    print(f"ratio with/without: {ratio:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--unrelated", type=int, default=10_000)
    parser.add_argument("--random-hashes", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--speed", type=int, default=300, metavar="N", help="photos timed (0: no timing)"
    )
    parser.add_argument("--speed-only", action="store_true")
    parser.add_argument(
        "--only",
        metavar="REGEX",
        help="only the transforms whose name matches (e.g. 'pad|crop'; 'low' for the low-quality "
        "copies); the photos, copies and tiles are made as in the full run",
    )
    parser.add_argument(
        "--low-samples",
        type=int,
        default=12,
        metavar="N",
        help="low-quality copies (quality 40-49) made of each low-contrast photo for the larger "
        "sample (up to 10 N tries; 0: none)",
    )
    parser.add_argument(
        "--dump",
        metavar="FILE",
        type=Path,
        help="also write the listed hashes and every copy and tile (JPEG bytes) to FILE (pickle), "
        "to study a decision rule without making them again",
    )
    args = parser.parse_args()
    if args.speed_only:
        speed(args.speed)
        return
    if args.quick:
        args.samples, args.unrelated, args.random_hashes = 1, 1000, 100_000
        args.speed = min(args.speed, 100)
    rng = random.Random(args.seed)
    started = time.perf_counter()

    photos = load_photos()
    listed: list[tuple[str, str, Image.Image, list[str]]] = []  # name, group, image, ref hashes
    low: list[tuple[int, Image.Image]] = []  # (row of the low-contrast listing, its image)
    for name, group, image in photos:
        hashes, quality = reference(image)
        if quality < 50:
            print(f"not listed (reference quality {quality} < 50): {name}")
            continue
        listed.append((name, group, image, hashes))
    for name, group, image, _ in list(listed):
        faint = low_contrast(image)
        if faint is not None:
            low.append((len(listed), faint))
            listed.append((f"{name} (low contrast)", group, faint, reference(faint)[0]))
    groups = [g for _, g, _, _ in listed]
    n_listed = len(listed)
    np_rng = np.random.default_rng(args.seed)
    table = np.concatenate(
        [
            np.frombuffer(bytes.fromhex("".join(h[0] for *_, h in listed)), np.uint8).reshape(
                -1, 32
            ),
            np_rng.integers(0, 256, (args.random_hashes, 32), dtype=np.uint8),
        ]
    )
    matcher = make_matcher(table)
    ref_index = build_pdq_index(table)
    print(
        f"listed: {n_listed} photos ({len(low)} of them low-contrast copies, quality 50-60) "
        f"+ {args.random_hashes:,} random hashes; {len(photos)} source photos"
    )

    contenders = ["pdqhash d<=31", *SETTINGS]
    recall: dict[str, dict[str, list[int]]] = {}
    distances: dict[str, list[int]] = {}

    dumped: dict[str, list[tuple[str, int, bytes]]] = {"copies": [], "tiles": []}

    def judge(
        label: str, data: bytes, image: Image.Image, target: int, near: str | None = None
    ) -> None:
        """Tally the copy under `label`, and under `near` too when its plain hash (nearest
        rotation) is within 31 bits of the original's."""
        if args.dump:
            dumped["copies"].append((label, target, data))
        fp = fingerprints(data)
        labels = [label]
        if near and fp.pdq is not None:
            rotations = np.frombuffer(bytes.fromhex("".join(fp.pdq.dihedral)), np.uint8)
            nearest_rotation = np.bitwise_count(rotations.reshape(-1, 32) ^ table[target]).sum(1)
            if int(nearest_rotation.min()) <= 31:
                labels.append(near)
        for one in labels:
            tally(one, data, image, target, fp)

    def tally(label: str, data: bytes, image: Image.Image, target: int, fp: Fingerprints) -> None:
        row = recall.setdefault(label, {c: [0, 0] for c in contenders})
        hashes, quality = reference(image)
        found = False
        if quality >= 50:
            q = np.frombuffer(bytes.fromhex("".join(hashes)), np.uint8).reshape(-1, 32)
            found = any(r == target for _, r, _ in ref_index.search(q, 31))
        row["pdqhash d<=31"][0] += found
        row["pdqhash d<=31"][1] += 1
        for name, settings in SETTINGS.items():
            hits = matcher.match_many([fp], settings)[1][0]
            row[name][0] += any(h.entry_id == target for h in hits)
            row[name][1] += 1
        if fp.pdq is not None:
            rotations = np.frombuffer(bytes.fromhex("".join(fp.pdq.dihedral)), np.uint8)
            plain = int(np.bitwise_count(rotations.reshape(-1, 32) ^ table[target]).sum(1).min())
            distances.setdefault(label, []).append(plain)

    for target, (_, _, image, _) in enumerate(listed):
        if any(target == row for row, _ in low):
            continue
        for label, transform in TRANSFORMS.items():
            for _ in range(args.samples):
                copy = transform(image, rng)
                if args.only and not re.search(args.only, label):
                    continue  # made all the same: the random draws stay those of a full run
                data = jpeg(copy)
                judge(label, data, Image.open(io.BytesIO(data)), target)
    fell_further = 0
    for target, faint in low:
        made = 0
        for _ in range(args.samples * 12):
            copy = low_quality_copy(faint, rng)
            data = jpeg(copy)
            decoded = Image.open(io.BytesIO(data))
            quality = reference(decoded)[1]
            if quality >= 50:
                continue  # the copy kept its quality: not this case
            if quality < 40:
                fell_further += 1  # not "just under" the gate: near-flat, not matched on purpose
                continue
            if not args.only or re.search(args.only, LOW_QUALITY):
                judge(LOW_QUALITY, data, decoded, target)
            made += 1
            if made == args.samples:
                break
    low_rng = random.Random(f"{args.seed}-low-quality")
    more = [0, 0]  # made, fell under 40
    for target, faint in low:
        made = 0
        for _ in range(10 * args.low_samples):
            if made == args.low_samples:
                break
            data, decoded = low_quality_more(faint, low_rng)
            # Vigil's quality (the same gradient sum over the 64x64 block as pdqhash's), at an
            # eighth of the time.
            quality = pdq_from_bytes(data, max_pixels=MAX_PIXELS, variants=False).quality
            if quality >= 50:
                continue
            if quality < 40:
                more[1] += 1
                continue
            made += 1
            more[0] += 1
            if not args.only or re.search(args.only, LOW_MORE):
                judge(LOW_MORE, data, decoded, target, near=LOW_NEAR)
    recall_done = time.perf_counter()

    # Unrelated tiles.
    false: dict[str, int] = dict.fromkeys(contenders, 0)
    # (group, pdqhash's 8 hashes, its quality, Vigil's fingerprints) of each tile.
    tiles: list[tuple[str, list[str], int, Fingerprints]] = []
    nearest: dict[str, list[int]] = {}
    examples: dict[str, list[str]] = {c: [] for c in contenders}
    for k in range(args.unrelated):
        name, group, image = photos[rng.randrange(len(photos))]
        w, h = image.size
        tw, th = round(w * rng.uniform(0.12, 0.4)), round(h * rng.uniform(0.12, 0.4))
        x, y = rng.randrange(0, w - tw + 1), rng.randrange(0, h - th + 1)
        tile = image.crop((x, y, x + tw, y + th))
        width = rng.randint(200, 900)
        tile = tile.resize((width, max(8, round(th * width / tw))), Image.Resampling.BILINEAR)
        data = jpeg(tile, rng.randint(70, 95))
        if args.dump:
            dumped["tiles"].append((group, k, data))

        def unrelated(row: int, group: str = group) -> bool:
            return row >= n_listed or groups[row] != group

        hashes, quality = reference(Image.open(io.BytesIO(data)))
        if quality >= 50:
            q = np.frombuffer(bytes.fromhex("".join(hashes)), np.uint8).reshape(-1, 32)
            if any(unrelated(r) for _, r, _ in ref_index.search(q, 31)):
                false["pdqhash d<=31"] += 1
        fp = fingerprints(data)
        tiles.append((group, hashes, quality, fp))
        if fp.pdq is not None:
            # How near an unrelated tile comes to a listed photo: the margin under the rules.
            others = np.flatnonzero([unrelated(r) for r in range(n_listed)])
            for kind, hexes in (
                ("plain (8 rotations)", fp.pdq.dihedral if fp.pdq.quality >= 50 else ()),
                ("variants", [h for _, h, q in fp.pdq.variants if q >= 50]),
            ):
                if hexes:
                    qs = np.frombuffer(bytes.fromhex("".join(hexes)), np.uint8).reshape(-1, 32)
                    d = np.bitwise_count(qs[:, None, :] ^ table[others][None, :, :]).sum(2)
                    nearest.setdefault(kind, []).append(int(d.min()))
            for kind, margin in agreement_margins(fp, table[others]).items():
                nearest.setdefault(f"{kind}: bits to loosen", []).append(margin)
        for label, settings in SETTINGS.items():
            hits = matcher.match_many([fp], settings)[1][0]
            bad = [hit for hit in hits if unrelated(hit.entry_id)]
            if bad:
                false[label] += 1
                if len(examples[label]) < 3:
                    hit = bad[0]
                    examples[label].append(
                        f"tile {k} of {name} ~ {listed[hit.entry_id][0] if hit.entry_id < n_listed else 'random'}"
                        f" d={hit.distance} {hit.transform} q={fp.pdq.quality if fp.pdq else None}"
                    )
    tile_list = tile_list_false_matches(tiles, contenders)
    done = time.perf_counter()
    if args.dump:
        import pickle

        with args.dump.open("wb") as out:
            pickle.dump({"table": table[:n_listed], "groups": groups, **dumped}, out)

    print(
        f"\nrecall per transform ({args.samples} samples per photo; {recall_done - started:.0f} s)"
    )
    head = f"{'transform':30}" + "".join(f"{c:>22}" for c in contenders)
    print(head)
    totals = {c: [0, 0] for c in contenders}
    for label, row in recall.items():
        cells = []
        for c in contenders:
            got, n = row[c]
            if label != LOW_NEAR:  # a part of the row above it
                totals[c][0] += got
                totals[c][1] += n
            cells.append(f"{100 * got / n:>5.1f}% ({got:>3}/{n:>3})".rjust(22))
        print(f"{label:30}" + "".join(cells))
    print(
        f"{'all':30}"
        + "".join(f"{100 * g / n:>5.1f}% ({g:>3}/{n:>3})".rjust(22) for g, n in totals.values())
    )
    print(f"\nfalse matches among {args.unrelated:,} unrelated tiles ({done - recall_done:.0f} s)")
    for c in contenders:
        print(f"{c:30}{false[c]:>8}   {'; '.join(examples.get(c, []))}")
    kept = sum(1 for _, _, q, _ in tiles if q >= 50)
    flat = sum(1 for _, _, q, _ in tiles if q < 30)
    print(
        f"\nthe tiles as a list of real-photo hashes (pdqhash's hash of each: {kept:,} of "
        f"quality >= 50, {len(tiles) - kept:,} under it, {flat:,} of those under 30): tiles that "
        "match a tile of another group"
    )
    print(f"{'':30}{'entries q >= 50':>18}{'all entries':>14}   e.g.")
    for c in contenders:
        (good, eg_good), (every, eg_every) = tile_list[c]
        print(f"{c:30}{good:>18}{every:>14}   {'; '.join((eg_good or eg_every)[:2])}")
    print("\nnearest distance of an unrelated tile to a listed photo (quality >= 50 hashes):")
    for kind, ds in nearest.items():
        a = np.sort(ds)
        print(
            f"{kind:36} min {a[0]:>4}  0.1% {a[int(len(a) * 0.001)]:>4}  1% "
            f"{a[int(len(a) * 0.01)]:>4}  median {int(np.median(a)):>4}  ({len(a):,} tiles)"
        )
    print(f"\nlow-quality copies that fell under quality 40 (left out): {fell_further}")
    print(
        f"the larger sample ({args.low_samples} a low-contrast photo at most): {more[0]} made, "
        f"{more[1]} tries fell under quality 40 (left out)"
    )
    print("\nplain PDQ distance (nearest rotation) of each copy to its original (median, p90):")
    for label, ds in distances.items():
        print(f"{label:30}{np.median(ds):>6.0f}{np.percentile(ds, 90):>6.0f}")
    print(
        "\nsettings: "
        + "; ".join(
            f"{k}: "
            + ", ".join(
                f"{f.name}={getattr(v, f.name)}"
                for f in dataclasses.fields(v)
                if f.name.startswith("pdq")
            )
            for k, v in SETTINGS.items()
        )
    )

    if args.speed:
        speed(args.speed)


if __name__ == "__main__":
    main()
