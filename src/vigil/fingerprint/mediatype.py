"""Media type from content (magic bytes, via libmagic), never from the file name."""

from __future__ import annotations

import ctypes
import functools
import logging
import struct
import threading
from pathlib import Path

import magic

log = logging.getLogger(__name__)

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
        text = _plain_text(head)
        if text is not None:
            return text
        mime = _magic().from_buffer(head)
    except magic.MagicException:
        return "application/octet-stream"
    if mime == "application/octet-stream" and _is_mpeg_ts(head):
        return "video/mp2t"
    return _ALIASES.get(mime, mime) or "application/octet-stream"


def _plain_text(head: bytes) -> str | None:
    """text/plain, JSON or CSV by libmagic's built-in tests alone, or None (not plain text)."""
    if b"\x00" not in head and not head.lstrip().startswith(_TEXT_FORMATS):
        quick = _magic_builtin().from_buffer(head)
        if quick in _BUILTIN_ANSWERS:
            return quick
    return None


def sniff_media(head: bytes) -> str | None:
    """`sniff(head)` when that names an image, a video or an archive (`is_media`), else None:
    the same decision, ~10x cheaper on content that is none of them.

    On binary content libmagic runs its whole pattern database (~3,500 tests, 0.15-0.3 ms) to
    say that it does not know it, which is most of a gateway's work for a download that is not
    media. Here it first runs only the tests that can name a media type (`_MediaMagic`, ~200 of
    them): when none of those matches, the whole database cannot name one either, and only when
    one does is the whole database asked.
    """
    if not head:
        return None
    head = head[:SNIFF_BYTES]
    quick = _media_magic()
    if quick is not None:
        try:
            if _plain_text(head) is not None:
                return None
        except magic.MagicException:
            pass
        found = quick.sniff(head)
        if not is_media(found) and not (found == "application/octet-stream" and _is_mpeg_ts(head)):
            return None
    mime = sniff(head)
    return mime if is_media(mime) else None


# The compiled database's layout this reads (libmagic's `struct magic`, file 5.x, version 18):
# records of 376 bytes after a header record; in each, the continuation level (uint16 at 0),
# the test's type (byte 6), its value (a string for `name`/`use`, at 32), its MIME type (at 224).
_MGC_MAGIC = 0xF11E041C
_MGC_VERSION = 18
_MGC_RECORD = 376
_MGC_VALUE = slice(32, 160)
_MGC_MIME = slice(224, 304)
_MGC_TYPE = 6
_FILE_INDIRECT = 41  # re-runs the database at an offset: may name anything
_FILE_NAME = 45  # a named test, run by `use`
_FILE_USE = 46


def _cstring(raw: bytes) -> str:
    return raw.split(b"\x00", 1)[0].decode("latin-1")


def media_database(compiled: bytes) -> bytes | None:
    """libmagic's compiled database (magic.mgc) cut down to the tests that can name a media type
    (`is_media`), or None for a layout this does not know.

    A top-level test and its continuations are kept or dropped together: kept when one of them
    names a media type, runs a named test that can (transitively), or is `indirect`. Named tests
    (the second set) are all kept. Kept tests keep their order (libmagic's strength order), so
    whenever the whole database names a media type, this one names the same: the test that
    matched first there is here, and every test before it here was before it there.
    """
    if len(compiled) < 16:
        return None
    magic_no, version, n0, n1 = struct.unpack_from("<4I", compiled)
    if (
        magic_no != _MGC_MAGIC
        or version != _MGC_VERSION
        or len(compiled) != _MGC_RECORD * (1 + n0 + n1)
    ):
        return None
    records = [
        compiled[i : i + _MGC_RECORD] for i in range(_MGC_RECORD, len(compiled), _MGC_RECORD)
    ]
    groups: list[list[bytes]] = []
    for rec in records[:n0]:
        if not groups or struct.unpack_from("<H", rec)[0] == 0:
            groups.append([])
        groups[-1].append(rec)
    named: dict[str, list[bytes]] = {}
    current: list[bytes] = []
    for rec in records[n0:]:
        if struct.unpack_from("<H", rec)[0] == 0:
            current = []
            if rec[_MGC_TYPE] == _FILE_NAME:
                named[_cstring(rec[_MGC_VALUE])] = current
        current.append(rec)

    def names(group: list[bytes]) -> bool:
        return any(
            rec[_MGC_TYPE] == _FILE_INDIRECT
            or is_media(_ALIASES.get(m := _cstring(rec[_MGC_MIME]), m))
            for rec in group
        )

    def uses(group: list[bytes]) -> set[str]:
        return {_cstring(r[_MGC_VALUE]).lstrip("^") for r in group if r[_MGC_TYPE] == _FILE_USE}

    named_uses = {n: uses(g) for n, g in named.items()}
    naming = {n for n, g in named.items() if names(g)}
    grew = True
    while grew:
        grew = False
        for n, used in named_uses.items():
            if n not in naming and used & naming:
                naming.add(n)
                grew = True
    kept = [rec for g in groups if names(g) or uses(g) & naming for rec in g]
    if not kept:
        return None
    header = bytearray(compiled[:_MGC_RECORD])
    struct.pack_into("<4I", header, 0, magic_no, version, len(kept), n1)
    return bytes(header) + b"".join(kept) + b"".join(records[n0:])


