"""md5sum / sha1sum / sha256sum output and plain one-hash-per-line lists.

Lines are `HASH  name` (text mode), `HASH *name` (binary mode), a bare `HASH`, or the BSD tag
style `MD5 (name) = HASH`. A first line naming the type (`MD5`, `SHA-1`, `SHA256`) fixes the kind
of every hash. Otherwise 32 hex characters are MD5 and 40 are SHA-1; 64 are SHA-256 only in the
sha256sum format, because a bare 64-hex value could as well be a PDQ hash.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import BinaryIO

from vigil.hashsets.entry import HASH_KINDS, Entry, ParseReport
from vigil.hashsets.formats import KIND_BY_LENGTH, kind_from_name, text_stream

FORMATS = ("md5sum", "sha1sum", "sha256sum")

# `HASH`, `HASH  name`, `HASH *name`; a leading backslash means md5sum escaped the name.
SUM_LINE = re.compile(r"(?P<escaped>\\?)(?P<hash>[0-9A-Fa-f]+)(?:(?: \*| {1,2}|\t)(?P<name>.*))?")
TAG_LINE = re.compile(
    r"(?P<tag>MD5|SHA1|SHA-1|SHA256|SHA-256) ?\((?P<name>.*)\) ?= ?(?P<hash>[0-9A-Fa-f]+)"
)


def type_line(line: str) -> str | None:
    """The kind a header line such as `MD5` or `SHA-1` names (PDQ included), or None."""
    text = line.strip()
    if not text or len(text) > 16:
        return None
    return kind_from_name(text)


def parse(stream: BinaryIO, report: ParseReport, format: str = "md5sum") -> Iterator[Entry]:
    """Entries of a checksum list; `format` says whether 64 hex characters are SHA-256."""
    by_length = dict(KIND_BY_LENGTH)
    if format == "sha256sum":
        by_length[64] = "sha256"
    declared: str | None = None
    seen_record = False
    for number, raw in enumerate(text_stream(stream), start=1):
        line = raw.rstrip("\r\n")
        if not line.strip() or line.startswith("#"):
            continue
        if not seen_record and declared is None:
            declared = type_line(line)
            if declared is not None:
                if declared == "pdq":
                    report.problem(number, "a PDQ list; read it with --format pdq")
                    declared = None
                continue
        seen_record = True
        entry = parse_line(line, number, report, declared, by_length)
        if entry is not None:
            yield entry


def parse_line(
    line: str, number: int, report: ParseReport, declared: str | None, by_length: dict[int, str]
) -> Entry | None:
    """One line as an entry, or None after reporting why it is malformed."""
    found = SUM_LINE.fullmatch(line)
    if found is None:
        found = TAG_LINE.fullmatch(line.strip())
        if found is None:
            report.problem(number, f"not a checksum line: {line[:80]!r}")
            return None
        tag_kind = kind_from_name(found["tag"])
        declared = declared or tag_kind
    value = found["hash"].lower()
    kind = declared or by_length.get(len(value))
    if kind is None:
        if len(value) == 64:
            report.problem(number, "64 hex characters (SHA-256 or PDQ?) in a list of other hashes")
        else:
            report.problem(number, f"{len(value)} hex characters is not an MD5, SHA-1 or SHA-256")
        return None
    if len(value) != HASH_KINDS[kind]:
        report.problem(
            number, f"{len(value)} hex characters, expected {HASH_KINDS[kind]} for {kind}"
        )
        return None
    name = found["name"]
    meta: dict[str, str] = {}
    if name:
        if found.groupdict().get("escaped"):
            name = _unescape(name)
        meta["file_name"] = name
    return Entry(hashes={kind: value}, meta=meta)


def _unescape(name: str) -> str:
    # md5sum writes `\\` for a backslash and `\n` for a newline when it prefixes the line with `\`.
    out: list[str] = []
    chars = iter(name)
    for char in chars:
        if char == "\\":
            nxt = next(chars, "")
            out.append({"n": "\n", "r": "\r", "\\": "\\"}.get(nxt, "\\" + nxt))
        else:
            out.append(char)
    return "".join(out)
