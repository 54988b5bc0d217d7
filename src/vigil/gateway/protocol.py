"""ICAP messages (RFC 3507 and its errata): request heads, the Encapsulated header, chunked
bodies with preview and `ieof`, and the responses the service writes.

Written here: no maintained Python ICAP library exists (pyicap and icapserver are abandoned).
Everything read is bounded (head size, encapsulated header size, chunk-size line length), and
whatever does not parse is an `IcapError` carrying the ICAP status to answer with.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

# A request head (request line and ICAP headers) larger than this is refused (400).
MAX_HEAD = 64 * 1024
# The encapsulated HTTP headers together.
MAX_HTTP_HEADS = 256 * 1024
# A chunk-size line: hex digits and extensions ("0; ieof").
MAX_CHUNK_LINE = 1024
# Body bytes handed on at a time, at most: whatever has arrived, read in one go (the socket
# toward the proxy must not fill while a body streams in: Squid 5.7 then stops reading its
# origin).
PIECE = 1024 * 1024
# What the connection's reader buffers before it stops reading the socket (asyncio pauses the
# transport past twice this).
READ_BUFFER = 1024 * 1024

ENCAPSULATED_NAMES = frozenset(
    {"req-hdr", "res-hdr", "req-body", "res-body", "null-body", "opt-body"}
)
BODY_NAMES = frozenset({"req-body", "res-body", "null-body", "opt-body"})

# A chunk size: hex digits (at most 16), blanks around them tolerated.
_CHUNK_SIZE = re.compile(rb"[ \t]*[0-9a-fA-F]{1,16}[ \t]*")
# A header line `Name: value`: a name without colons, blanks around it or spaces and tabs in it.
_FIELD = re.compile(r"([^:\s](?:[^: \t]*[^:\s])?):(.*)", re.S)
# RFC 9110's token: what a method may be made of.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")

REASONS = {
    100: "Continue",
    200: "OK",
    204: "No Content",
    400: "Bad Request",
    404: "ICAP Service Not Found",
    405: "Method Not Allowed For Service",
    408: "Request Timeout",
    413: "Request Entity Too Large",
    500: "Server Error",
    501: "Method Not Implemented",
    503: "Service Overloaded",
    505: "ICAP Version Not Supported",
}


class IcapError(Exception):
    """A request that cannot be served: answered with `status`, then the connection closes
    (what follows a malformed message cannot be trusted to start a new one)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Headers:
    """Header fields in order, looked up without regard to case."""

    def __init__(self, fields: Iterable[tuple[str, str]] = ()) -> None:
        self.fields = list(fields)
        self._index: dict[str, list[str]] | None = None

    def _by_name(self) -> dict[str, list[str]]:
        if self._index is None:
            self._index = {}
            for k, v in self.fields:
                self._index.setdefault(k.lower(), []).append(v)
        return self._index

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first field named `name`."""
        values = self._by_name().get(name.lower())
        return values[0] if values else default

    def get_all(self, name: str) -> list[str]:
        """Every field named `name`, in order."""
        return list(self._by_name().get(name.lower(), ()))

    def __contains__(self, name: str) -> bool:
        return self.get(name) is not None


def parse_fields(lines: list[str], what: str) -> Headers:
    """`Name: value` lines (obsolete line folding joined) into Headers."""
    fields: list[tuple[str, str]] = []
    for line in lines:
        plain = _FIELD.fullmatch(line)
        if plain is not None:  # what the checks below accept, but for folded lines
            fields.append((plain[1], plain[2].strip()))
            continue
        if line[:1] in (" ", "\t") and fields:
            k, v = fields[-1]
            fields[-1] = (k, f"{v} {line.strip()}")
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip() or any(c in name for c in " \t"):
            raise IcapError(400, f"malformed {what} header line: {line[:80]!r}")
        fields.append((name, value.strip()))
    return Headers(fields)


@dataclass
class HttpHead:
    """An encapsulated HTTP request or response head, kept byte for byte for echoing."""

    raw: bytes
    start: str
    headers: Headers

    @classmethod
    def parse(cls, raw: bytes) -> HttpHead:
        """A head that ends with an empty line."""
        text = raw.decode("latin-1")
        lines = text.split("\r\n")
        while lines and lines[-1] == "":
            lines.pop()
        if not lines or not lines[0].strip():
            raise IcapError(400, "empty encapsulated HTTP head")
        return cls(raw, lines[0], parse_fields(lines[1:], "encapsulated HTTP"))

    def status(self) -> int | None:
        """A response's status code."""
        parts = self.start.split(" ", 2)
        if len(parts) >= 2 and parts[0].startswith("HTTP/") and parts[1].isdigit():
            return int(parts[1])
        return None

    def content_length(self) -> int | None:
        """Content-Length when present and valid."""
        value = self.headers.get("Content-Length")
        if value is None or not value.strip().isdigit():
            return None
        return int(value.strip())

    def whole_range(self) -> bool:
        """A 206 (partial content) that carries the whole object all the same
        (`Content-Range: bytes 0-N/N+1`, what a `Range: bytes=0-` request mostly gets); False
        for a piece, several pieces (multipart/byteranges) or a range that cannot be read."""
        value = (self.headers.get("Content-Range") or "").strip()
        unit, _, spec = value.partition(" ")
        span, _, total = spec.strip().partition("/")
        first, _, last = span.partition("-")
        if unit.lower() != "bytes" or not all(x.isdigit() for x in (first, last, total)):
            return False
        return int(first) == 0 and int(last) + 1 == int(total)

    def content_encodings(self) -> list[str]:
        """Content-Encoding codings, in the order they were applied."""
        out: list[str] = []
        for value in self.headers.get_all("Content-Encoding"):
            out += [c.strip().lower() for c in value.split(",") if c.strip()]
        return [c for c in out if c != "identity"]


