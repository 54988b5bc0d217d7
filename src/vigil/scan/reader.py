"""Turn a file on disk into items: the file itself and every archive member inside it, nested.

A file is read once for its digests, its media type and (for images) its bytes. If it is an
archive, libarchive then reads it through a callback over the same open file, and every nested
archive through a callback over its parent member's blocks: the member's bytes are hashed as they
stream into the nested reader, so nothing is extracted and nothing nested is held whole in memory
(except image bytes wanted for decoding, and a nested 7z, which libarchive can only read seekably).
Every limit of `Limits` is checked while reading, and reported by name.
"""

from __future__ import annotations

import io
import itertools
import os
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from libarchive import ffi
from libarchive.read import ArchiveRead

from vigil.errors import LimitExceeded
from vigil.fingerprint.crypto import Digests
from vigil.fingerprint.mediatype import SNIFF_BYTES, is_archive, is_video, sniff
from vigil.limits import Limits
from vigil.scan import archives
from vigil.scan.archives import ArchiveError
from vigil.scan.results import ScanError

# Read size for files on disk.
CHUNK = 1024 * 1024

# The clock deadlines are measured with (a module attribute, so tests can drive it).
_clock = time.monotonic

# Archive formats libarchive reads only with seeking (their index sits at the end).
SEEKABLE_ONLY = frozenset({"application/x-7z-compressed"})


@dataclass
class RawItem:
    """One item read from disk: a file, or a member of an archive inside it, with its digests."""

    # None for the file itself; 'inner.tar/x.jpg' for an archive member (nested levels joined).
    member: str | None
    size: int
    md5: str
    sha1: str
    sha256: str
    # Sniffed from the first bytes, never from the name.
    media_type: str
    # The whole bytes when wanted for this media type and not larger than max_image_file_size
    # (max_buffered_video for a video inside an archive; never for a video file on disk).
    content: bytes | None


def read_file(
    path: str, limits: Limits, want_content: Callable[[str], bool]
) -> Iterator[RawItem | ScanError]:
    """Items of one file: its archive members as they are read (nested), then the file itself."""
    yield from _FileScan(path, limits, want_content).items()


def read_bytes(
    data: bytes, name: str, limits: Limits, want_content: Callable[[str], bool]
) -> Iterator[RawItem | ScanError]:
    """Items of a buffer held in memory (`name` is what errors call it): as `read_file`.

    The buffer is not copied: an image's content is the buffer itself, and an archive in it is
    read seekably (7z and zip's central directory work as for a file). A video's bytes are kept
    as its content (up to max_buffered_video), since it has no path to decode from.
    """
    yield from _FileScan(name, limits, want_content).bytes_items(data)


def read_stream(
    stream: BinaryIO, name: str, limits: Limits, want_content: Callable[[str], bool]
) -> Iterator[RawItem | ScanError]:
    """Items of a readable stream, read once from where it stands, never seeked: an archive in
    it streams through libarchive while the stream's own digests are computed (like a nested
    member: a 7z is held in memory up to max_buffered_archive to be read)."""
    yield from _FileScan(name, limits, want_content).stream_items(stream)


class _Abort(Exception):
    """Stop reading this top-level file: a limit for the whole file was reached."""

    def __init__(self, error: ScanError) -> None:
        super().__init__(error.message)
        self.error = error


class _Changed(Exception):
    """The file changed while it was read."""


class _Sink:
    """Where an item's bytes go: its digests, and its content when that is wanted."""

    def __init__(self, cap: int) -> None:
        self.digests = Digests()
        self.content: bytearray | None = None
        self._cap = cap

    def keep(self, wanted: bool, cap: int | None = None) -> None:
        """Hold the bytes from now on, up to `cap` if given (call before the first update)."""
        self.content = bytearray() if wanted else None
        if cap is not None:
            self._cap = cap

    def update(self, data: bytes) -> None:
        """Add the next bytes of the item."""
        self.digests.update(data)
        if self.content is not None:
            if len(self.content) + len(data) > self._cap:
                self.content = None  # too large to decode: hashed only
            else:
                self.content += data

    def item(self, member: str | None, media_type: str) -> RawItem:
        """The finished item."""
        md5, sha1, sha256 = self.digests.hexdigests()
        content = bytes(self.content) if self.content is not None else None
        return RawItem(member, self.digests.size, md5, sha1, sha256, media_type, content)


