"""What a scan produces: fingerprinted items, matches, errors, skipped entries and totals."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vigil.fingerprint.fingerprints import Fingerprints


@dataclass
class ScannedItem:
    """One fingerprinted item: a file on disk, or a member inside an archive in that file."""

    path: str
    member: str | None
    fingerprints: Fingerprints


@dataclass
class MatchedEntry:
    """The catalog entry a match points at."""

    id: str | None
    category: str | None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Match:
    """An item that matched an entry of a hash set (the public match object)."""

    path: str
    member: str | None
    hashset: str
    entry: MatchedEntry
    kind: str  # md5 | sha1 | sha256 | pdq | vpdq
    distance: int
    transform: str | None
    fingerprints: Fingerprints
    # vPDQ matches: query_start/query_end (seconds of the scanned video), match_start/match_end
    # (of the known one), query_match_percent and compared_match_percent. None otherwise.
    segment: dict[str, float] | None = None

    @property
    def size(self) -> int:
        """Size in bytes of the matched item."""
        return self.fingerprints.size

    @property
    def media_type(self) -> str:
        """Media type sniffed from the item's content."""
        return self.fingerprints.media_type

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of the output contract."""
        return {
            "path": self.path,
            "member": self.member,
            "size": self.size,
            "media_type": self.media_type,
            "hashset": self.hashset,
            "entry": {
                "id": self.entry.id,
                "category": self.entry.category,
                "meta": self.entry.meta,
            },
            "kind": self.kind,
            "distance": self.distance,
            "transform": self.transform,
            "segment": self.segment,
            "fingerprints": self.fingerprints.to_dict(),
        }


@dataclass
class ScanError:
    """One line of the error list: which item, which kind of problem, what happened."""

    path: str
    member: str | None
    # A limit name from vigil.limits, or a reason such as 'unreadable', 'vanished', 'encrypted',
    # 'corrupt', 'truncated', 'symlink-loop', 'permission'.
    reason: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "path": self.path,
            "member": self.member,
            "reason": self.reason,
            "message": self.message,
        }

    def __str__(self) -> str:
        where = f"{self.path}/{self.member}" if self.member else self.path
        return f"{where}: {self.reason}: {self.message}"


@dataclass
class Skipped(ScanError):
    """Something the walk met that has no content to check: a device, a fifo, a socket, a broken
    symlink, a symlink loop, a directory already walked, a symlink not followed. Counted and
    listed (`--verbose`, the report), never an error: nothing behind it was missed.

    It has an error's shape (a ScanError with reasons such as 'not-regular', 'broken-symlink',
    'symlink-loop', 'already-walked', 'symlink-skipped'), so whoever only knows ScanError can
    still show it; a scan checks for Skipped first.
    """


@dataclass
class ScanSummary:
    """Totals of one scan."""

    files: int = 0
    items: int = 0
    bytes: int = 0
    images: int = 0
    videos: int = 0
    cached: int = 0
    known_good: int = 0
    matches: int = 0
    errors: int = 0
    # Walked entries with no content to check (see Skipped): not errors.
    skipped: int = 0
    # Images hashed exactly but not decoded (a valid variant no decoder here reads): no PDQ.
    undecoded: int = 0
    seconds: float = 0.0
    started_at: str = ""
    host: str = ""
    roots: list[str] = field(default_factory=list)
    hashsets: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return dict(self.__dict__)
