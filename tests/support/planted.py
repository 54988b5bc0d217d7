"""A tree of benign photos with exact and altered copies of "known" ones, and their hash list.

Known photos come from scikit-image; every alteration is made here, at test time.
"""

from __future__ import annotations

import io
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import skimage.data
from PIL import Image, ImageDraw, ImageOps

from vigil.fingerprint.crypto import digest_bytes
from vigil.fingerprint.pdq import pdq_from_bytes
from vigil.hashsets.entry import Entry
from vigil.hashsets.export import write_vics

SKIMAGE = Path(skimage.data.__file__).parent
KNOWN = {"astronaut": "1", "coffee": "2", "chelsea": "1", "rocket": "3"}
UNRELATED = [
    "camera",
    "moon",
    "coins",
    "horse",
    "hubble_deep_field",
    "retina",
    "motorcycle_left",
    "brick",
]


def photo(name: str) -> Image.Image:
    path = next(SKIMAGE.glob(f"{name}.*"))
    return Image.open(path).convert("RGB")


def encode(img: Image.Image, fmt: str = "JPEG", **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


@dataclass(frozen=True)
class Planted:
    """A copy in the tree: file (relative), member inside it or None, original, expected kind."""

    rel: str
    member: str | None
    of: str
    how: str
    exact: bool
    transform: str | None = None


@dataclass
class Tree:
    root: Path
    hashlist: Path
    originals: dict[str, bytes]
    planted: list[Planted]
    unrelated: list[str]


def build(base: Path) -> Tree:
    """Write the originals' VICS list and a tree of copies and unrelated photos under `base`."""
    originals = {n: encode(photo(n), quality=92) for n in KNOWN}
    entries = []
    for i, (name, cat) in enumerate(KNOWN.items()):
        md5, sha1, sha256 = digest_bytes(originals[name])
        pdq = pdq_from_bytes(originals[name], max_pixels=10**8).hash
        entries.append(
            Entry(
                {"md5": md5, "sha1": sha1, "sha256": sha256, "pdq": pdq},
                id=str(500 + i),
                category=cat,
            )
        )
    hashlist = base / "known.json"
    with open(hashlist, "w") as f:
        write_vics(entries, f)

    root = base / "tree"
    planted: list[Planted] = []

    def put(rel: str, data: bytes) -> None:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)

    a, c, ch, r = (photo(n) for n in KNOWN)
    put("docs/report.txt", originals["astronaut"])
    planted.append(Planted("docs/report.txt", None, "astronaut", "renamed, wrong extension", True))
    tgz = io.BytesIO()
    with tarfile.open(fileobj=tgz, mode="w:gz") as t:
        info = tarfile.TarInfo("deep/x.jpg")
        info.size = len(originals["coffee"])
        t.addfile(info, io.BytesIO(originals["coffee"]))
    z = io.BytesIO()
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("inner.tar.gz", tgz.getvalue())
        zf.writestr("notes.txt", "hello")
    put("archive/outer.zip", z.getvalue())
    planted.append(
        Planted(
            "archive/outer.zip", "inner.tar.gz/deep/x.jpg", "coffee", "zip/tar.gz nesting", True
        )
    )
    put("alt/chelsea-q50.jpg", encode(ch, quality=50))
    planted.append(
        Planted("alt/chelsea-q50.jpg", None, "chelsea", "re-encoded q50", False, "original")
    )
    put(
        "alt/rocket-half.png",
        encode(r.resize((r.width // 2, r.height // 2), Image.Resampling.LANCZOS), "PNG"),
    )
    planted.append(
        Planted("alt/rocket-half.png", None, "rocket", "resized 50%, PNG", False, "original")
    )
    put("alt/astronaut-mirror.jpg", encode(ImageOps.mirror(a), quality=90))
    planted.append(
        Planted("alt/astronaut-mirror.jpg", None, "astronaut", "mirrored", False, "flipy")
    )
    put("alt/coffee-rot90.webp", encode(c.transpose(Image.Transpose.ROTATE_90), "WEBP", quality=85))
    planted.append(
        Planted("alt/coffee-rot90.webp", None, "coffee", "rotated 90", False, "rotate270")
    )
    put("alt/chelsea-grey.bmp", encode(ImageOps.grayscale(ch), "BMP"))
    planted.append(
        Planted("alt/chelsea-grey.bmp", None, "chelsea", "greyscale BMP", False, "original")
    )
    wm = a.copy()
    ImageDraw.Draw(wm).text((20, 20), "(c) somebody 2026", fill=(255, 255, 255))
    put("alt/astronaut-watermark.png", encode(wm, "PNG"))
    planted.append(
        Planted("alt/astronaut-watermark.png", None, "astronaut", "watermarked", False, "original")
    )
    for n in UNRELATED:
        put(f"other/{n}.jpg", encode(photo(n), quality=90))
    put("other/readme.md", b"# nothing here\n")
    return Tree(root, hashlist, originals, planted, [f"other/{n}.jpg" for n in UNRELATED])