class _Source:
    """Bytes an archive reader pulls through libarchive's read callback.

    libarchive only learns that a read failed; the exception itself is kept here and raised again
    by whoever catches the ArchiveError that follows, so that a parent's problem (or a limit) is
    reported as such and not as damage in the nested archive.
    """

    seekable = False

    def __init__(self) -> None:
        self.error: BaseException | None = None
        self.meter: _Meter | None = None

    def read(self) -> bytes:
        """The next block (b'' at the end)."""
        try:
            data = self._read()
            if self.meter is not None:
                self.meter.sync()
            return data
        except BaseException as exc:
            self.error = exc
            raise

    def seek(self, offset: int, whence: int) -> int:
        """Move to `offset`; the new position."""
        try:
            return self._seek(offset, whence)
        except BaseException as exc:
            self.error = exc
            raise

    def reraise(self) -> None:
        """Raise the exception a read or seek failed with, if any."""
        if self.error is not None:
            raise self.error

    def _read(self) -> bytes:
        raise NotImplementedError

    def _seek(self, offset: int, whence: int) -> int:
        raise io.UnsupportedOperation("not seekable")


class _StreamSource(_Source):
    """A seekable stream: the file on disk, or a nested archive held in memory."""

    seekable = True

    def __init__(self, stream: BinaryIO, tick: Callable[[], None]) -> None:
        super().__init__()
        self._stream = stream
        self._tick = tick

    def _read(self) -> bytes:
        self._tick()
        return self._stream.read(archives.BLOCK_SIZE) or b""

    def _seek(self, offset: int, whence: int) -> int:
        return self._stream.seek(offset, whence)


class _MemberSource(_Source):
    """An archive member's blocks, hashed as they stream into the nested reader."""

    def __init__(self, head: bytes, blocks: Iterator[bytes], sink: _Sink) -> None:
        super().__init__()
        self._head: bytes | None = head
        self._blocks = blocks
        self._sink = sink

    def _read(self) -> bytes:
        if self._head is not None:
            data, self._head = self._head, None
        else:
            data = next(self._blocks, b"")
        self._sink.update(data)
        return data

    def drain(self) -> None:
        """Hash what the nested reader left unread, so the digests cover the whole member."""
        while self._read():
            pass


class _Meter:
    """Decompressed bytes of one archive reader, charged to the file's max_archive_bytes.

    zip and 7z decompress inside the format reader, so what counts is the member data read; a
    tar.gz or a .gz decompresses in a filter, whose output also covers data libarchive skips.
    """

    def __init__(self, scan: _FileScan, archive: ArchiveRead) -> None:
        self._scan = scan
        self._archive = archive
        self._member_bytes = 0
        self._charged = 0

    def add(self, n: int) -> None:
        """Count `n` bytes of member data read."""
        self._member_bytes += n
        self.sync()

    def sync(self) -> None:
        """Charge what was decompressed since the last call."""
        charge = max(self._member_bytes, archives.filter_output_bytes(self._archive))
        if charge > self._charged:
            self._scan.spend(charge - self._charged)
            self._charged = charge


