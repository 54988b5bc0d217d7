"""What a hash-list format declares, and the view of a file's first bytes that detection reads.

Every format module under vigil.hashsets.formats declares its formats as `ListFormat` objects in
a module-level tuple `LIST_FORMATS`; vigil.hashsets.registry collects them. The reader, the
detector, the exporter and the CLI iterate the registry, never a list of names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import BinaryIO, TextIO

from vigil.errors import HashListError
from vigil.hashsets.entry import Entry, ParseReport

# Lines looked at to decide between plain-list formats.
SAMPLE_LINES = 1000


@dataclass(frozen=True)
class Reading:
    """What a parser may need besides the stream: the file read, and whether its format was
    named by the caller (rather than detected)."""

    path: Path
    explicit: bool = False


# (decoded stream, report to fill, reading) -> entries, lazily.
Parser = Callable[[BinaryIO, ParseReport, Reading], Iterator[Entry]]
# (entries, text stream) -> how many were written.
Writer = Callable[[Iterable[Entry], TextIO], int]


class Sample:
    """A file's first bytes (decompressed, byte-order mark removed) as detection reads them."""

    def __init__(self, head: bytes, name: str, complete: bool = True) -> None:
        self.head = head
        # The file's name, for messages only: detection never looks at it.
        self.name = name
        # True when `head` is the whole file (otherwise its last line may be cut short).
        self.complete = complete
        # The first non-blank byte: `{`/`[` for JSON, `<` for XML.
        self.start = head.lstrip()[:1]

    @cached_property
    def lines(self) -> list[str]:
        """The first non-blank, non-comment lines (HashListError when there are none)."""
        lines = self.head.decode("utf-8", errors="replace").splitlines()
        if not self.complete and len(lines) > 1:
            lines.pop()
        lines = [line for line in lines if line.strip() and not line.startswith("#")]
        if not lines:
            raise HashListError(f"{self.name}: no hash lines, only comments")
        return lines[:SAMPLE_LINES]

    @cached_property
    def first(self) -> str:
        """The first line, stripped."""
        return self.lines[0].strip()

    @cached_property
    def cells(self) -> list[str]:
        """The first line split as a CSV header row."""
        from vigil.hashsets.formats.csvlist import split_header

        return split_header(self.first)

    @cached_property
    def declared(self) -> str | None:
        """The hash kind a first line such as `MD5` or `PDQ` names, or None."""
        from vigil.hashsets.formats.sums import type_line

        return type_line(self.first)


@dataclass(frozen=True)
class Detector:
    """One rule of detection: the rules of all formats are tried by `priority`, lowest first,
    and the first whose `claims` is true names the format. `claims` raises HashListError for a
    file that is unmistakably of this format but unusable (e.g. JSON that is not VICS)."""

    priority: int
    claims: Callable[[Sample], bool]


def declares(kind: str) -> Callable[[Sample], bool]:
    """A claim on files whose first line names `kind` (`MD5`, `SHA-1`, `PDQ` ...)."""
    return lambda sample: sample.declared == kind


def plain(parse: Callable[[BinaryIO, ParseReport], Iterator[Entry]]) -> Parser:
    """A parser that needs nothing besides the stream and the report."""
    return lambda stream, report, _reading: parse(stream, report)


@dataclass(frozen=True)
class ListFormat:
    """One hash-list format: its name, how it is recognised, read and (maybe) written."""

    # The public name (`vigil hashset import --format NAME`, the catalog's `format`).
    name: str
    parse: Parser
    # Its part of detection; empty: read only when named.
    detect: tuple[Detector, ...]
    # A small valid list of this format (at least two entries), and the same with one
    # malformed record among good ones: every format's generic tests read both.
    example: str
    malformed_example: str
    # Writes entries in this format (`vigil hashset export --format NAME`), if it can.
    export: Writer | None = None
    # Other names accepted for it.
    aliases: tuple[str, ...] = ()
    # Whether its entries carry a category.
    categories: bool = False
    # A list of known-good files (NSRL): a skip list, never a source of alerts.
    known_good: bool = False
