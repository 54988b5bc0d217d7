"""Valid seeds for each target, built at run time (nothing downloaded): the example hash lists
from ../shared/formats, and small archives, images and videos made here.

`seeds(target)` is a name -> bytes dict; the campaign driver writes it into a fresh corpus and
the Hypothesis properties mutate it.
"""

from __future__ import annotations

import bz2
import functools
import gzip
import io
import lzma
import os
import random
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from fuzz.targets import hashlist_input

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "tests") not in sys.path:  # the archive builders live with the tests
    sys.path.insert(0, str(ROOT / "tests"))

from support import archives as build  # noqa: E402


def shared_dir() -> Path | None:
    """../shared beside the repository (or beside the folder of worktrees), or $VIGIL_SHARED."""
    candidates = [os.environ.get("VIGIL_SHARED"), ROOT.parent / "shared"]
    candidates.append(ROOT.parent.parent / "shared")
    for candidate in candidates:
        if candidate and (Path(candidate) / "formats").is_dir():
            return Path(candidate)
    return None


# Which format each example list is, read as named and as detected.
_EXAMPLES = {
    "vics-1.3-media.json": "vics",
    "vics-2.0-cases.json": "vics",
    "ncmec-entries-example.xml": "ncmec",
    "example-hashes.csv": "csv",
    "example.md5sum.txt": "md5sum",
    "example.sha1sum.txt": "sha1sum",
    "example.pdq.txt": "pdq",
    "NSRLFile-example.txt": "nsrl",
    "example.hsh": "hashkeeper",
}

_PDQ = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
_SHA256 = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
_MD5 = "5f4dcc3b5aa765d61d8327deb882cf99"
_SHA1 = "5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8"


@functools.cache
def hashlist_files() -> dict[str, tuple[str, bytes]]:
    """name -> (format, file content) of valid lists, the shared examples and a few made here."""
    out: dict[str, tuple[str, bytes]] = {}
    shared = shared_dir()
    if shared is not None:
        for name, fmt in _EXAMPLES.items():
            path = shared / "formats" / name
            if path.is_file():
                out[name] = (fmt, path.read_bytes())
    out["sha256sum"] = ("sha256sum", f"{_SHA256}  a.jpg\n{_SHA256} *b.jpg\n".encode())
    out["typed-md5"] = ("md5sum", f"MD5\n{_MD5}\n{_MD5.upper()}\n".encode())
    out["bsd-tags"] = ("sha1sum", f"SHA1 (a.jpg) = {_SHA1}\nMD5 (b) = {_MD5}\n".encode())
    out["vpdq"] = ("vpdq", f"0,100,{_PDQ},0.000\n1,{_PDQ},98,1.000\n".encode())
    out["vpdq-csv"] = (
        "vpdq-csv",
        (
            "video_id,frame,quality,pdq,timestamp,category,md5\n"
            f"clip-1,0,100,{_PDQ},0.000,1,{_MD5}\nclip-1,30,98,{_PDQ},1.000,1,{_MD5}\n"
        ).encode(),
    )
    csv_text = f"md5,sha1,sha256,pdq,id,category,note\n{_MD5},{_SHA1},{_SHA256},{_PDQ},7,1,x\n"
    out["csv-semicolon"] = ("csv", csv_text.replace(",", ";").encode())
    out["csv-utf16"] = ("csv", "\ufeff".encode("utf-16-le") + csv_text.encode("utf-16-le"))
    out["csv-bom-crlf"] = ("csv", b"\xef\xbb\xbf" + csv_text.replace("\n", "\r\n").encode())
    out["csv.gz"] = ("csv", gzip.compress(csv_text.encode()))
    out["csv.bz2"] = ("csv", bz2.compress(csv_text.encode()))
    out["csv.xz"] = ("csv", lzma.compress(csv_text.encode()))
    return out


def hashlist_seeds() -> dict[str, bytes]:
    """Inputs of the `hashlist` target: each list read as detected and as its own format."""
    out: dict[str, bytes] = {}
    for name, (fmt, content) in hashlist_files().items():
        out[f"{name}.auto"] = hashlist_input("auto", content)
        out[f"{name}.{fmt}"] = hashlist_input(fmt, content)
    return out


def _picture(seed: int, size: tuple[int, int] = (48, 40)) -> Image.Image:
    """A small picture with structure (gradients and noise), different for every seed."""
    rnd = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    base = (x * (3 + seed) + y * (5 + 2 * seed)) % 256
    rgb = np.stack([base, (base * 7) % 256, 255 - base], axis=-1)
    rgb = (rgb + rnd.integers(0, 40, rgb.shape)) % 256
    return Image.fromarray(rgb.astype(np.uint8), "RGB")


def _encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


