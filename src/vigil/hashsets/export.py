"""Write entries in any hash-list format that declares a writer (vigil.hashsets.registry).

The writers live with their formats (VICS 2.0 JSON in formats/vics.py, CSV in formats/csvlist.py,
vPDQ CSV in formats/vpdqcsv.py) and are named here as well.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TextIO

from vigil.hashsets import registry
from vigil.hashsets.entry import Entry
from vigil.hashsets.formats.csvlist import CSV_COLUMNS, write_csv
from vigil.hashsets.formats.vics import MEDIA_FIELDS, VICS_CONTEXT, VPDQ_HASH_NAME, write_vics
from vigil.hashsets.formats.vpdqcsv import VPDQ_CSV_COLUMNS, write_vpdq_csv

__all__ = [
    "CSV_COLUMNS",
    "EXPORT_FORMATS",
    "MEDIA_FIELDS",
    "VICS_CONTEXT",
    "VPDQ_CSV_COLUMNS",
    "VPDQ_HASH_NAME",
    "write",
    "write_csv",
    "write_vics",
    "write_vpdq_csv",
]

# The formats entries can be written in.
EXPORT_FORMATS: tuple[str, ...] = registry.EXPORT_NAMES


def write(format: str, entries: Iterable[Entry], out: TextIO) -> int:
    """Write entries in the named format; return how many were written."""
    writer = registry.get(format).export
    if writer is None:
        raise ValueError(f"hash-list format {format!r} cannot be written")
    return writer(entries, out)
