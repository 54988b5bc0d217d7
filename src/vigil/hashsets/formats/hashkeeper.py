"""HashKeeper (.hsh): quoted CSV whose `hash` column is an MD5, one row per file."""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from vigil.hashsets.entry import Entry, ParseReport
from vigil.hashsets.formats import csvlist

# Columns that make a header a HashKeeper one (the rest vary between versions).
HEADER_COLUMNS = frozenset({"file_id", "hashset_id", "file_name", "hash"})


def is_header(cells: list[str]) -> bool:
    """True for the header row of a HashKeeper file."""
    return HEADER_COLUMNS <= {cell.strip().lower() for cell in cells}


def parse(stream: BinaryIO, report: ParseReport) -> Iterator[Entry]:
    """Entries of a HashKeeper file; file_id is the id, file_name, directory ... go to meta."""
    yield from csvlist.parse(stream, report, hash_columns={"hash": "md5"}, id_column="fileid")