@functools.cache
def image_seeds() -> dict[str, bytes]:
    """Small JPEG, PNG, GIF, WebP, TIFF, BMP (and HEIF/AVIF where pillow-heif can write them)."""
    picture = _picture(1)
    out = {
        "jpeg": _encoded(picture, "JPEG", quality=80),
        "jpeg-progressive": _encoded(picture, "JPEG", progressive=True),
        "jpeg-grey": _encoded(picture.convert("L"), "JPEG"),
        "jpeg-cmyk": _encoded(picture.convert("CMYK"), "JPEG"),
        "png": _encoded(picture, "PNG"),
        "png-palette": _encoded(picture.convert("P"), "PNG"),
        "png-16bit": _encoded(picture.convert("I;16"), "PNG"),
        "png-rgba": _encoded(picture.convert("RGBA"), "PNG"),
        "gif": _encoded(picture, "GIF"),
        "webp": _encoded(picture, "WEBP", quality=80),
        "webp-lossless": _encoded(picture, "WEBP", lossless=True),
        "tiff": _encoded(picture, "TIFF"),
        "tiff-deflate": _encoded(picture, "TIFF", compression="tiff_adobe_deflate"),
        "tiff-float": _encoded(picture.convert("F"), "TIFF"),
        "bmp": _encoded(picture, "BMP"),
        "bmp-palette": _encoded(picture.convert("P"), "BMP"),
    }
    try:
        import pillow_heif

        pillow_heif.register_heif_opener()
        out["heif"] = _encoded(picture, "HEIF", quality=60)
        out["avif"] = _encoded(picture, "AVIF", quality=60)
    except Exception:  # noqa: BLE001 - no encoder in this build: fewer seeds, nothing else
        pass
    return out


@functools.cache
def archive_seeds() -> dict[str, bytes]:
    """zip (deflated, stored, streamed, encrypted, office-like), tar (plain, gz, bz2, xz), 7z,
    single-file gz/bz2/xz and nested archives, holding small images and text."""
    photo = build.image_bytes(3, "PNG", (16, 12))
    jpeg = build.image_bytes(4, "JPEG", (16, 12))
    members = {"a.png": photo, "dir/b.jpg": jpeg, "c.txt": b"hello\n" * 20}
    inner_tar = build.make_tar({"x.png": photo, "y.txt": b"y" * 300})
    out = {
        "zip": build.make_zip(members),
        "zip-stored": build.make_zip(members, stored=True),
        "zip-streamed": build.make_zip(members, streamed=True),
        "zip-encrypted": build.make_encrypted_zip({"a.png": photo}),
        "zip-aes": build.make_encrypted_zip({"a.png": photo}, "aes256"),
        "docx-like": build.make_zip({"[Content_Types].xml": b"<x/>", "word/media/i.png": photo}),
        "tar": build.make_tar(members, extras=True),
        "tar.gz": build.make_tar(members, "gz"),
        "tar.bz2": build.make_tar(members, "bz2"),
        "tar.xz": build.make_tar(members, "xz"),
        "7z": build.make_7z(members),
        "gz": build.compress(photo, "gz"),
        "bz2": build.compress(jpeg, "bz2"),
        "xz": build.compress(b"text " * 100, "xz"),
        "zip-in-zip-in-zip": build.nested_zips(3, photo),
        "tar-in-zip": build.make_zip({"inner.tar": inner_tar, "p.png": photo}),
        "7z-in-zip": build.make_zip({"inner.7z": build.make_7z({"q.png": photo})}),
        "tgz-in-7z": build.make_7z({"in.tar.gz": build.compress(inner_tar, "gz")}),
        "gz-in-tar": build.make_tar({"x.png.gz": build.compress(photo, "gz")}),
    }
    return out


def _frames(count: int, size: tuple[int, int]) -> list[np.ndarray]:
    return [np.asarray(_picture(seed, size)) for seed in range(count)]


def _video_bytes(fmt: str, codec: str, count: int = 6, size: tuple[int, int] = (48, 32)) -> bytes:
    import av

    out = io.BytesIO()
    with av.open(out, "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=Fraction(5))
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for rgb in _frames(count, size):
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()


@functools.cache
def video_seeds() -> dict[str, bytes]:
    """A few frames of video in the common containers and codecs (those this FFmpeg encodes)."""
    out: dict[str, bytes] = {}
    for name, fmt, codec in (
        ("mp4-h264", "mp4", "h264"),
        ("mp4-mpeg4", "mp4", "mpeg4"),
        ("mov-mjpeg", "mov", "mjpeg"),
        ("mkv-h264", "matroska", "h264"),
        ("webm-vp9", "webm", "libvpx-vp9"),
        ("avi-mpeg4", "avi", "mpeg4"),
        ("ts-mpeg2", "mpegts", "mpeg2video"),
    ):
        try:
            out[name] = _video_bytes(fmt, codec)
        except Exception:  # noqa: BLE001 - an encoder this FFmpeg build lacks
            continue
    return out


@functools.cache
def animation_seeds() -> dict[str, bytes]:
    """Animated GIF and WebP of a few frames (and a still GIF: not an animation)."""
    frames = [_picture(seed, (40, 32)) for seed in range(4)]
    out = {}
    for name, fmt, options in (
        ("gif", "GIF", {"duration": 100, "loop": 0}),
        ("gif-disposal", "GIF", {"duration": [50, 0, 200, 100], "disposal": 2}),
        ("webp", "WEBP", {"duration": 100, "quality": 70}),
        ("webp-lossless", "WEBP", {"duration": 120, "lossless": True}),
    ):
        stream = io.BytesIO()
        frames[0].save(stream, format=fmt, save_all=True, append_images=frames[1:], **options)
        out[name] = stream.getvalue()
    out["gif-still"] = _encoded(frames[0], "GIF")
    return out


SEEDS = {
    "hashlist": hashlist_seeds,
    "archive": archive_seeds,
    "image": image_seeds,
    "video": video_seeds,
    "video-file": video_seeds,
    "animation": animation_seeds,
}


def seeds(target: str) -> dict[str, bytes]:
    """The valid seeds of `target`."""
    return SEEDS[target]()


def random_seed(target: str, rnd: random.Random) -> bytes:
    """One seed of `target`, picked at random."""
    found = seeds(target)
    return found[rnd.choice(sorted(found))]
