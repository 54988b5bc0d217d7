"""Bodies as the gateway holds them: in memory up to a limit, spilled to a temporary file
above it; Content-Encoding (gzip, deflate, br) undone for fingerprinting, bounded; the
parts of a multipart/form-data upload."""

from __future__ import annotations

import io
import os
import tempfile
import zlib
from collections.abc import Callable, Iterator
from typing import IO, Any

from vigil.errors import VigilError

PIECE = 64 * 1024


class Unsupported(VigilError):
    """A Content-Encoding the gateway cannot undo."""


class TooLarge(VigilError):
    """A decoded body over the largest object fingerprinted."""


class Body:
    """Raw body bytes as received: in memory up to `memory` bytes, then in a temporary file
    (removed when the last holder closes it: the gateway, and a worker fingerprinting it)."""

    def __init__(self, memory: int, directory: str | None = None) -> None:
        self.memory = memory
        self.directory = directory
        self.buffer = bytearray()
        self.file: IO[bytes] | None = None
        self.path: str | None = None
        self.size = 0
        self.holders = 1

    def write(self, data: bytes) -> None:
        """Append body bytes."""
        if self.file is None and len(self.buffer) + len(data) > self.memory:
            self.file = tempfile.NamedTemporaryFile(  # noqa: SIM115 — closed by close()
                prefix="vigil-body-", dir=self.directory, delete=False
            )
            self.path = self.file.name
            self.file.write(self.buffer)
            self.buffer = bytearray()
        if self.file is not None:
            self.file.write(data)
        else:
            self.buffer += data
        self.size += len(data)

    def head(self, n: int) -> bytes:
        """The first n bytes."""
        if self.file is None:
            return bytes(self.buffer[:n])
        self.file.flush()
        return os.pread(self.file.fileno(), n, 0)

    def pieces(self) -> Iterator[bytes]:
        """The body from its start, in pieces."""
        reader = self.reader()
        try:
            while data := reader.read(PIECE):
                yield data
        finally:
            reader.close()

    def reader(self) -> IO[bytes]:
        """A reader of the body with its own position and lifetime."""
        if self.file is None:
            return io.BytesIO(bytes(self.buffer))
        self.file.flush()
        return io.BufferedReader(_PositionalReader(os.dup(self.file.fileno()), self.size))

    def data(self) -> bytes | None:
        """The body's bytes when held in memory (None when in a file: see `path`)."""
        if self.file is not None:
            self.file.flush()
            return None
        return bytes(self.buffer)

    @property
    def spilled(self) -> bool:
        """The body went to disk."""
        return self.file is not None

    def hold(self) -> Body:
        """One more holder: the body stays until each has closed it."""
        self.holders += 1
        return self

    def close(self) -> None:
        """Drop this holder's hold; the last one drops the body (its file too)."""
        self.holders -= 1
        if self.holders > 0:
            return
        self.buffer = bytearray()
        if self.file is not None:
            self.file.close()
            self.file = None
        if self.path is not None:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            self.path = None


class _PositionalReader(io.RawIOBase):
    """A file descriptor of its own, read with pread from its own position."""

    def __init__(self, fd: int, size: int) -> None:
        self.fd = fd
        self.size = size
        self.pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        want = min(len(buffer), self.size - self.pos)
        if want <= 0:
            return 0
        data = os.pread(self.fd, want, self.pos)
        buffer[: len(data)] = data
        self.pos += len(data)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            os.close(self.fd)
        super().close()


def _zlib(wbits: int) -> Callable[[], Any]:
    return lambda: zlib.decompressobj(wbits)


class _Stage:
    """One coding undone, in pieces, never giving more than `limit` bytes in total."""

    def __init__(self, coding: str, limit: int) -> None:
        self.coding = coding
        self.limit = limit
        self.out = 0
        self.pending = b""
        self.raw_deflate = False
        if coding in ("gzip", "x-gzip"):
            self.make: Callable[[], Any] = _zlib(16 + zlib.MAX_WBITS)
        elif coding == "deflate":
            self.make = _zlib(zlib.MAX_WBITS)
        elif coding == "br":
            import brotli

            self.make = brotli.Decompressor
        else:
            raise Unsupported(f"Content-Encoding {coding!r} cannot be undone")
        self.obj: Any = self.make()

    def feed(self, data: bytes) -> bytes:
        """Decoded bytes of the next input bytes."""
        try:
            out = self._feed(data)
        except zlib.error:
            if self.coding == "deflate" and not self.out and not self.raw_deflate:
                # "deflate" as some servers send it: raw, without the zlib wrapper.
                self.raw_deflate = True
                self.obj = zlib.decompressobj(-zlib.MAX_WBITS)
                out = self._feed(data)
            else:
                raise
        self.out += len(out)
        if self.out > self.limit:
            raise TooLarge(f"decoded body over {self.limit} bytes")
        return out

    def _feed(self, data: bytes) -> bytes:
        if self.coding == "br":
            return self._brotli(data)
        out = []
        left = self.limit - self.out + 1
        buf = data
        while buf:
            piece = self.obj.decompress(buf, left)
            out.append(piece)
            left -= len(piece)
            if left <= 0:
                break
            buf = self.obj.unconsumed_tail
            if self.obj.eof:
                # gzip allows several members one after the other.
                rest = self.obj.unused_data + buf
                if not rest.strip(b"\0"):
                    break
                self.obj = self.make()
                buf = rest
        return b"".join(out)

    def _brotli(self, data: bytes) -> bytes:
        # brotli >= 1.2 bounds each call's output: a small input cannot expand unchecked.
        out = [self.obj.process(data, output_buffer_limit=PIECE)]
        total = len(out[0])
        while not self.obj.can_accept_more_data() and self.out + total <= self.limit:
            out.append(self.obj.process(b"", output_buffer_limit=PIECE))
            total += len(out[-1])
        return b"".join(out)


