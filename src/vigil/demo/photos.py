"""The demo's benign photos (shipped inside scikit-image): a VICS 2.0 list of "known" ones, and
exact and altered copies of them made at run time."""

from __future__ import annotations

import io
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vigil.errors import VigilError

if TYPE_CHECKING:
    from PIL import Image

# (scikit-image file, category in the demo list)
KNOWN = [("astronaut.png", "1"), ("coffee.png", "2"), ("chelsea.png", "1"), ("rocket.jpg", "3")]
UNRELATED = [
    "camera.png",
    "moon.png",
    "coins.png",
    "horse.png",
    "page.png",
    "text.png",
    "hubble_deep_field.jpg",
    "retina.jpg",
    "motorcycle_left.png",
    "brick.png",
]
LIST_NAME = "demo-list"


@dataclass
class Planted:
    """A file placed in a demo tree and what it is a copy of (`of` empty: unrelated)."""

    where: str
    of: str
    how: str
    member: str | None = None


def skimage_dir() -> Path:
    """Where scikit-image keeps its sample photos."""
    try:
        import skimage.data
    except ImportError:
        raise VigilError("the demo needs scikit-image: pip install 'vigil[demo]'") from None
    return Path(skimage.data.__file__).parent


def jpeg(img: Image.Image, quality: int = 92) -> bytes:
    """The image as JPEG bytes."""
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def webp(img: Image.Image) -> bytes:
    """The image as lossy WebP bytes."""
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "WEBP", quality=80)
    return buf.getvalue()


def png(img: Image.Image) -> bytes:
    """The image as PNG bytes."""
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def originals() -> dict[str, bytes]:
    """The known photos as the list knows them (JPEG at quality 92)."""
    from PIL import Image

    src = skimage_dir()
    return {name: jpeg(Image.open(src / name)) for name, _ in KNOWN}


def write_list(path: Path, known: dict[str, bytes]) -> int:
    """Write the demo's VICS 2.0 list of the known photos (MD5, SHA-1, SHA-256, PDQ each);
    the number of entries."""
    from vigil.fingerprint.crypto import digest_bytes
    from vigil.fingerprint.pdq import pdq_from_bytes
    from vigil.hashsets.entry import Entry
    from vigil.hashsets.export import write_vics
    from vigil.kinds import MD5, PDQ, SHA1, SHA256

    entries = []
    for i, (name, category) in enumerate(KNOWN, start=1):
        data = known[name]
        md5, sha1, sha256 = digest_bytes(data)
        pdq = pdq_from_bytes(data, max_pixels=50_000_000)
        entries.append(
            Entry(
                hashes={MD5.name: md5, SHA1.name: sha1, SHA256.name: sha256, PDQ.name: pdq.hash},
                id=str(1000 + i),
                category=category,
                meta={"Comments": f"demo: scikit-image {name}"},
            )
        )
    with open(path, "w", encoding="utf-8") as f:
        write_vics(entries, f)
    return len(entries)


def tar_of(members: dict[str, bytes], gzip: bool = False) -> bytes:
    """A tar archive (a tar.gz with `gzip`) holding `members`."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gzip else "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def zip_of(members: dict[str, bytes]) -> bytes:
    """A zip archive holding `members`."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def system_files(known: dict[str, bytes]) -> list[tuple[Planted, bytes]]:
    """What the whole-system demo drops into the agent's watched folder: exact and altered
    copies of the known photos (one inside a zip inside a tar) and unrelated photos."""
    from PIL import Image, ImageOps

    src = skimage_dir()
    astronaut, coffee, chelsea, rocket = (Image.open(src / n) for n, _ in KNOWN)
    small = rocket.resize((rocket.width // 2, rocket.height // 2), Image.Resampling.LANCZOS)
    photos = zip_of({"IMG_2231.jpg": known["coffee.png"], "readme.txt": b"holiday 2019\n"})
    files = [
        (
            Planted("Downloads/tax-2025.pdf.bak", "astronaut.png", "exact copy, renamed"),
            known["astronaut.png"],
        ),
        (
            Planted(
                "Downloads/backup.tar",
                "coffee.png",
                "exact copy inside a zip inside a tar",
                "old/photos.zip/IMG_2231.jpg",
            ),
            tar_of({"old/photos.zip": photos, "old/notes.txt": b"nothing here\n"}),
        ),
        (
            Planted("Pictures/cat.jpg", "chelsea.png", "re-encoded at JPEG quality 55"),
            jpeg(chelsea, quality=55),
        ),
        (
            Planted("Pictures/launch-small.png", "rocket.jpg", "resized to half, saved as PNG"),
            png(small),
        ),
        (
            Planted("Desktop/mirror.jpg", "astronaut.png", "mirrored, re-encoded"),
            jpeg(ImageOps.mirror(astronaut), 85),
        ),
        (
            Planted("Desktop/rotated.webp", "coffee.png", "rotated 90 degrees, WebP"),
            webp(coffee.rotate(90, expand=True)),
        ),
    ]
    for name in UNRELATED:
        files.append(
            (
                Planted(f"Photos/{Path(name).stem}.jpg", "", "unrelated"),
                jpeg(Image.open(src / name)),
            )
        )
    files.append((Planted("Documents/notes.txt", "", "unrelated"), b"shopping list\n"))
    return files


def engine_tree(root: Path) -> tuple[Path, Path, list[Planted]]:
    """Write the engine demo's list and tree under root; return (list file, tree, planted)."""
    from PIL import Image, ImageOps

    src = skimage_dir()
    known = originals()
    list_file = root / "demo-hashlist.vics.json"
    write_list(list_file, known)

    tree = root / "disk"
    planted: list[Planted] = []

    def put(rel: str, data: bytes, of: str, how: str) -> None:
        p = tree / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        if of:
            planted.append(Planted(rel, of, how))

    astronaut, coffee, chelsea, rocket = (Image.open(src / n) for n, _ in KNOWN)
    put(
        "Users/alex/Documents/tax-2025.pdf.bak",
        known["astronaut.png"],
        "astronaut.png",
        "exact copy, renamed, wrong extension",
    )
    inner = tar_of({"photos/IMG_2231.jpg": known["coffee.png"]}, gzip=True)
    put(
        "Users/alex/Downloads/backup.zip",
        zip_of({"backup/old-photos.tar.gz": inner, "backup/readme.txt": b"nothing to see\n"}),
        "coffee.png",
        "exact copy inside a tar.gz inside a zip",
    )
    put(
        "Users/alex/Pictures/cat.jpg",
        jpeg(chelsea, quality=55),
        "chelsea.png",
        "re-encoded at JPEG quality 55",
    )
    small = rocket.resize((rocket.width // 2, rocket.height // 2), Image.Resampling.LANCZOS)
    put(
        "Users/alex/Pictures/launch-small.png",
        png(small),
        "rocket.jpg",
        "resized to half, saved as PNG",
    )
    put(
        "Users/sam/Desktop/mirror.jpg",
        jpeg(ImageOps.mirror(astronaut), 85),
        "astronaut.png",
        "mirrored, re-encoded",
    )
    put(
        "Users/sam/Desktop/rotated.webp",
        webp(coffee.rotate(90, expand=True)),
        "coffee.png",
        "rotated 90 degrees, WebP",
    )
    for name in UNRELATED:
        put(f"Users/sam/Photos/{Path(name).stem}.jpg", jpeg(Image.open(src / name)), "", "")
    put("Users/sam/notes.txt", b"shopping list\n", "", "")
    return list_file, tree, planted
