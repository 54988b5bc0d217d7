"""libarchive plumbing: open an archive over read callbacks, read members, name what went wrong.

Everything here streams: an archive is read through callbacks that hand libarchive one block at a
time, so a nested archive is read from its parent member's blocks and nothing is extracted.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from ctypes import POINTER, c_int, c_void_p

from libarchive import ffi
from libarchive.entry import ArchiveEntry
from libarchive.exception import ArchiveError
from libarchive.read import ArchiveRead

__all__ = [
    "ArchiveError",
    "BLOCK_SIZE",
    "COMPRESSED_TYPES",
    "error_reason",
    "filter_output_bytes",
    "is_encrypted",
    "is_fatal",
    "is_raw",
    "member_name",
    "message",
    "open_archive",
    "raw_member_name",
    "read_blocks",
]

# Bytes handed to or taken from libarchive per call: large enough to keep the Python overhead per
# byte small, small enough that a limit is checked often.
BLOCK_SIZE = 256 * 1024

# Single-file compressors: their content is one member, read with libarchive's 'raw' format.
COMPRESSED_TYPES = frozenset({"application/gzip", "application/x-bzip2", "application/x-xz"})

_lib = ffi.libarchive
_entry_is_encrypted = _lib.archive_entry_is_encrypted
_entry_is_encrypted.argtypes = [c_void_p]
_entry_is_encrypted.restype = c_int
_support_filter_all = ffi.get_read_filter_function("all")

# The formats a container (zip, tar, 7z, ...) is read with: every one libarchive reads except
# mtree. An mtree manifest is a text that describes files and holds none, and its bidder takes
# ordinary text for one: a changelog after the gzip filter was "damaged after 0 members ... Can't
# parse line 122", or a list of empty "members" named after its lines, while the text itself
# went unhashed.
_CONTAINER_FORMATS = (
    "ar", "cpio", "empty", "lha", "tar", "xar", "warc", "7zip", "cab", "rar", "rar5", "iso9660",
    "zip",
)  # fmt: skip
# (In the order libarchive's own 'all' registers them: it matters. With iso9660 ahead of tar, a
# truncated tar ended without an error after its last whole member.)

# What a compressed single file (gz, bz2, xz) is read as: a tar, or else one raw member, sniffed
# and opened in its turn if it is an archive itself (a .zip.gz is the zip's members one level
# down). Nothing else bids: a compressed text is the text.
_COMPRESSED_FORMATS = ("tar", "raw")


def _format_functions(names: tuple[str, ...]) -> tuple[Callable[[int], int], ...]:
    """libarchive's support functions for the formats `names` this build of it has."""
    found = []
    for name in names:
        try:
            found.append(ffi.get_read_format_function(name))
        except ValueError:  # pragma: no cover - a libarchive built without this format
            continue
    return tuple(found)


_container_support = _format_functions(_CONTAINER_FORMATS)
_compressed_support = _format_functions(_COMPRESSED_FORMATS)

_SEEK_FAILED = -30  # ARCHIVE_FATAL

# What libarchive says (3.6) when an entry or the archive's header is encrypted.
_ENCRYPTED_WORDS = ("encrypt", "passphrase", "decryption")

# Compressed-file suffixes and the name of what they hold ('.tgz' holds a '.tar').
_SUFFIXES = {
    ".gz": "",
    ".gzip": "",
    ".z": "",
    ".bz2": "",
    ".bzip2": "",
    ".xz": "",
    ".tgz": ".tar",
    ".tbz": ".tar",
    ".tbz2": ".tar",
    ".txz": ".tar",
}


