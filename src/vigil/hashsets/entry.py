"""One listed item of a hash list, and what a parse reports besides its entries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vigil.fingerprint.fingerprints import VPDQFrame
from vigil.kinds import SINGLE

# Kinds of hash an entry can carry in `hashes`, with their length in hex characters.
HASH_KINDS: dict[str, int] = {k.name: k.hex_width for k in SINGLE}


@dataclass
class Entry:
    """A listed item: its hashes by kind (lowercase hex), id, category and the list's own metadata."""

    hashes: dict[str, str]
    id: str | None = None
    category: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    # The frames of a listed video (vPDQ), in frame order; empty for anything else.
    vpdq: list[VPDQFrame] = field(default_factory=list)


@dataclass
class Problem:
    """A malformed record: where it is (line number, or record number where lines mean nothing)."""

    line: int | None
    message: str
    record: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else f"record {self.record}"
        return f"{where}: {self.message}"


@dataclass
class ParseReport:
    """What a parse found besides entries: malformed records, withdrawn ids, set-level facts."""

    format: str = ""
    # Set-level facts found in the file (e.g. VICS context US/UK, NCMEC maxTimestamp, case ids).
    info: dict[str, Any] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    malformed: int = 0
    # Ids the list withdraws (NCMEC deletedImage / deletedVideo).
    deleted_ids: list[str] = field(default_factory=list)
    # True for lists of known-good files (NSRL): a skip list, never a source of alerts.
    known_good: bool = False
    # Keep at most this many problems in memory; `malformed` counts them all.
    max_problems: int = 1000

    def problem(self, line: int | None, message: str, record: int | None = None) -> None:
        """Count a malformed record and keep its description (up to max_problems)."""
        self.malformed += 1
        if len(self.problems) < self.max_problems:
            self.problems.append(Problem(line, message, record))
