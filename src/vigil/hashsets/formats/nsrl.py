"""NIST NSRL RDS 2.x `NSRLFile.txt`: quoted CSV with CRLF line ends, SHA-1 and MD5 per file.

The NSRL lists KNOWN-GOOD files (operating systems, applications): the report marks it
`known_good`, a list to skip files with and never a source of alerts. RDS 3 is a SQLite
database, not this format.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from vigil.hashsets.entry import Entry, ParseReport
from vigil.hashsets.formats import csvlist

# The header of every RDS 2.x NSRLFile.txt (compared without case, quotes or spaces).
HEADER = ("sha-1", "md5", "crc32", "filename", "filesize", "productcode", "opsystemcode")
# NSRL files run to hundreds of millions of rows: keep only what says which file it was.
META_COLUMNS = ("FileName", "FileSize", "ProductCode", "OpSystemCode")


def is_header(cells: list[str]) -> bool:
    """True for the header row of an NSRL RDS 2.x file."""
    names = [cell.strip().lower() for cell in cells]
    return tuple(names[: len(HEADER)]) == HEADER


def parse(stream: BinaryIO, report: ParseReport) -> Iterator[Entry]:
    """Entries (known-good files) of an NSRLFile.txt."""
    report.known_good = True
    yield from csvlist.parse(stream, report, id_column="", meta_columns=META_COLUMNS)