class _FileScan:
    """Reading one top-level file: its limits' counters and the walk through its archives."""

    def __init__(self, path: str, limits: Limits, want_content: Callable[[str], bool]) -> None:
        self.path = path
        self.limits = limits
        self.want_content = want_content
        self.deadline = _clock() + limits.item_seconds
        self.archive_bytes = 0
        self.members = 0

    # -- limits ------------------------------------------------------------------------------

    def tick(self) -> None:
        """Raise item_seconds once the file's deadline has passed."""
        if _clock() > self.deadline:
            raise LimitExceeded(
                "item_seconds", f"reading took longer than {self.limits.item_seconds:g} seconds"
            )

    def spend(self, n: int) -> None:
        """Count `n` decompressed bytes against max_archive_bytes."""
        self.archive_bytes += n
        if self.archive_bytes > self.limits.max_archive_bytes:
            raise LimitExceeded(
                "max_archive_bytes",
                f"more than {self.limits.max_archive_bytes} bytes decompressed from this file "
                "(a zip bomb?); the rest of it is not read",
            )

    def error(self, member: str | None, reason: str, message: str) -> ScanError:
        """A ScanError for this file."""
        return ScanError(self.path, member, reason, message)

    # -- the file on disk --------------------------------------------------------------------

    def items(self) -> Iterator[RawItem | ScanError]:
        """Members first (as read), then the file itself."""
        try:
            # O_NONBLOCK: opening a fifo must not wait for a writer; it is refused below.
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            yield self._os_error(exc)
            return
        try:
            before = os.fstat(fd)
        except OSError as exc:
            os.close(fd)
            yield self._os_error(exc)
            return
        if not stat.S_ISREG(before.st_mode):
            os.close(fd)
            yield self.error(None, "not-regular", "not a regular file; not read")
            return
        with os.fdopen(fd, "rb", buffering=0) as f:
            try:
                if before.st_size > self.limits.max_file_size:
                    yield self.error(
                        None,
                        "max_file_size",
                        f"{before.st_size} bytes, more than {self.limits.max_file_size}; not read",
                    )
                    return
                item = self._read_whole(f, before)
                if is_archive(item.media_type):
                    yield from self._top_archive(f, item.media_type)
                    if _changed(before, os.fstat(fd)):
                        raise _Changed("the file changed while its archive members were read")
            except LimitExceeded as exc:
                yield self.error(None, exc.limit, str(exc))
                return
            except _Changed as exc:
                yield self.error(None, "changed", str(exc))
                return
            except OSError as exc:
                yield self._os_error(exc)
                return
            yield item

    def _read_whole(self, f: BinaryIO, before: os.stat_result) -> RawItem:
        """Digests, media type and (if wanted) content of the file, from one read."""
        if before.st_size < CHUNK:
            # Most files (photos among them): one read into one bytes object, which is hashed
            # and kept as it is (the chunked loop below copies every byte three times).
            self.tick()
            data = f.read(before.st_size + 1)  # a byte more than expected: growth shows
            if len(data) == before.st_size:
                return self._small_item(f, before, data)
            f.seek(0)  # a short read or a changed file: the general loop decides which
        sink = _Sink(self.limits.max_image_file_size)
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        head = b""
        media_type: str | None = None
        while True:
            self.tick()
            n = f.readinto(view)  # type: ignore[attr-defined]
            if not n:
                break
            chunk = bytes(view[:n])
            if media_type is None:
                head += chunk
                if len(head) < SNIFF_BYTES:
                    continue
                media_type = sniff(head)
                sink.keep(self._wanted_on_disk(media_type))
                chunk, head = head, b""
            sink.update(chunk)
            if sink.digests.size > before.st_size:
                raise _Changed(f"the file grew beyond {before.st_size} bytes while it was read")
        if media_type is None:  # smaller than SNIFF_BYTES
            media_type = sniff(head)
            sink.keep(self._wanted_on_disk(media_type))
            sink.update(head)
        _check_read_whole(f, before, sink.digests.size)
        return sink.item(None, media_type)

    def _small_item(self, f: BinaryIO, before: os.stat_result, data: bytes) -> RawItem:
        """The item of a file read whole in one call (`data` is exactly st_size bytes)."""
        media_type = sniff(data[:SNIFF_BYTES])
        keep = self._wanted_on_disk(media_type) and len(data) <= self.limits.max_image_file_size
        digests = Digests()
        digests.update(data)
        _check_read_whole(f, before, len(data))
        md5, sha1, sha256 = digests.hexdigests()
        return RawItem(None, len(data), md5, sha1, sha256, media_type, data if keep else None)

    # -- buffers and streams -----------------------------------------------------------------

    def bytes_items(self, data: bytes) -> Iterator[RawItem | ScanError]:
        """Members first (as read), then the buffer itself."""
        if len(data) > self.limits.max_file_size:
            yield self.error(
                None,
                "max_file_size",
                f"{len(data)} bytes, more than {self.limits.max_file_size}; not read",
            )
            return
        try:
            self.tick()
            media_type = sniff(data[:SNIFF_BYTES])
            digests = Digests()
            digests.update(data)
            md5, sha1, sha256 = digests.hexdigests()
            cap = (
                self.limits.max_buffered_video
                if is_video(media_type)
                else self.limits.max_image_file_size
            )
            keep = self.want_content(media_type) and len(data) <= cap
            item = RawItem(None, len(data), md5, sha1, sha256, media_type, data if keep else None)
            if is_archive(media_type):
                yield from self._top_archive(io.BytesIO(data), media_type)
        except LimitExceeded as exc:
            yield self.error(None, exc.limit, str(exc))
            return
        yield item

    def stream_items(self, stream: BinaryIO) -> Iterator[RawItem | ScanError]:
        """Members first (as read), then the stream's own item."""
        try:
            yield from self._member_blocks(self._stream_blocks(stream), None, 0)
        except _Abort as exc:
            yield exc.error
        except OSError as exc:
            yield self.error(None, "unreadable", f"cannot read: {exc.strerror or exc}")

    def _stream_blocks(self, stream: BinaryIO) -> Iterator[bytes]:
        """The stream's data, checked against the deadline and max_file_size."""
        size = 0
        while True:
            self.tick()
            block = stream.read(archives.BLOCK_SIZE)
            if not block:
                return
            size += len(block)
            if size > self.limits.max_file_size:
                raise LimitExceeded(
                    "max_file_size",
                    f"more than {self.limits.max_file_size} bytes; not read further",
                )
            yield block

    def _wanted_on_disk(self, media_type: str) -> bool:
        """Whether to hold a top-level file's bytes: a video on disk is decoded from its path."""
        return self.want_content(media_type) and not is_video(media_type)

    def _top_archive(self, f: BinaryIO, media_type: str) -> Iterator[RawItem | ScanError]:
        """Members of the file on disk (seekable: zip's central directory and 7z work)."""
        f.seek(0)
        source = _StreamSource(f, self.tick)
        try:
            yield from self._contents(source, None, 1, media_type)
        except _Abort as exc:
            yield exc.error
        except LimitExceeded as exc:  # reached while libarchive was reading the file itself
            yield self.error(None, exc.limit, str(exc))

    def _os_error(self, exc: OSError) -> ScanError:
        if isinstance(exc, FileNotFoundError):
            return self.error(None, "vanished", "the file disappeared before it could be read")
        if isinstance(exc, PermissionError):
            return self.error(None, "permission", f"permission denied: {exc.strerror}")
        return self.error(None, "unreadable", f"cannot read: {exc.strerror or exc}")

    # -- archives ----------------------------------------------------------------------------

    def _contents(
        self, source: _Source, where: str | None, depth: int, media_type: str
    ) -> Iterator[RawItem | ScanError]:
        """Open the archive `source` delivers (at nesting `depth`) and yield its members."""
        raw = media_type in archives.COMPRESSED_TYPES
        seek = source.seek if source.seekable else None
        try:
            with archives.open_archive(source.read, seek, raw=raw) as archive:
                yield from self._members(archive, source, where, depth)
        except ArchiveError as exc:  # raised while opening (the members handle their own)
            source.reraise()
            yield self.error(
                where,
                archives.error_reason(exc),
                f"cannot open the {media_type} archive: {archives.message(exc)}",
            )

    def _members(
        self, archive: ArchiveRead, source: _Source, where: str | None, depth: int
    ) -> Iterator[RawItem | ScanError]:
        meter = _Meter(self, archive)
        source.meter = meter
        prefix = f"{where}/" if where else ""
        entries = iter(archive)
        count = 0  # members of this archive read so far, for messages
        while True:
            try:
                self.tick()
                entry = next(entries)
                meter.sync()  # skipping the last member may have decompressed a lot
            except StopIteration:
                return
            except LimitExceeded as exc:
                raise _Abort(self.error(where, exc.limit, str(exc))) from exc
            except ArchiveError as exc:
                source.reraise()
                reason = archives.error_reason(exc)
                what = "encrypted" if reason == "encrypted" else "damaged"
                yield self.error(
                    where,
                    reason,
                    f"{what} after {count} members, the rest is not read: {archives.message(exc)}",
                )
                return
            if not entry.isreg or entry.islnk:
                continue  # directories, links, devices: no bytes of their own
            if archives.is_raw(archive):
                name = prefix + archives.raw_member_name(where or self.path)
            else:
                name = prefix + archives.member_name(entry)
            self.members += 1
            count += 1
            if self.members > self.limits.max_archive_members:
                raise _Abort(
                    self.error(
                        name,
                        "max_archive_members",
                        f"more than {self.limits.max_archive_members} archive members in this "
                        "file; the rest is not read",
                    )
                )
            if archives.is_encrypted(entry):
                yield self.error(name, "encrypted", "encrypted archive member; not read")
                continue
            if ffi.entry_size_is_set(entry._entry_p) and entry.size > self.limits.max_file_size:
                yield self.error(
                    name,
                    "max_file_size",
                    f"{entry.size} bytes, larger than {self.limits.max_file_size}; not read",
                )
                continue
            try:
                yield from self._member(archive, meter, name, depth)
            except ArchiveError as exc:
                source.reraise()
                yield self.error(
                    name, archives.error_reason(exc), f"cannot read: {archives.message(exc)}"
                )
                if archives.is_fatal(exc):
                    return

    def _member(
        self, archive: ArchiveRead, meter: _Meter, name: str, depth: int
    ) -> Iterator[RawItem | ScanError]:
        """The current entry: hashed, opened if it is an archive itself, then yielded."""
        yield from self._member_blocks(self._blocks(archive, meter), name, depth)

    def _member_blocks(
        self, blocks: Iterator[bytes], name: str | None, depth: int
    ) -> Iterator[RawItem | ScanError]:
        """An item delivered as blocks (an archive member, or a whole stream at depth 0):
        hashed, opened if it is an archive itself, then yielded."""
        sink = _Sink(self.limits.max_image_file_size)
        try:
            head = b""
            for block in blocks:
                head += block
                if len(head) >= SNIFF_BYTES:
                    break
            media_type = sniff(head)
            if is_video(media_type):
                sink.keep(self.want_content(media_type), self.limits.max_buffered_video)
            else:
                sink.keep(self.want_content(media_type))
            if is_archive(media_type):
                if depth + 1 > self.limits.max_archive_depth:
                    yield self.error(
                        name,
                        "max_archive_depth",
                        f"archive nested more than {self.limits.max_archive_depth} levels deep; "
                        "hashed, its members are not read",
                    )
                elif media_type in SEEKABLE_ONLY:
                    yield from self._seekable_member(head, blocks, sink, name, depth, media_type)
                    yield sink.item(name, media_type)
                    return
                else:
                    source = _MemberSource(head, blocks, sink)
                    yield from self._contents(source, name, depth + 1, media_type)
                    source.drain()
                    yield sink.item(name, media_type)
                    return
            sink.update(head)
            for block in blocks:
                sink.update(block)
            yield sink.item(name, media_type)
        except LimitExceeded as exc:
            if exc.limit != "max_file_size":
                raise _Abort(self.error(name, exc.limit, str(exc))) from exc
            yield self.error(name, exc.limit, str(exc))

    def _seekable_member(
        self,
        head: bytes,
        blocks: Iterator[bytes],
        sink: _Sink,
        name: str | None,
        depth: int,
        media_type: str,
    ) -> Iterator[RawItem | ScanError]:
        """A nested archive libarchive cannot stream (7z): opened from memory if small enough."""
        cap = self.limits.max_buffered_archive
        held: bytearray | None = bytearray()
        for block in itertools.chain((head,), blocks):
            sink.update(block)
            if held is not None:
                held += block
                if len(held) > cap:
                    held = None
        if held is None:
            yield self.error(
                name,
                "max_buffered_archive",
                f"a {media_type} archive inside another archive can only be read from memory, "
                f"up to {cap} bytes (max_buffered_archive); this one is larger: hashed, its "
                "members are not read",
            )
            return
        source = _StreamSource(io.BytesIO(held), self.tick)
        yield from self._contents(source, name, depth + 1, media_type)

    def _blocks(self, archive: ArchiveRead, meter: _Meter) -> Iterator[bytes]:
        """The current entry's data, checked against the deadline and the size limits."""
        size = 0
        for block in archives.read_blocks(archive):
            self.tick()
            size += len(block)
            if size > self.limits.max_file_size:
                raise LimitExceeded(
                    "max_file_size",
                    f"more than {self.limits.max_file_size} bytes; not read further",
                )
            meter.add(len(block))
            yield block


def _check_read_whole(f: BinaryIO, before: os.stat_result, read: int) -> None:
    """Raise _Changed unless `read` bytes are the whole file as it was when opened."""
    if read != before.st_size or _changed(before, os.fstat(f.fileno())):
        raise _Changed(
            f"size or modification time changed while it was read "
            f"({before.st_size} bytes at the start, {read} read)"
        )


def _changed(before: os.stat_result, after: os.stat_result) -> bool:
    return before.st_size != after.st_size or before.st_mtime_ns != after.st_mtime_ns
