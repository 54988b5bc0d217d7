"""`vigil demo`: a known-image hunt on benign photos, offline, in under a minute.

It builds a hash list (VICS 2.0) from photos shipped inside scikit-image, plants exact and
altered copies of them among unrelated photos, imports the list, scans, and reports.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from vigil.cli.context import console as _console
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


@dataclass
class Planted:
    """A file placed in the demo tree and what it is a copy of."""

    where: str
    of: str
    how: str


def _skimage_dir() -> Path:
    try:
        import skimage.data
    except ImportError:
        raise VigilError("the demo needs scikit-image: pip install 'vigil[demo]'") from None
    return Path(skimage.data.__file__).parent


def _jpeg(img: Image.Image, quality: int = 92) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def build(root: Path) -> tuple[Path, Path, list[Planted]]:
    """Write the demo list and tree under root; return (list file, scan tree, what was planted)."""
    from PIL import Image, ImageOps

    from vigil.fingerprint.crypto import digest_bytes
    from vigil.fingerprint.pdq import pdq_from_bytes
    from vigil.hashsets.entry import Entry
    from vigil.hashsets.export import write_vics
    from vigil.kinds import MD5, PDQ, SHA1, SHA256

    src = _skimage_dir()
    originals = {name: _jpeg(Image.open(src / name)) for name, _ in KNOWN}
    entries = []
    for i, (name, category) in enumerate(KNOWN, start=1):
        data = originals[name]
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
    list_file = root / "demo-hashlist.vics.json"
    with open(list_file, "w", encoding="utf-8") as f:
        write_vics(entries, f)

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
        originals["astronaut.png"],
        "astronaut.png",
        "exact copy, renamed, wrong extension",
    )
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode="w:gz") as tar:
        info = tarfile.TarInfo("photos/IMG_2231.jpg")
        info.size = len(originals["coffee.png"])
        tar.addfile(info, io.BytesIO(originals["coffee.png"]))
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("backup/old-photos.tar.gz", inner.getvalue())
        z.writestr("backup/readme.txt", "nothing to see\n")
    put(
        "Users/alex/Downloads/backup.zip",
        outer.getvalue(),
        "coffee.png",
        "exact copy inside a tar.gz inside a zip",
    )
    put(
        "Users/alex/Pictures/cat.jpg",
        _jpeg(chelsea, quality=55),
        "chelsea.png",
        "re-encoded at JPEG quality 55",
    )
    small = rocket.resize((rocket.width // 2, rocket.height // 2), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    small.save(buf, "PNG")
    put(
        "Users/alex/Pictures/launch-small.png",
        buf.getvalue(),
        "rocket.jpg",
        "resized to half, saved as PNG",
    )
    put(
        "Users/sam/Desktop/mirror.jpg",
        _jpeg(ImageOps.mirror(astronaut), 85),
        "astronaut.png",
        "mirrored, re-encoded",
    )
    put(
        "Users/sam/Desktop/rotated.webp",
        _webp(coffee.rotate(90, expand=True)),
        "coffee.png",
        "rotated 90 degrees, WebP",
    )
    for name in UNRELATED:
        put(f"Users/sam/Photos/{Path(name).stem}.jpg", _jpeg(Image.open(src / name)), "", "")
    put("Users/sam/notes.txt", b"shopping list\n", "", "")
    return list_file, tree, planted


def _webp(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "WEBP", quality=80)
    return buf.getvalue()


@click.command("demo")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to build the demo (default: a new temporary directory, kept).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the matches as JSON lines.")
def demo(directory: Path | None, as_json: bool) -> None:
    """Build a demo hash list from benign photos, plant altered copies, scan, and report."""
    from vigil.engine import Engine
    from vigil.report.html import write_html_report
    from vigil.report.terminal import render_summary
    from vigil.scan.cache import FingerprintCache
    from vigil.scan.scanner import CollectingSink, Scanner, ScanOptions

    root = directory or Path(tempfile.mkdtemp(prefix="vigil-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    console = _console()
    list_file, tree, planted = build(root)
    home = root / "home"
    home.mkdir(exist_ok=True)
    engine = Engine.open(home)
    catalog = engine.catalog
    assert catalog is not None
    result = catalog.import_file(list_file, name="demo-list")
    console.print(
        f"demo hash list: {list_file} ({result.hashset.entries} entries, VICS 2.0)", markup=False
    )
    console.print(
        f"planted {len(planted)} copies among {sum(1 for _ in tree.rglob('*') if _.is_file())} files in {tree}:",
        markup=False,
    )
    for p in planted:
        console.print(f"  {p.where:<42} {p.how} of {p.of}", markup=False)
    matcher = engine.matcher()
    sink = CollectingSink()
    cache = FingerprintCache(home / "cache.sqlite", engine_version="demo")
    summary = Scanner([matcher], ScanOptions(), cache).run([str(tree)], sink)
    cache.close()
    report = root / "report.html"
    write_html_report(
        report,
        summary,
        sink.matches,
        sink.errors,
        [s.to_dict() for s in catalog.sets()],
        skipped=sink.skipped_items,
    )
    if as_json:
        for m in sink.matches:
            click.echo(json.dumps(m.to_dict()))
    render_summary(console, summary, sink.matches, sink.errors)
    found = {(m.path, m.member) for m in sink.matches}
    found_paths = {os.path.relpath(p, tree) for p, _ in found}
    missed = [p for p in planted if p.where not in found_paths]
    console.print(
        f"found {len(found_paths)} of {len(planted)} planted copies; missed: {', '.join(p.where for p in missed) or 'none'}",
        markup=False,
    )
    console.print(f"HTML report: {report}", markup=False)
    if missed or sink.errors:
        raise SystemExit(2)
