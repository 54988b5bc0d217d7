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
from vigil.hashsets.listformat import Detector, ListFormat, plain

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


_EXAMPLE_HEADER = (
    '"SHA-1","MD5","CRC32","FileName","FileSize","ProductCode","OpSystemCode","SpecialCode"'
)
_EXAMPLE_ROWS = (
    '"BE76331B95DFC399CD776D2FC68021E0DB03CC4F","2C1743A391305FBF367DF8E4F069F9F9","00000000",'
    '"alpha.dll",5,1234,"362",""',
    '"962665711E0E6FF33104712F82068162CDB1F9C0","FD9AB41E47A9EF4F6477A8A000BF404F","00000000",'
    '"bravo.dll",5,1234,"362",""',
)

LIST_FORMATS = (
    ListFormat(
        name="nsrl",
        parse=plain(parse),
        detect=(Detector(510, lambda sample: is_header(sample.cells)),),
        example="".join(f"{line}\r\n" for line in (_EXAMPLE_HEADER, *_EXAMPLE_ROWS)),
        malformed_example="".join(
            f"{line}\r\n"
            for line in (_EXAMPLE_HEADER, _EXAMPLE_ROWS[0], '"XYZ","XYZ"', _EXAMPLE_ROWS[1])
        ),
        known_good=True,
    ),
)
