"""The ICAP parser and the body decoders over hostile bytes, in process (hypothesis): a request,
an IcapError (answered with its status) or the end of the input, nothing else; decoders give
bytes or their named errors."""

from __future__ import annotations

import asyncio
import gzip
import io
import zlib

import brotli
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.gateway import protocol
from vigil.gateway.content import Decoded, TooLarge, Unsupported, decode_head, split_multipart
from vigil.gateway.protocol import ChunkedBody, IcapError, Request

VALID = (
    b"RESPMOD icap://127.0.0.1/respmod ICAP/1.0\r\nHost: x\r\nPreview: 4\r\nAllow: 204\r\n"
    b"Encapsulated: req-hdr=0, res-hdr=31, res-body=69\r\n\r\n"
    b"GET http://o.test/ HTTP/1.1\r\n\r\n"
    b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n"
    b"4\r\nabcd\r\n0; ieof\r\n\r\n"
)


def parse(data: bytes) -> tuple[Request | None, bytes]:
    """Feed the bytes (then the end) to the parser; the request and its body, if any."""

    async def run() -> tuple[Request | None, bytes]:
        reader = asyncio.StreamReader(limit=protocol.MAX_HEAD)
        reader.feed_data(data)
        reader.feed_eof()
        req = await protocol.read_request(reader)
        body = b""
        if req is not None and req.body_kind is not None:
            chunks = ChunkedBody(reader)
            while (piece := await chunks.piece()) is not None:
                body += piece
        return req, body

    return asyncio.run(run())


def test_the_valid_request_parses() -> None:
    req, body = parse(VALID)
    assert req is not None and req.method == "RESPMOD" and req.service == "respmod"
    assert req.preview == 4 and req.allow_204
    assert req.res_head is not None and req.res_head.content_length() == 9
    assert body == b"abcd"


def _mutated() -> st.SearchStrategy[bytes]:
    def mutate(ops: list[tuple[int, int, bytes]]) -> bytes:
        data = bytearray(VALID)
        for kind, pos, blob in ops:
            i = pos % (len(data) + 1)
            if kind == 0:
                data[i : i + 1] = blob
            elif kind == 1:
                data[i:i] = blob
            else:
                del data[i : i + len(blob) + 1]
        return bytes(data)

    op = st.tuples(st.integers(0, 2), st.integers(0, 10_000), st.binary(max_size=12))
    return st.lists(op, min_size=1, max_size=8).map(mutate)


@settings(max_examples=400, deadline=None)
@given(data=st.one_of(_mutated(), st.binary(max_size=400)))
def test_hostile_requests_parse_or_fail_cleanly(data: bytes) -> None:
    try:
        req, _ = parse(data)
    except IcapError as e:
        assert e.status in protocol.REASONS and e.status >= 400
    except asyncio.IncompleteReadError:
        pass  # the input ended inside a message: the connection is simply closed
    else:
        if req is not None:
            assert req.method and req.uri.lower().startswith("icap://")


@settings(max_examples=300, deadline=None)
@given(
    data=st.one_of(
        st.binary(max_size=300),
        st.binary(max_size=200).map(gzip.compress).map(lambda b: b[: len(b) // 2 + 5]),
        st.binary(max_size=200).map(brotli.compress),
        st.binary(max_size=200).map(zlib.compress),
    ),
    coding=st.sampled_from(["gzip", "deflate", "br", "zstd", "gzip, br"]),
)
def test_decoders_give_bytes_or_named_errors(data: bytes, coding: str) -> None:
    codings = [c.strip() for c in coding.split(",")]
    head = decode_head(data, codings, 10_000)
    assert head is None or isinstance(head, bytes)
    try:
        out = Decoded(io.BytesIO(data), codings, 10_000).read()
    except (TooLarge, Unsupported, zlib.error, brotli.error):
        return
    assert len(out) <= 10_000


@settings(max_examples=300, deadline=None)
@given(
    body=st.binary(max_size=400),
    boundary=st.binary(min_size=1, max_size=20).filter(lambda b: b"\r" not in b and b"\n" not in b),
)
def test_multipart_gives_parts_or_fails_cleanly(body: bytes, boundary: bytes) -> None:
    from python_multipart.exceptions import MultipartParseError

    raw = b"--" + boundary + b"\r\n" + body
    try:
        parts = split_multipart(io.BytesIO(raw), boundary, 1024, 10_000)
    except (MultipartParseError, TooLarge):
        return
    for p in parts:
        assert p.body.size <= 10_000
        p.body.close()


def _checked_fields(lines: list[str]) -> list[tuple[str, str]] | None:
    """Header lines as the rules read them, one check after another (the parser's plain-line
    pattern must agree): None where a line is refused."""
    fields: list[tuple[str, str]] = []
    for line in lines:
        if line[:1] in (" ", "\t") and fields:
            k, v = fields[-1]
            fields[-1] = (k, f"{v} {line.strip()}")
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip() or any(c in name for c in " \t"):
            return None
        fields.append((name, value.strip()))
    return fields


_HEADER_CHARS = st.sampled_from(list("aZ-_:; \t\x0b\x0c\x1c\x85\xa0\r\n,=0é"))


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.text(_HEADER_CHARS, max_size=12), max_size=5))
def test_header_lines_are_read_by_the_rules(lines: list[str]) -> None:
    expected = _checked_fields(lines)
    try:
        got = protocol.parse_fields(lines, "ICAP").fields
    except IcapError as e:
        assert expected is None, (lines, str(e))
        assert e.status == 400
    else:
        assert got == expected, lines


def test_header_lookup_ignores_case_and_keeps_order() -> None:
    headers = protocol.parse_fields(["Allow: 204", "allow: trailers", "X-Client-IP: ::1"], "ICAP")
    assert headers.get("ALLOW") == "204"
    assert headers.get_all("allow") == ["204", "trailers"]
    assert headers.get("x-client-ip") == "::1" and "X-CLIENT-IP" in headers
    assert headers.get("Preview") is None and headers.get("Preview", "0") == "0"