class _MediaMagic:
    """A libmagic handle on `media_database` (loaded from memory; one per process, its calls
    serialised)."""

    def __init__(self, database: bytes) -> None:
        lib = magic.libmagic
        lib.magic_load_buffers.argtypes = [
            ctypes.c_void_p,
            ctypes.POINTER(ctypes.c_void_p),
            ctypes.POINTER(ctypes.c_size_t),
            ctypes.c_size_t,
        ]
        lib.magic_load_buffers.restype = ctypes.c_int
        # libmagic reads the database where it lies: the buffer lives as long as the handle.
        self._buffer = ctypes.create_string_buffer(database, len(database))
        self._cookie = magic.magic_open(magic.MAGIC_MIME_TYPE)
        buffers = (ctypes.c_void_p * 1)(ctypes.cast(self._buffer, ctypes.c_void_p))
        sizes = (ctypes.c_size_t * 1)(len(database))
        if lib.magic_load_buffers(self._cookie, buffers, sizes, 1) != 0:
            raise magic.MagicException(magic.magic_error(self._cookie))
        self._lock = threading.Lock()

    def sniff(self, head: bytes) -> str:
        with self._lock:
            try:
                mime = magic.magic_buffer(self._cookie, head)
            except magic.MagicException:
                return "application/octet-stream"
        if isinstance(mime, bytes):
            mime = mime.decode("latin-1")
        return _ALIASES.get(mime, mime) or "application/octet-stream"


def _database_files() -> tuple[Path, list[Path]] | None:
    """The compiled database libmagic loads by default and its other files (source), or None
    when that is not one compiled file and plain files."""
    getpath = magic.libmagic.magic_getpath
    getpath.argtypes = [ctypes.c_char_p, ctypes.c_int]
    getpath.restype = ctypes.c_char_p
    value = getpath(None, 0)  # MAGIC from the environment, else the built-in list
    if not value:
        return None
    compiled: Path | None = None
    sources: list[Path] = []
    for part in value.decode().split(":"):
        path = Path(part)
        mgc = path.with_name(path.name + ".mgc")
        if compiled is None and mgc.is_file():
            compiled = mgc
        elif path.is_file():
            sources.append(path)
        elif path.exists():
            return None  # a directory of sources
    return (compiled, sources) if compiled is not None else None


def _only_comments(path: Path) -> bool:
    try:
        lines = path.read_text("latin-1").splitlines()
    except OSError:
        return False
    return all(not line.strip() or line.lstrip().startswith("#") for line in lines)


@functools.cache
def _media_magic() -> _MediaMagic | None:
    """The media-only handle, or None (then `sniff_media` asks the whole database every time):
    when the database is not one compiled file in the layout known here, when local magic files
    hold tests (they would not be in the cut-down database), or when the cut-down database does
    not name the media types of a few known heads as the whole one does."""
    files = _database_files()
    if files is None or not all(_only_comments(p) for p in files[1]):
        return None
    try:
        database = media_database(files[0].read_bytes())
        handle = _MediaMagic(database) if database is not None else None
    except (OSError, magic.MagicException, AttributeError) as e:
        log.info("media sniffing uses libmagic's whole database: %s", e)
        return None
    if handle is None or any(handle.sniff(head) != sniff(head) for head in _KNOWN_HEADS):
        log.info("media sniffing uses libmagic's whole database (its layout is not known here)")
        return None
    return handle


# Heads whose type the cut-down database must name as the whole one does before it is used.
_KNOWN_HEADS = (
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00",
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00",
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04",
    b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom",
    b"PK\x03\x04\x14\x00\x00\x00\x08\x00",
)


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


def is_media(media_type: str) -> bool:
    """An image, a video or an archive: what the gateway fingerprints."""
    return is_image(media_type) or is_video(media_type) or is_archive(media_type)
