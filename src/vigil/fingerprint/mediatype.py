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