@dataclass
class Request:
    """An ICAP request head and its encapsulated HTTP heads (the body is read separately)."""

    method: str
    uri: str
    service: str
    headers: Headers
    encapsulated: list[tuple[str, int]] = field(default_factory=list)
    req_head: HttpHead | None = None
    res_head: HttpHead | None = None

    @property
    def body_kind(self) -> str | None:
        """req-body, res-body or opt-body when a body follows; None for null-body or none."""
        if not self.encapsulated:
            return None
        name = self.encapsulated[-1][0]
        return None if name == "null-body" else name

    @property
    def preview(self) -> int | None:
        """The preview size the client announced, or None (no preview)."""
        value = self.headers.get("Preview")
        if value is None:
            return None
        if not value.strip().isdigit():
            raise IcapError(400, f"malformed Preview header: {value[:40]!r}")
        return int(value.strip())

    @property
    def allow_204(self) -> bool:
        """The client accepts 204 outside a preview."""
        return any(
            "204" in [p.strip() for p in v.split(",")] for v in self.headers.get_all("Allow")
        )

    @property
    def keep_alive(self) -> bool:
        """The client did not ask to close the connection after this request."""
        return (self.headers.get("Connection") or "").strip().lower() != "close"


def parse_encapsulated(value: str) -> list[tuple[str, int]]:
    """`req-hdr=0, res-hdr=137, res-body=296` into ordered (name, offset) pairs."""
    out: list[tuple[str, int]] = []
    for part in value.split(","):
        name, sep, offset = part.strip().partition("=")
        name = name.strip().lower()
        if not sep or name not in ENCAPSULATED_NAMES or not offset.strip().isdigit():
            raise IcapError(400, f"malformed Encapsulated header: {value[:120]!r}")
        out.append((name, int(offset.strip())))
    if not out:
        raise IcapError(400, "empty Encapsulated header")
    offsets = [o for _, o in out]
    if offsets != sorted(offsets) or offsets[0] != 0:
        raise IcapError(400, f"Encapsulated offsets out of order: {value[:120]!r}")
    if any(n in BODY_NAMES for n, _ in out[:-1]):
        raise IcapError(400, f"Encapsulated body not last: {value[:120]!r}")
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise IcapError(400, f"Encapsulated entity repeated: {value[:120]!r}")
    return out


async def read_request(reader: asyncio.StreamReader, first: bytes = b"") -> Request | None:
    """The next request head and its HTTP heads (`first`: its bytes already read); None at a
    clean end of the connection."""
    try:
        head = first + await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if not (first + e.partial).strip():
            return None
        raise IcapError(400, "connection ended inside a request head") from None
    except asyncio.LimitOverrunError:
        raise IcapError(400, f"request head over {MAX_HEAD} bytes") from None
    if len(head) > MAX_HEAD:
        raise IcapError(400, f"request head over {MAX_HEAD} bytes")
    # Empty lines between messages are tolerated (RFC 9112 2.2, also for ICAP clients).
    text = head.decode("latin-1").lstrip("\r\n")
    lines = text.split("\r\n")[:-2]
    if not lines:
        return None
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise IcapError(400, f"malformed request line: {lines[0][:120]!r}")
    method, uri, version = parts
    if not _TOKEN.fullmatch(method):
        raise IcapError(400, f"malformed method: {method[:40]!r}")
    if not version.startswith("ICAP/"):
        raise IcapError(400, f"not an ICAP request: {lines[0][:120]!r}")
    if version != "ICAP/1.0":
        raise IcapError(505, f"ICAP version not supported: {version[:20]!r}")
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme.lower() not in ("icap", "icaps"):  # icaps: Secure ICAP (over TLS)
        raise IcapError(400, f"not an icap:// URI: {uri[:120]!r}")
    path = rest[rest.find("/") :] if "/" in rest else "/"
    service = path.split("?", 1)[0].strip("/")
    headers = parse_fields(lines[1:], "ICAP")
    req = Request(method, uri, service, headers)
    value = headers.get("Encapsulated")
    if value is not None:
        req.encapsulated = parse_encapsulated(value)
    await _read_http_heads(reader, req)
    return req


