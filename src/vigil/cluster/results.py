"""What a worker sends back for one shard, and its lossless JSON form for checkpoints."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from vigil.fingerprint.fingerprints import Fingerprints
from vigil.scan.cache import _dumps
from vigil.scan.results import Match, MatchedEntry, ScanError, ScanSummary, Skipped

# The totals a shard adds to the scan's summary.
COUNTS = (
    "files",
    "items",
    "bytes",
    "images",
    "videos",
    "cached",
    "known_good",
    "matches",
    "errors",
    "skipped",
    "undecoded",
)


@dataclass
class ShardResult:
    """One shard scanned: its matches, errors, skipped entries and totals; and, when the
    client keeps a cache, the fingerprints of each file read cleanly (url, identity, items as
    the cache stores them)."""

    name: str
    matches: list[Match] = field(default_factory=list)
    errors: list[ScanError] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    cacheable: list[tuple[str, str, bytes]] = field(default_factory=list)
    # Which worker scanned it (for the checkpoint's manifest and for operators).
    worker: str = ""

    def add_to(self, summary: ScanSummary) -> None:
        """Add its totals to a scan's summary."""
        for key in COUNTS:
            setattr(summary, key, getattr(summary, key) + self.counts.get(key, 0))

    def to_json(self) -> bytes:
        """Everything but the cache's fingerprints, losslessly (a checkpoint's shard file)."""
        return _dumps(
            {
                "name": self.name,
                "worker": self.worker,
                "counts": self.counts,
                "matches": [_match_state(m) for m in self.matches],
                "errors": [e.to_dict() for e in self.errors],
                "skipped": [s.to_dict() for s in self.skipped],
            }
        )

    @classmethod
    def from_json(cls, data: bytes) -> ShardResult:
        """`to_json` read back."""
        d = orjson.loads(data)
        return cls(
            d["name"],
            [_match_from_state(m) for m in d["matches"]],
            [ScanError(**e) for e in d["errors"]],
            [Skipped(**s) for s in d["skipped"]],
            {k: int(v) for k, v in d["counts"].items()},
            worker=d.get("worker", ""),
        )


def _match_state(m: Match) -> dict[str, Any]:
    return {
        "path": m.path,
        "member": m.member,
        "hashset": m.hashset,
        "entry": {"id": m.entry.id, "category": m.entry.category, "meta": m.entry.meta},
        "kind": m.kind,
        "distance": m.distance,
        "transform": m.transform,
        "segment": m.segment,
        "fp": m.fingerprints.to_json_state(),
    }


def _match_from_state(d: dict[str, Any]) -> Match:
    e = d["entry"]
    return Match(
        path=d["path"],
        member=d["member"],
        hashset=d["hashset"],
        entry=MatchedEntry(e["id"], e["category"], e["meta"]),
        kind=d["kind"],
        distance=d["distance"],
        transform=d["transform"],
        fingerprints=Fingerprints.from_dict(d["fp"]),
        segment=d["segment"],
    )
