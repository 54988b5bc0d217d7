"""Media types from content: libmagic's answers, with plain text named without libmagic's database."""

from __future__ import annotations

import io
import json

import magic
import pytest
from PIL import Image
from support.archives import compress, make_7z, make_tar, make_zip

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