class Decoded:
    """A readable stream of a body with its Content-Encoding undone (the codings in the order
    they were applied), never longer than `limit` bytes (TooLarge past it)."""

    def __init__(self, raw: IO[bytes], codings: list[str], limit: int) -> None:
        self.raw = raw
        self.stages = [_Stage(c, limit) for c in reversed(codings)]
        self.buffer = bytearray()
        self.eof = False

    def read(self, n: int = -1) -> bytes:
        """Up to n decoded bytes (all of them for n < 0); b'' at the end."""
        while not self.eof and (n < 0 or len(self.buffer) < n):
            data = self.raw.read(PIECE)
            if not data:
                self.eof = True
                break
            for stage in self.stages:
                data = stage.feed(data)
            self.buffer += data
        if n < 0:
            n = len(self.buffer)
        out = bytes(self.buffer[:n])
        del self.buffer[:n]
        return out


def decode_head(head: bytes, codings: list[str], limit: int) -> bytes | None:
    """The decoded start of a body from its first raw bytes (a preview); None when it cannot
    be decoded (an unknown coding, or bytes that are not what the coding says)."""
    if not codings:
        return head
    try:
        data = head
        for coding in reversed(codings):
            data = _Stage(coding, limit).feed(data)
        return data
    except TooLarge:
        return None
    except Exception:  # noqa: BLE001 — zlib.error, brotli.error, zstd's, Unsupported
        return None


def multipart_boundary(content_type: str | None) -> bytes | None:
    """The boundary of a multipart/form-data (or other multipart) Content-Type."""
    if not content_type:
        return None
    from python_multipart.multipart import parse_options_header

    kind, params = parse_options_header(content_type)
    if not kind.lower().startswith(b"multipart/"):
        return None
    boundary = params.get(b"boundary")
    return boundary or None


class Part:
    """One part of a multipart upload."""

    def __init__(self, memory: int) -> None:
        self.name: str | None = None
        self.filename: str | None = None
        self.body = Body(memory)
        self._header_field = b""
        self._header_value = b""
        self.headers: dict[str, str] = {}


def split_multipart(raw: IO[bytes], boundary: bytes, memory: int, limit: int) -> list[Part]:
    """The parts of a multipart body (python-multipart's streaming parser), each held as a
    Body; parts whose combined size passes `limit` raise TooLarge."""
    from python_multipart.multipart import MultipartParser, parse_options_header

    parts: list[Part] = []
    total = 0

    def begin() -> None:
        parts.append(Part(memory))

    def data(buf: bytes, start: int, end: int) -> None:
        nonlocal total
        total += end - start
        if total > limit:
            raise TooLarge(f"upload over {limit} bytes")
        parts[-1].body.write(buf[start:end])

    def header_field(buf: bytes, start: int, end: int) -> None:
        parts[-1]._header_field += buf[start:end]

    def header_value(buf: bytes, start: int, end: int) -> None:
        parts[-1]._header_value += buf[start:end]

    def header_end() -> None:
        p = parts[-1]
        key = p._header_field.decode("latin-1").strip().lower()
        p.headers[key] = p._header_value.decode("utf-8", "replace").strip()
        if key == "content-disposition":
            _, params = parse_options_header(p._header_value)
            if b"name" in params:
                p.name = params[b"name"].decode("utf-8", "replace")
            if b"filename" in params:
                p.filename = params[b"filename"].decode("utf-8", "replace")
        p._header_field = p._header_value = b""

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": begin,
            "on_part_data": data,
            "on_header_field": header_field,
            "on_header_value": header_value,
            "on_header_end": header_end,
        },
    )
    try:
        while piece := raw.read(PIECE):
            parser.write(piece)
        parser.finalize()
    except BaseException:
        for p in parts:
            p.body.close()
        raise
    return parts
