"""Media types from content: libmagic's answers, with plain text named without libmagic's database."""

from __future__ import annotations

import io
import json
import random
import struct
import zipfile
from pathlib import Path

import magic
import pytest
from PIL import Image
from support.archives import compress, make_7z, make_tar, make_zip
from support.videos import CONTAINERS, slideshow_frames, write

from vigil.fingerprint import mediatype
from vigil.fingerprint.mediatype import is_archive, is_image, sniff
from vigil.limits import Limits
from vigil.scan.worker import fingerprint_file


def libmagic(data: bytes) -> str:
    """libmagic's whole answer, under the names Vigil uses: what `sniff` gave before its text path."""
    mime = magic.Magic(mime=True).from_buffer(data[: mediatype.SNIFF_BYTES])
    return mediatype._ALIASES.get(mime, mime)


def encoded(fmt: str, mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    im = Image.new(mode, (40, 30))
    for x in range(40):
        im.putpixel((x, x % 30), 255 if mode in ("1", "L") else (255, x * 6, 0))
    im.save(buf, fmt)
    return buf.getvalue()


XPM = b"""/* XPM */
static char *dot[] = {
"4 4 2 1",
"  c #000000",
". c #ffffff",
" .. ",
".  .",
".  .",
" .. "};
"""
PLAIN_PBM = b"P1\n4 4\n0 1 1 0\n1 0 0 1\n1 0 0 1\n0 1 1 0\n"
PLAIN_PPM = b"P3\n2 2\n255\n255 0 0  0 255 0\n0 0 255  255 255 255\n"
ASCII_PDF = (
    b"%PDF-1.1\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
    b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n"
    b"trailer << /Root 1 0 R >>\n%%EOF\n"
)
POSTSCRIPT = (
    b"%!PS-Adobe-3.0\n%%BoundingBox: 0 0 10 10\nnewpath 0 0 moveto 10 10 lineto stroke\nshowpage\n"
)
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="5" height="5"/></svg>\n'
XML = b'<?xml version="1.0" encoding="UTF-8"?>\n<config><item name="a">1</item></config>\n'
RTF = b"{\\rtf1\\ansi{\\fonttbl\\f0\\fswiss Helvetica;}\\f0\\pard Hello.\\par}\n"

# Items whose type decides what is done with them, and documents: exactly libmagic's answer.
KEPT = {
    "jpeg": encoded("JPEG"),
    "png": encoded("PNG"),
    "gif": encoded("GIF"),
    "bmp": encoded("BMP"),
    "tiff": encoded("TIFF"),
    "webp": encoded("WEBP"),
    "binary ppm": encoded("PPM"),
    "xpm": XPM,
    "plain pbm": PLAIN_PBM,
    "plain ppm": PLAIN_PPM,
    "zip": make_zip({"a.txt": b"hello"}),
    "tar": make_tar({"a.txt": b"hello"}),
    "gzip": compress(b"hello world " * 100, "gz"),
    "bzip2": compress(b"hello world " * 100, "bz2"),
    "xz": compress(b"hello world " * 100, "xz"),
    "7z": make_7z({"a.txt": b"hello"}),
    "ascii pdf": ASCII_PDF,
    "postscript": POSTSCRIPT,
    "svg": SVG,
    "xml": XML,
    "rtf": RTF,
}

# Text: plain text, whatever libmagic's database would call its subtype.
TEXT = {
    "python": b"#!/usr/bin/env python3\nimport os\n\n\ndef main():\n    print(os.getcwd())\n",
    "shell": b"#!/bin/sh\nset -e\necho hello\n",
    "html": b"<!DOCTYPE html>\n<html><head><title>x</title></head><body><p>hi</p></body></html>\n",
    "c": b'#include <stdio.h>\n\nint main(void)\n{\n    printf("hi\\n");\n    return 0;\n}\n',
    "prose": b"Minutes of the meeting.\nEveryone agreed.\n" * 20,
    "utf-8 prose": "Grüße aus Köln und Genf. Ça va.\n".encode() * 10,
}


@pytest.mark.parametrize("name", list(KEPT))
def test_types_that_matter_are_libmagics(name: str) -> None:
    data = KEPT[name]
    assert sniff(data) == libmagic(data)
    assert sniff(data) not in ("text/plain", "application/octet-stream"), libmagic(data)


@pytest.mark.parametrize(
    "name",
    ["jpeg", "png", "gif", "bmp", "tiff", "webp", "binary ppm", "xpm", "plain pbm", "plain ppm"],
)
def test_images_in_any_encoding_are_images(name: str) -> None:
    assert is_image(sniff(KEPT[name]))


@pytest.mark.parametrize("name", ["zip", "tar", "gzip", "bzip2", "xz", "7z"])
def test_archives_are_archives(name: str) -> None:
    assert is_archive(sniff(KEPT[name]))


@pytest.mark.parametrize("name", list(TEXT))
def test_text_is_plain_text(name: str) -> None:
    assert sniff(TEXT[name]) == "text/plain"


def test_utf16_text_is_libmagics_text() -> None:
    data = "plain words, in UTF-16\n".encode("utf-16")  # NUL bytes: the whole database decides
    assert sniff(data) == libmagic(data) == "text/plain"


def test_json_and_csv_keep_their_types() -> None:
    assert sniff(json.dumps({"a": [1, 2, {"b": None}]}).encode()) == "application/json"
    assert sniff(b"name,size,md5\na,1,x\nb,2,y\nc,3,z\n") == "text/csv"


def test_plain_text_never_reaches_the_pattern_database(monkeypatch: pytest.MonkeyPatch) -> None:
    class Refuse:
        def from_buffer(self, data: bytes) -> str:
            raise AssertionError("the whole database was consulted")

    monkeypatch.setattr(mediatype, "_magic", Refuse)
    for data in TEXT.values():
        assert sniff(data) == "text/plain"
    with pytest.raises(AssertionError):
        sniff(XPM)  # text that is an image format still gets the whole database


def test_empty() -> None:
    assert sniff(b"") == "application/x-empty"


@pytest.mark.parametrize("name", ["xpm", "plain pbm", "plain ppm"])
def test_text_encoded_images_are_fingerprinted(tmp_path, name: str) -> None:
    p = tmp_path / name.replace(" ", "-")
    p.write_bytes(KEPT[name])
    result = fingerprint_file(str(p), Limits())
    [item] = result.items
    assert is_image(item.fingerprints.media_type)
    assert item.fingerprints.pdq is not None, result.errors


# -- sniff_media: the media decision on libmagic's database cut down to the media tests ----------


def _videos(folder: Path) -> dict[str, bytes]:
    frames = list(slideshow_frames(["astronaut", "coffee"], 1, 5, (176, 144)))
    out = {}
    for name, codec, fmt in [
        ("clip.mp4", "h264", None),
        *CONTAINERS,
        ("clip.mpg", "mpeg2video", "mpeg"),
    ]:
        path = write(folder / name, iter(frames), fps=5, codec=codec, fmt=fmt)
        out[name] = path.read_bytes()[: mediatype.SNIFF_BYTES]
    return out


def _docx() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        z.writestr("word/document.xml", "<w:document/>")
        z.writestr("word/media/image1.png", encoded("PNG"))
    return buf.getvalue()


def _system_files(per_folder: int = 600) -> dict[str, bytes]:
    """Heads of files of this machine's programs, libraries, fonts, icons, wallpapers and
    documents: every few files in sorted order, a fixed set."""
    out: dict[str, bytes] = {}
    for root in (
        "/usr/bin",
        "/usr/lib/x86_64-linux-gnu",
        "/usr/share/fonts",
        "/usr/share/icons",
        "/usr/share/backgrounds",
        "/usr/share/doc",
        "/usr/share/zoneinfo",
        "/usr/share/mime",
        str(Path(magic.__file__).parents[1]),  # the virtual environment's packages
    ):
        paths = sorted(p for p in Path(root).rglob("*") if p.is_file() and not p.is_symlink())
        step = max(1, len(paths) // per_folder)
        for p in paths[::step]:
            try:
                with open(p, "rb") as f:
                    out[str(p)] = f.read(mediatype.SNIFF_BYTES)
            except OSError:
                continue
    return out


@pytest.fixture(scope="module")
def heads(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    rng = random.Random(7)
    out = {f"kept {k}": v for k, v in KEPT.items()}
    out |= {f"text {k}": v for k, v in TEXT.items()}
    for fmt, mode in [
        ("ICO", "RGB"),
        ("PCX", "RGB"),
        ("TGA", "RGB"),
        ("JPEG2000", "RGB"),
        ("PNG", "L"),
        ("TIFF", "1"),
        ("SGI", "RGB"),
        ("DDS", "RGB"),
        ("QOI", "RGB"),
    ]:
        try:
            out[f"pillow {fmt} {mode}"] = encoded(fmt, mode)
        except (KeyError, OSError, ValueError):
            continue  # not written by this Pillow
    out |= {f"video {k}": v for k, v in _videos(tmp_path_factory.mktemp("videos")).items()}
    out["docx"] = _docx()
    out["utf-16 text"] = "plain words, in UTF-16\n".encode("utf-16")
    out["zeros"] = bytes(4096)
    for n in range(40):
        out[f"random {n}"] = rng.randbytes(rng.choice([16, 300, 4096, 8192]))
    out |= _system_files()
    # Each head also cut short, as a preview of a few hundred bytes is.
    out |= {f"{k} (first 512 bytes)": v[:512] for k, v in list(out.items())}
    return out


def test_the_cut_down_database_is_used_here() -> None:
    # Debian's libmagic (file 5.44): the layout media_database reads, no local tests.
    assert mediatype._media_magic() is not None
    files = mediatype._database_files()
    assert files is not None
    whole = files[0].read_bytes()
    cut = mediatype.media_database(whole)
    assert cut is not None
    # Far fewer tests to run: the point of it.
    assert len(cut) < len(whole) / 2


def test_sniff_media_decides_as_the_whole_database_does(heads: dict[str, bytes]) -> None:
    media = 0
    for name, head in heads.items():
        whole = sniff(head)
        expected = whole if mediatype.is_media(whole) else None
        assert mediatype.sniff_media(head) == expected, (name, whole)
        media += expected is not None
    # Both kinds were there to decide: media of every kind, and much that is not.
    assert media >= 40
    assert len(heads) - media >= 500


def test_binary_that_is_not_media_never_reaches_the_whole_database(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Refuse:
        def from_buffer(self, data: bytes) -> str:
            raise AssertionError("the whole database was consulted")

    monkeypatch.setattr(mediatype, "_magic", Refuse)
    rng = random.Random(3)
    for _ in range(20):
        assert mediatype.sniff_media(rng.randbytes(4096)) is None
    assert mediatype.sniff_media(Path("/usr/bin/env").read_bytes()[:4096]) is None
    with pytest.raises(AssertionError):
        mediatype.sniff_media(KEPT["jpeg"])  # media is confirmed by the whole database


def test_local_magic_tests_mean_the_whole_database(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A test of the operator's own (in /etc/magic, say) is not in the cut-down database: with
    # one, every decision is the whole database's.
    local = tmp_path / "magic"
    local.write_text("# local tests\n0\tstring\tVIGILTEST\tour own\n!:mime\timage/x-vigil-test\n")
    files = mediatype._database_files()
    assert files is not None
    monkeypatch.setattr(mediatype, "_database_files", lambda: (files[0], [local]))
    mediatype._media_magic.cache_clear()
    try:
        assert mediatype._media_magic() is None
        assert mediatype.sniff_media(KEPT["png"]) == "image/png"
        assert mediatype.sniff_media(b"\x01\x02" * 100) is None
    finally:
        mediatype._media_magic.cache_clear()


def test_an_unknown_database_layout_is_not_cut() -> None:
    files = mediatype._database_files()
    assert files is not None
    whole = bytearray(files[0].read_bytes()[: 376 * 40])
    assert mediatype.media_database(bytes(whole)) is None  # counts that do not fit its size
    struct.pack_into("<I", whole, 4, 19)  # a later version
    assert mediatype.media_database(bytes(whole)) is None
    assert mediatype.media_database(b"not a database") is None