async def _read_http_heads(reader: asyncio.StreamReader, req: Request) -> None:
    if not req.encapsulated:
        return
    end = req.encapsulated[-1][1] if req.encapsulated[-1][0] in BODY_NAMES else None
    if end is None:
        raise IcapError(400, "Encapsulated header names no body entity (null-body or *-body)")
    if end > MAX_HTTP_HEADS:
        raise IcapError(400, f"encapsulated HTTP headers over {MAX_HTTP_HEADS} bytes")
    raw = await reader.readexactly(end) if end else b""
    for (name, start), (_, stop) in zip(req.encapsulated, req.encapsulated[1:], strict=False):
        section = raw[start:stop]
        if name in ("req-hdr", "res-hdr"):
            if not section.endswith(b"\r\n\r\n"):
                raise IcapError(400, f"{name} does not end with an empty line")
            parsed = HttpHead.parse(section)
            if name == "req-hdr":
                req.req_head = parsed
            else:
                req.res_head = parsed


class ChunkedBody:
    """The chunked body of a request: pieces until the last chunk; `ieof` tells whether the
    preview's last chunk said the body ends there."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader
        self.left = 0  # bytes of the current chunk still to read
        self.done = False
        self.ieof = False

    async def piece(self) -> bytes | None:
        """The next piece of body, or None at the last chunk (of the preview or the body)."""
        if self.done:
            return None
        while self.left == 0:
            size, ext = await self._size_line()
            if size == 0:
                self.ieof = any(e.strip().lower() == b"ieof" for e in ext.split(b";"))
                await self._trailer()
                self.done = True
                return None
            self.left = size
        data = await self.reader.read(min(self.left, PIECE))
        if not data:
            raise asyncio.IncompleteReadError(b"", self.left)
        self.left -= len(data)
        if self.left == 0:
            crlf = await self.reader.readexactly(2)
            if crlf != b"\r\n":
                raise IcapError(400, "chunk data not followed by CRLF")
        return data

    def resume(self) -> None:
        """After a 100 Continue: the rest of the body follows as more chunks."""
        self.done = False

    async def _size_line(self) -> tuple[int, bytes]:
        """The chunk's size and its extensions (after the first `;`)."""
        try:
            line = await self.reader.readuntil(b"\r\n")
        except asyncio.LimitOverrunError:
            raise IcapError(400, "chunk-size line too long") from None
        if len(line) > MAX_CHUNK_LINE:
            raise IcapError(400, "chunk-size line too long")
        size, _, ext = line[:-2].partition(b";")
        if not _CHUNK_SIZE.fullmatch(size):
            text = line[:-2].decode("latin-1")
            raise IcapError(400, f"malformed chunk size: {text[:40]!r}")
        return int(size, 16), ext

    async def _trailer(self) -> None:
        # The last chunk ends with an empty line (trailers, which ICAP does not use, skipped).
        for _ in range(64):
            line = await self.reader.readuntil(b"\r\n")
            if line == b"\r\n":
                return
        raise IcapError(400, "too many trailer lines after the last chunk")

    async def drain(self) -> int:
        """Read and drop what is left of the body; the bytes dropped."""
        n = 0
        while (data := await self.piece()) is not None:
            n += len(data)
        return n


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body."""
    return b"%x\r\n%s\r\n" % (len(data), data) if data else b""


LAST_CHUNK = b"0\r\n\r\n"


def response(
    status: int,
    headers: Iterable[tuple[str, str]],
    sections: Iterable[tuple[str, bytes]] = (),
    body: str | None = None,
) -> bytes:
    """An ICAP response head with its encapsulated HTTP heads; `body` names the body entity
    that follows (res-body, req-body) or None (null-body)."""
    lines = [f"ICAP/1.0 {status} {REASONS.get(status, 'Unknown')}"]
    lines += [f"{k}: {v}" for k, v in headers]
    parts: list[str] = []
    blob = b""
    for name, raw in sections:
        parts.append(f"{name}={len(blob)}")
        blob += raw
    parts.append(f"{body or 'null-body'}={len(blob)}")
    if status != 100:
        lines.append("Encapsulated: " + ", ".join(parts))
    else:
        blob = b""
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + blob
