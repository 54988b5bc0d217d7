"""CSV lists with a header row naming the hash columns (md5, sha1/sha-1, sha256/sha-256, pdq).

The delimiter (comma, semicolon or tab) is read off the header row. `id` and `category`
columns become the entry's id and category; every other non-empty cell goes into meta under its
column's name. NSRL and HashKeeper files are CSV too and are read here with their own columns.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, TextIO

from vigil.errors import HashListError
from vigil.hashsets.entry import Entry, ParseReport
from vigil.hashsets.formats import clean_hash, kind_from_name, text_stream
from vigil.hashsets.listformat import Detector, ListFormat, Sample, plain
from vigil.kinds import SINGLE

DELIMITERS = (",", ";", "\t")
ID_NAMES = frozenset({"id", "mediaid", "entryid", "hashid", "itemid"})
CATEGORY_NAMES = frozenset({"category", "cat", "classification"})
_NOT_ALNUM = re.compile(r"[^a-z0-9]")


@dataclass
class Columns:
    """Which column holds what, by index."""

    count: int
    hashes: list[tuple[int, str]] = field(default_factory=list)
    id: int | None = None
    category: int | None = None
    meta: list[tuple[int, str]] = field(default_factory=list)


def sniff_delimiter(header: str) -> str:
    """The delimiter that splits the header row into the most cells (comma on a tie)."""
    best, most = ",", 0
    for delimiter in DELIMITERS:
        cells = len(_header_cells(header, delimiter))
        if cells > most:
            best, most = delimiter, cells
    return best


def split_header(header: str, delimiter: str | None = None) -> list[str]:
    """The header row's cells, stripped."""
    delimiter = delimiter or sniff_delimiter(header)
    return [cell.strip() for cell in _header_cells(header, delimiter)]


def _header_cells(header: str, delimiter: str) -> list[str]:
    try:
        return next(csv.reader([header], delimiter=delimiter), [])
    except csv.Error as exc:  # a cell over the csv module's field limit (128 KiB)
        raise HashListError(f"unreadable CSV header row: {exc}") from None


def columns(
    names: list[str],
    hash_columns: dict[str, str] | None = None,
    id_column: str | None = None,
    meta_columns: Collection[str] | None = None,
) -> Columns:
    """Map header names to roles; `hash_columns` adds names (normalised) for hash kinds.

    `id_column` names the id column (normalised; "" for none); `meta_columns` limits meta.
    """
    found = Columns(count=len(names))
    extra = hash_columns or {}
    for index, name in enumerate(names):
        key = _NOT_ALNUM.sub("", name.lower())
        kind = extra.get(key) or kind_from_name(name)
        if kind is not None:
            found.hashes.append((index, kind))
        elif (
            found.id is None
            and key
            and (key in ID_NAMES if id_column is None else key == id_column)
        ):
            found.id = index
        elif found.category is None and key in CATEGORY_NAMES:
            found.category = index
        elif name and (meta_columns is None or name in meta_columns):
            found.meta.append((index, name))
    return found


def parse(
    stream: BinaryIO,
    report: ParseReport,
    *,
    hash_columns: dict[str, str] | None = None,
    id_column: str | None = None,
    meta_columns: Collection[str] | None = None,
) -> Iterator[Entry]:
    """Entries of a CSV list whose first non-blank line is the header row."""
    text = text_stream(stream)
    offset = 0
    header = ""
    for header in text:
        offset += 1
        if header.strip():
            break
    if not header.strip():
        raise HashListError("CSV file without a header row")
    delimiter = sniff_delimiter(header.rstrip("\r\n"))
    names = split_header(header.rstrip("\r\n"), delimiter)
    layout = columns(names, hash_columns, id_column, meta_columns)
    if not layout.hashes:
        raise HashListError(
            f"CSV header names no hash column (expected md5, sha1, sha256 or pdq): {names[:12]}"
        )
    reader = csv.reader(text, delimiter=delimiter)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            report.problem(reader.line_num + offset, f"unreadable CSV row: {exc}")
            continue
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        entry = _entry(row, layout, reader.line_num + offset, report)
        if entry is not None:
            yield entry


def _entry(row: list[str], layout: Columns, number: int, report: ParseReport) -> Entry | None:
    if len(row) != layout.count:
        report.problem(number, f"{len(row)} columns, expected {layout.count}")
        return None
    hashes: dict[str, str] = {}
    errors: list[str] = []
    for index, kind in layout.hashes:
        value = row[index].strip()
        if value and kind not in hashes:
            try:
                hashes[kind] = clean_hash(value, kind)
            except ValueError as exc:
                errors.append(str(exc))
    if not hashes:
        report.problem(number, "skipped, " + ("; ".join(errors) if errors else "no hash"))
        return None
    if errors:
        report.problem(number, "; ".join(errors) + " (other hashes kept)")
    return Entry(
        hashes=hashes,
        id=_cell(row, layout.id),
        category=_cell(row, layout.category),
        meta={name: row[index] for index, name in layout.meta if row[index] != ""},
    )


def _cell(row: list[str], index: int | None) -> str | None:
    if index is None:
        return None
    return row[index].strip() or None


# -- writing -------------------------------------------------------------------------------------

# id, category, then one column per one-value hash kind (vigil.kinds), by its name.
CSV_COLUMNS = ("id", "category", *(k.name for k in SINGLE))


def write_csv(entries: Iterable[Entry], out: TextIO) -> int:
    """Write entries as CSV with the header id,category,md5,sha1,sha256,pdq; return the count."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for entry in entries:
        hashes = entry.hashes
        writer.writerow(
            (entry.id or "", entry.category or "", *(hashes.get(k.name, "") for k in SINGLE))
        )
        count += 1
    return count


# -- declaration ---------------------------------------------------------------------------------


def names_a_hash_column(sample: Sample) -> bool:
    """A header row of several cells, one of them naming a hash kind."""
    cells = sample.cells
    return len(cells) > 1 and any(kind_from_name(cell) for cell in cells)


def refuses_other_csv(sample: Sample) -> bool:
    """A header row naming no hash column: CSV, but nothing to import (tried last)."""
    cells = sample.cells
    if len(cells) > 1:
        raise HashListError(
            f"{sample.name}: CSV header names no hash column (expected md5, sha1, sha256 or pdq): "
            f"{cells[:12]}"
        )
    return False


LIST_FORMATS = (
    ListFormat(
        name="csv",
        parse=plain(parse),
        detect=(Detector(600, names_a_hash_column), Detector(900, refuses_other_csv)),
        example="id,category,md5,sha1\n"
        "ex-0,1,2c1743a391305fbf367df8e4f069f9f9,be76331b95dfc399cd776d2fc68021e0db03cc4f\n"
        "ex-1,2,fd9ab41e47a9ef4f6477a8a000bf404f,\n",
        malformed_example="id,category,md5,sha1\n"
        "ex-0,1,2c1743a391305fbf367df8e4f069f9f9,be76331b95dfc399cd776d2fc68021e0db03cc4f\n"
        "ex-1,2,fd9ab41e47a9ef4f6477a8a000bf404f,\n"
        "ex-2,3,xyz,\n",
        export=write_csv,
        categories=True,
    ),
)
