"""Which hash-list format a file is, from its first bytes (never from its name).

Each format declares its part of detection (vigil.hashsets.listformat.Detector); here the
rules of all of them are tried in priority order, after the checks every file gets.
"""

from __future__ import annotations

import re

from vigil.errors import HashListError
from vigil.hashsets import registry
from vigil.hashsets.formats.sums import ambiguous_64
from vigil.hashsets.listformat import SAMPLE_LINES, Sample

__all__ = ["BINARY_SHARE", "SAMPLE_LINES", "ambiguous_64", "check_content", "detect"]

# Share of control characters (or undecodable bytes) above which a file is binary.
BINARY_SHARE = 0.01

_CONTROL = re.compile(rb"[\x00-\x08\x0e-\x1f\x7f]")
_MAGIC = {
    b"SQLite format 3\x00": "a SQLite database (NSRL RDS 3 is one): export it to CSV first",
    b"PK\x03\x04": "a ZIP archive: unpack the hash list from it first",
    b"%PDF": "a PDF document, not a hash list",
}


def check_content(head: bytes, name: str) -> None:
    """Raise HashListError when the (decompressed) head is empty or not text at all."""
    for magic, what in _MAGIC.items():
        if head.startswith(magic):
            raise HashListError(f"{name}: {what}")
    if not head.strip():
        raise HashListError(f"{name}: empty file, not a hash list")
    controls = len(_CONTROL.findall(head))
    undecodable = head.decode("utf-8", errors="replace").count("\ufffd")
    if b"\x00" in head or controls + undecodable > 4 + BINARY_SHARE * len(head):
        raise HashListError(f"{name}: binary data, not a hash list")


def detect(head: bytes, name: str, complete: bool = True) -> str:
    """The format of a file whose first bytes (decompressed, BOM removed) are `head`.

    `complete` says the head is the whole file (otherwise its last line may be cut short).
    Raises HashListError when no format fits, AmbiguousFormatError when two could.
    """
    check_content(head, name)
    sample = Sample(head, name, complete)
    for rule, fmt in registry.DETECTION:
        if rule.claims(sample):
            return fmt.name
    raise HashListError(f"{name}: not a recognised hash list (first line: {sample.first[:80]!r})")
