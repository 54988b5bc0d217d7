"""Hash-list formats: one module per format (or family), each turning a byte stream into entries.

Every parser takes a binary stream (already decompressed, UTF-8, byte-order mark removed) and
the `ParseReport` to fill, and yields `Entry` objects lazily. Each module declares its formats
(`LIST_FORMATS`, vigil.hashsets.listformat.ListFormat) beside its parser; vigil.hashsets.registry
collects them. What the formats share lives here: checking a hash value and naming a hash kind
(vigil.kinds) from a column or header name.
"""

from __future__ import annotations

import io
import re
from typing import BinaryIO

from vigil.hashsets.entry import HASH_KINDS
from vigil.kinds import SINGLE

_HEX = re.compile(r"[0-9a-f]*\Z")
_NOT_ALNUM = re.compile(r"[^a-z0-9]")

# Hash kinds a length in hex characters says without doubt (no other kind has it); 64 is
# SHA-256 or PDQ.
KIND_BY_LENGTH: dict[int, str] = {
    k.hex_width: k.name
    for k in SINGLE
    if [other.hex_width for other in SINGLE].count(k.hex_width) == 1
}

# Names a column or a type line may give a hash kind, compared without case or punctuation.
_KIND_NAMES: dict[str, str] = {_NOT_ALNUM.sub("", k.name): k.name for k in SINGLE}
_KIND_SUFFIXES = ("hash", "sum", "value", "digest")


def clean_hash(value: object, kind: str) -> str:
    """The value as lowercase hex of the length `kind` needs; ValueError says what is wrong."""
    if not isinstance(value, str):
        raise ValueError(f"{kind} is not a string: {value!r}")
    text = value.strip().lower()
    expected = HASH_KINDS[kind]
    if not _HEX.match(text):
        raise ValueError(f"{kind} is not hexadecimal: {_shorten(value)!r}")
    if len(text) != expected:
        raise ValueError(f"{kind} has {len(text)} hex characters, expected {expected}")
    return text


def kind_from_name(name: str) -> str | None:
    """The hash kind a column or type-line name means ('SHA-1', 'md5 hash' ...), or None."""
    key = _NOT_ALNUM.sub("", name.lower())
    if key in _KIND_NAMES:
        return _KIND_NAMES[key]
    for suffix in _KIND_SUFFIXES:
        if key.endswith(suffix) and key[: -len(suffix)] in _KIND_NAMES:
            return _KIND_NAMES[key[: -len(suffix)]]
    return None


def text_stream(stream: BinaryIO) -> io.TextIOWrapper:
    """The stream as text: UTF-8, undecodable bytes replaced, line endings left as they are."""
    return io.TextIOWrapper(stream, encoding="utf-8", errors="replace", newline="")


def _shorten(value: str, limit: int = 80) -> str:
    return value if len(value) <= limit else value[:limit] + "..."
