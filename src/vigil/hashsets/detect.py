"""Which hash-list format a file is, from its first bytes (never from its name)."""

from __future__ import annotations

import re

from vigil.errors import AmbiguousFormatError, HashListError
from vigil.hashsets.formats import (
    csvlist,
    hashkeeper,
    kind_from_name,
    nsrl,
    pdqlist,
    sums,
    vpdqcsv,
    vpdqlist,
)

# Lines looked at to decide between plain-list formats.
SAMPLE_LINES = 1000
# Share of control characters (or undecodable bytes) above which a file is binary.
BINARY_SHARE = 0.01

_NCMEC_MARK = re.compile(
    rb"hashsharing\.ncmec\.org|<(?:\w+:)?(?:queryResult|image|video|deletedImage|deletedVideo)[\s>]"
)
_VICS_MARK = re.compile(rb'"(?:odata\.metadata|@odata\.context|MediaID|MD5|SHA1|Media)"')
_CONTROL = re.compile(rb"[\x00-\x08\x0e-\x1f\x7f]")
_SUM_KIND = {"md5": "md5sum", "sha1": "sha1sum", "sha256": "sha256sum", "pdq": "pdq"}
_MAGIC = {
    b"SQLite format 3\x00": "a SQLite database (NSRL RDS 3 is one): export it to CSV first",
    b"PK\x03\x04": "a ZIP archive: unpack the hash list from it first",
    b"%PDF": "a PDF document, not a hash list",
}


def ambiguous_64(name: str) -> AmbiguousFormatError:
    """The error for a list of bare 64-hex values."""
    return AmbiguousFormatError(
        f"{name}: 64 hex characters could be SHA-256 or PDQ; "
        "say which with --format sha256sum or --format pdq"
    )


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
    start = head.lstrip()[:1]
    if start in (b"{", b"["):
        if _VICS_MARK.search(head) is None:
            raise HashListError(f"{name}: JSON, but not a VICS (Project VIC) hash list")
        return "vics"
    if start == b"<":
        if _NCMEC_MARK.search(head) is None:
            raise HashListError(f"{name}: XML, but not an NCMEC hash-sharing list")
        return "ncmec"
    lines = head.decode("utf-8", errors="replace").splitlines()
    if not complete and len(lines) > 1:
        lines.pop()
    lines = [line for line in lines if line.strip() and not line.startswith("#")]
    if not lines:
        raise HashListError(f"{name}: no hash lines, only comments")
    return _detect_text(lines[:SAMPLE_LINES], name)


def _detect_text(lines: list[str], name: str) -> str:
    first = lines[0].strip()
    declared = sums.type_line(first)
    if declared is not None:
        return _SUM_KIND[declared]
    if vpdqlist.LINE.fullmatch(first):
        return "vpdq"
    cells = csvlist.split_header(first)
    if vpdqcsv.is_header(cells):
        return "vpdq-csv"
    if nsrl.is_header(cells):
        return "nsrl"
    if hashkeeper.is_header(cells):
        return "hashkeeper"
    if len(cells) > 1 and any(kind_from_name(cell) for cell in cells):
        return "csv"
    if pdqlist.PDQ_LINE.fullmatch(first):
        return "pdq"
    if sums.SUM_LINE.fullmatch(first) or sums.TAG_LINE.fullmatch(first):
        return _detect_sums(lines, name)
    if len(cells) > 1:
        raise HashListError(
            f"{name}: CSV header names no hash column (expected md5, sha1, sha256 or pdq): "
            f"{cells[:12]}"
        )
    raise HashListError(f"{name}: not a recognised hash list (first line: {first[:80]!r})")


def _detect_sums(lines: list[str], name: str) -> str:
    """md5sum, sha1sum or sha256sum from the hash lengths (and names) of the first lines."""
    lengths: set[int] = set()
    bare_64 = named_64 = False
    for line in lines:
        found = sums.SUM_LINE.fullmatch(line)
        if found is not None:
            length = len(found["hash"])
            if length == 64:
                if found["name"]:
                    named_64 = True
                else:
                    bare_64 = True
        else:
            found = sums.TAG_LINE.fullmatch(line.strip())
            if found is None:
                continue
            length = len(found["hash"])
            if length == 64 and kind_from_name(found["tag"]) == "sha256":
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
