"""HashKeeper (.hsh): quoted CSV whose `hash` column is an MD5, one row per file."""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from vigil.hashsets.entry import Entry, ParseReport
from vigil.hashsets.formats import csvlist
from vigil.hashsets.listformat import Detector, ListFormat, plain
from vigil.kinds import MD5

# Columns that make a header a HashKeeper one (the rest vary between versions).
HEADER_COLUMNS = frozenset({"file_id", "hashset_id", "file_name", "hash"})


def is_header(cells: list[str]) -> bool:
    """True for the header row of a HashKeeper file."""
    return HEADER_COLUMNS <= {cell.strip().lower() for cell in cells}


def parse(stream: BinaryIO, report: ParseReport) -> Iterator[Entry]:
    """Entries of a HashKeeper file; file_id is the id, file_name, directory ... go to meta."""
    yield from csvlist.parse(stream, report, hash_columns={"hash": MD5.name}, id_column="fileid")


_EXAMPLE = (
    '"file_id","hashset_id","file_name","directory","hash","file_size"',
    '1,1,"alpha.jpg","C:\\example","2C1743A391305FBF367DF8E4F069F9F9",5',
    '2,1,"bravo.jpg","C:\\example","FD9AB41E47A9EF4F6477A8A000BF404F",5',
)

LIST_FORMATS = (
    ListFormat(
        name="hashkeeper",
        parse=plain(parse),
        detect=(Detector(520, lambda sample: is_header(sample.cells)),),
        example="".join(f"{line}\n" for line in _EXAMPLE),
        malformed_example="".join(
            f"{line}\n" for line in (*_EXAMPLE, '3,1,"charlie.jpg","C:\\example","XYZ",7')
        ),
    ),
)
