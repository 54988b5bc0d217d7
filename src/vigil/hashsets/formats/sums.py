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

from vigil.errors import AmbiguousFormatError, HashListError
from vigil.hashsets.entry import HASH_KINDS, Entry, ParseReport
from vigil.hashsets.formats import KIND_BY_LENGTH, kind_from_name, text_stream
from vigil.hashsets.listformat import Detector, ListFormat, Reading, Sample, declares
from vigil.kinds import MD5, PDQ, SHA1, SHA256

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
        by_length[SHA256.hex_width] = SHA256.name
    declared: str | None = None
    seen_record = False
    for number, raw in enumerate(text_stream(stream), start=1):
        line = raw.rstrip("\r\n")
        if not line.strip() or line.startswith("#"):
            continue
        if not seen_record and declared is None:
            declared = type_line(line)
            if declared is not None:
                if declared == PDQ.name:
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


# -- detection -----------------------------------------------------------------------------------


def ambiguous_64(name: str) -> AmbiguousFormatError:
    """The error for a list of bare 64-hex values."""
    return AmbiguousFormatError(
        f"{name}: 64 hex characters could be SHA-256 or PDQ; "
        "say which with --format sha256sum or --format pdq"
    )


def sum_format(sample: Sample) -> str | None:
    """md5sum, sha1sum or sha256sum when the first line is a checksum line, from the hash
    lengths (and names) of the first lines; None when it is not one."""
    first = sample.first
    if not (SUM_LINE.fullmatch(first) or TAG_LINE.fullmatch(first)):
        return None
    lines, name = sample.lines, sample.name
    lengths: set[int] = set()
    bare_64 = named_64 = False
    for line in lines:
        found = SUM_LINE.fullmatch(line)
        if found is not None:
            length = len(found["hash"])
            if length == 64:
                if found["name"]:
                    named_64 = True
                else:
                    bare_64 = True
        else:
            found = TAG_LINE.fullmatch(line.strip())
            if found is None:
                continue
            length = len(found["hash"])
            if length == 64 and kind_from_name(found["tag"]) == SHA256.name:
                named_64 = True
        lengths.add(length)
    if 64 in lengths:
        # `HASH  name` is sha256sum output; a bare 64-hex value may be a PDQ hash.
        if bare_64 or not named_64:
            raise ambiguous_64(name)
        return "sha256sum"
    if 32 in lengths:
        return "md5sum"
    if 40 in lengths:
        return "sha1sum"
    found_lengths = ", ".join(str(n) for n in sorted(lengths))
    raise HashListError(
        f"{name}: hex values of {found_lengths} characters are not MD5 (32), SHA-1 (40) "
        "or SHA-256/PDQ (64)"
    )


# -- declaration ---------------------------------------------------------------------------------


def _declared(format: str, kind: str, example: list[str], bad: str) -> ListFormat:
    def parse_as(stream: BinaryIO, report: ParseReport, _reading: Reading) -> Iterator[Entry]:
        return parse(stream, report, format=format)

    return ListFormat(
        name=format,
        parse=parse_as,
        # A first line naming the kind, then (after the formats whose lines are more telling)
        # checksum lines of the kind's length.
        detect=(Detector(300, declares(kind)), Detector(800, lambda s: sum_format(s) == format)),
        example="".join(f"{line}\n" for line in example),
        malformed_example="".join(f"{line}\n" for line in (example[0], bad, *example[1:])),
    )


LIST_FORMATS = (
    _declared(
        "md5sum",
        MD5.name,
        [
            "2c1743a391305fbf367df8e4f069f9f9  alpha.jpg",
            "fd9ab41e47a9ef4f6477a8a000bf404f *bravo.jpg",
        ],
        "2c1743a391305fbf367df8e4f069f9f  short.jpg",
    ),
    _declared(
        "sha1sum",
        SHA1.name,
        [
            "be76331b95dfc399cd776d2fc68021e0db03cc4f  alpha.jpg",
            "SHA1 (bravo.jpg) = 962665711e0e6ff33104712f82068162cdb1f9c0",
        ],
        "not a checksum line",
    ),
    _declared(
        "sha256sum",
        SHA256.name,
        [
            "8ed3f6ad685b959ead7022518e1af76cd816f8e8ec7ccdda1ed4018e8f2223f8  alpha.jpg",
            "f144a6907dc4284d1f9fe6a7d9b9ff53c02c1d07ba68f24d413d7ff7f757a782  bravo.jpg",
        ],
        "f144a6907dc4284d1f9fe6a7d9b9ff53c02c1d07ba68f24d413d7ff7f757a78  cut.jpg",
    ),
)
