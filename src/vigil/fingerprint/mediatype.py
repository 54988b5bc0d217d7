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


@functools.cache
def _magic_builtin() -> magic.Magic:
    """libmagic without its pattern database ("soft magic"): the built-in tests only (text and
    its encodings, JSON, CSV, tar, CDF, ELF), ~50x faster on text."""
    handle = magic.Magic(mime=True)
    magic.magic_setflags(handle.cookie, magic.MAGIC_MIME_TYPE | magic.MAGIC_NO_CHECK_SOFT)
    return handle


# What the built-in tests alone may answer for. libmagic runs its whole pattern database before
# deciding that a file is text, 0.2-1 ms a file (over 80% of a first scan's CPU on a tree of
# small files); for text, that only picks a subtype (a Python script, HTML, C source), which no
# decision here uses. So text is "text/plain" (JSON and CSV keep their own types).
_BUILTIN_ANSWERS = frozenset({"text/plain", "application/json", "text/csv"})

# Text that is more than text: formats written in text that Pillow decodes (XPM, ASCII netpbm),
# and documents reports should name (PDF, PostScript, RTF, XML and SVG). These always get the
# whole database. (XBM, C source to libmagic too, is text either way.)
_TEXT_FORMATS = (
    b"/* XPM */",
    b"! XPM2",
    b"P1",  # ASCII netpbm: P1 bitmap, P2 greymap, P3 pixmap
    b"P2",
    b"P3",
    b"%PDF",
    b"%!",  # PostScript, EPS
    b"{\\rtf",
    b"<?xml",
    b"<svg",
    b"\xef\xbb\xbf<",  # the same after a UTF-8 byte-order mark
)


def sniff(head: bytes) -> str:
    """The media type of an item whose first bytes are `head` (application/octet-stream if unknown).

    libmagic's answer (under the IANA name where they differ), except that plain text is
    "text/plain" without its subtype (see _BUILTIN_ANSWERS).
    """
    if not head:
        return "application/x-empty"
    head = head[:SNIFF_BYTES]
    try:
        if b"\x00" not in head and not head.lstrip().startswith(_TEXT_FORMATS):
            quick = _magic_builtin().from_buffer(head)
            if quick in _BUILTIN_ANSWERS:
                return quick
        mime = _magic().from_buffer(head)
    except magic.MagicException:
        return "application/octet-stream"
    if mime == "application/octet-stream" and _is_mpeg_ts(head):
        return "video/mp2t"
    return _ALIASES.get(mime, mime) or "application/octet-stream"


def _is_mpeg_ts(head: bytes) -> bool:
    """MPEG transport stream: a 0x47 sync byte every 188 bytes (192 in Blu-ray's M2TS).

    libmagic only knows TS files by a signature deeper in the file than a short head shows.
    """
    for size, offset in ((188, 0), (192, 4)):
        starts = range(offset, min(len(head), offset + 5 * size), size)
        if len(starts) >= 3 and all(head[i] == 0x47 for i in starts):
            return True
    return False


def is_image(media_type: str) -> bool:
    """True for still-image types Pillow may decode (PDQ is computed for these)."""
    return media_type.startswith("image/") and media_type not in ("image/svg+xml", "image/x-icon")


# Containers of video that vPDQ is computed for (FFmpeg reads them all), by libmagic's names.
VIDEO_TYPES = frozenset(
    {
        "video/mp4",
        "video/quicktime",
        "video/x-matroska",
        "video/webm",
        "video/x-msvideo",
        "video/x-ms-asf",
        "video/x-ms-wmv",
        "video/x-flv",
        "video/3gpp",
        "video/3gpp2",
        "video/mp2t",
        "video/mpeg",
        "video/mp4v-es",
        "video/x-m4v",
        "video/ogg",
        "video/x-ogm",
        "video/h264",
    }
)
# Image types that may be animated: their first frame gets PDQ, their frames vPDQ.
ANIMATED_IMAGE_TYPES = frozenset({"image/gif", "image/webp"})


def is_video(media_type: str) -> bool:
    """True for video containers (MP4, MOV, MKV, WebM, AVI, WMV/ASF, FLV, 3GP, MPEG-PS/TS, ...).

    Animated GIF and WebP are images here (see ANIMATED_IMAGE_TYPES); whether they move is only
    known once decoded.
    """
    return media_type in VIDEO_TYPES or (
        media_type.startswith("video/") and media_type not in _NOT_VIDEO
    )


# video/* types libmagic knows that are no moving pictures FFmpeg decodes.
_NOT_VIDEO = frozenset({"video/x-sgi-movie"})


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
