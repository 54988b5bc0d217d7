"""Media type from content (magic bytes, via libmagic), never from the file name."""

from __future__ import annotations

import functools

import magic

# Bytes of the start of an item that are enough for libmagic to recognise every format we use
# (tar's 'ustar' signature sits at offset 257; some formats need a few KiB).
SNIFF_BYTES = 8192

# libmagic's names that differ from the IANA ones hash lists and reports use.
_ALIASES = {
    "image/x-ms-bmp": "image/bmp",
    "image/x-bmp": "image/bmp",
    "application/x-gzip": "application/gzip",
    "image/heic-sequence": "image/heic",
}


@functools.cache
def _magic() -> magic.Magic:
    # One libmagic handle per process: handles are not shared across threads here.
    return magic.Magic(mime=True)


def sniff(head: bytes) -> str:
    """The media type of an item whose first bytes are `head` (application/octet-stream if unknown)."""
    if not head:
        return "application/x-empty"
    try:
        mime = _magic().from_buffer(head[:SNIFF_BYTES])
    except magic.MagicException:
        return "application/octet-stream"
    return _ALIASES.get(mime, mime) or "application/octet-stream"


def is_image(media_type: str) -> bool:
    """True for still-image types Pillow may decode (PDQ is computed for these)."""
    return media_type.startswith("image/") and media_type not in ("image/svg+xml", "image/x-icon")


# Types libmagic reports on weak evidence (TGA has no signature: many binary files "are" TGA).
# When such an item does not decode, it was not an image, and that is not an error.
WEAK_IMAGE_TYPES = frozenset({"image/x-tga"})


ARCHIVE_TYPES = frozenset(
    {
        "application/zip",
        "application/x-tar",
        "application/gzip",
        "application/x-bzip2",
        "application/x-xz",
        "application/x-7z-compressed",
    }
)


# Zip containers under another name: office documents, e-books, Java and Android packages all
# carry embedded images, so they are opened like any zip.
_ZIP_BASED_PREFIXES = (
    "application/vnd.openxmlformats-officedocument.",
    "application/vnd.oasis.opendocument.",
    "application/epub+zip",
    "application/java-archive",
    "application/vnd.android.package-archive",
)


def is_archive(media_type: str) -> bool:
    """True for containers whose members are scanned (zip and zip-based, tar, gz/bz2/xz, 7z)."""
    return media_type in ARCHIVE_TYPES or media_type.startswith(_ZIP_BASED_PREFIXES)