@contextmanager
def open_archive(
    read: Callable[[], bytes],
    seek: Callable[[int, int], int] | None = None,
    *,
    raw: bool = False,
) -> Iterator[ArchiveRead]:
    """Open an archive whose bytes come from `read()` (b'' at the end); `seek` makes it seekable.

    `raw` is for content that sniffed as a compressor (gz/bz2/xz): it is read as a compressed tar,
    or else as an archive of one member, the decompressed bytes (libarchive's raw format accepts
    any bytes at all, so it is only asked for then). Exceptions raised by `read`/`seek` are the
    caller's to keep: libarchive only sees a failed read (an ArchiveError follows).
    """
    buf = ctypes.create_string_buffer(BLOCK_SIZE)
    buf_p = ctypes.cast(buf, c_void_p)
    pending = b""

    def read_cb(_archive_p: int, _context: int, ptrptr: int) -> int:
        nonlocal pending
        try:
            if not pending:
                pending = bytes(read())
            n = min(len(pending), BLOCK_SIZE)
            ctypes.memmove(buf, pending, n)
            pending = pending[n:]
        except BaseException:  # noqa: BLE001 - the caller's read keeps the real exception
            return ffi.ARCHIVE_FATAL
        ctypes.cast(ptrptr, POINTER(c_void_p))[0] = buf_p
        return n

    def seek_cb(_archive_p: int, _context: int, offset: int, whence: int) -> int:
        nonlocal pending
        assert seek is not None
        try:
            pending = b""
            return seek(offset, whence)
        except BaseException:  # noqa: BLE001 - the caller's seek keeps the real exception
            return _SEEK_FAILED

    # The ctypes callback objects must outlive the archive: they are locals of this frame.
    read_c = ffi.READ_CALLBACK(read_cb)
    seek_c = ffi.SEEK_CALLBACK(seek_cb)
    archive_p = ffi.read_new()
    try:
        _support_filter_all(archive_p)
        for support in _compressed_support if raw else _container_support:
            support(archive_p)
        if seek is not None:
            ffi.read_set_seek_callback(archive_p, seek_c)
        ffi.read_open(archive_p, None, ffi.NO_OPEN_CB, read_c, ffi.NO_CLOSE_CB)
        yield ArchiveRead(archive_p)
    finally:
        ffi.read_free(archive_p)


def read_blocks(archive: ArchiveRead) -> Iterator[bytes]:
    """The current entry's data, one block at a time (libarchive errors raise ArchiveError)."""
    archive_p = archive._pointer
    buf = ctypes.create_string_buffer(BLOCK_SIZE)
    while True:
        n = ffi.read_data(archive_p, buf, BLOCK_SIZE)
        if n == 0:
            return
        if n < 0:
            # ARCHIVE_WARN comes back as a return value, not an exception; a member that only
            # half-decodes is not fingerprinted.
            raise ArchiveError(ffi._error_string(archive_p) or "read warning", retcode=n)
        yield ctypes.string_at(buf, n)


def is_encrypted(entry: ArchiveEntry) -> bool:
    """True when libarchive knows the entry's data or metadata is encrypted."""
    return bool(_entry_is_encrypted(entry._entry_p))


def is_raw(archive: ArchiveRead) -> bool:
    """True when the archive is a compressed single file read with the raw format."""
    return (archive.format_name or b"") == b"raw"


def filter_output_bytes(archive: ArchiveRead) -> int:
    """Bytes a decompression filter (gzip, bzip2, xz around a tar or a single file) produced so far.

    0 when no filter is in the chain (zip and 7z decompress inside the format reader).
    """
    archive_p = archive._pointer
    if ffi.filter_count(archive_p) <= 1:
        return 0
    return max(0, int(ffi.filter_bytes(archive_p, 0)))


def member_name(entry: ArchiveEntry) -> str:
    """The entry's path as the archive stores it, without a leading '/' or './'."""
    name = entry.pathname
    if isinstance(name, bytes):
        name = name.decode("utf-8", "replace")
    name = (name or "").lstrip("/")
    while name.startswith("./"):
        name = name[2:].lstrip("/")
    return name or "?"


def raw_member_name(container: str) -> str:
    """The name of what a compressed single file holds: 'x.jpg.gz' -> 'x.jpg', else 'data'."""
    base = os.path.basename(container.rstrip("/"))
    stem, suffix = os.path.splitext(base)
    replacement = _SUFFIXES.get(suffix.lower())
    if replacement is None or not stem:
        return "data"
    return stem + replacement


def error_reason(error: ArchiveError) -> str:
    """'encrypted' when libarchive's message says so, else 'corrupt'."""
    text = str(error.msg or "").lower()
    return "encrypted" if any(w in text for w in _ENCRYPTED_WORDS) else "corrupt"


def is_fatal(error: ArchiveError) -> bool:
    """True when libarchive can read nothing more from this archive after `error`."""
    return error.retcode is None or error.retcode <= ffi.ARCHIVE_FATAL


def message(error: ArchiveError) -> str:
    """libarchive's message, without the ctypes details ArchiveError.__str__ adds."""
    text = error.msg
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return str(text or "libarchive error")
