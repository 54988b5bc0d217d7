"""The fingerprints of one item (a file or an archive member)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Order of the 8 dihedral variants, as in Meta's PDQ tools (pdq-photo-hasher --pdqdih).
DIHEDRAL_NAMES: tuple[str, ...] = (
    "original",
    "rotate90",
    "rotate180",
    "rotate270",
    "flipx",
    "flipy",
    "flip_plus1",
    "flip_minus1",
)


@dataclass(frozen=True)
class PDQ:
    """A 256-bit PDQ hash (64 hex characters), its quality (0-100) and its 8 dihedral variants."""

    hash: str
    quality: int
    # Hex hashes in DIHEDRAL_NAMES order; dihedral[0] == hash.
    dihedral: tuple[str, ...] = ()


@dataclass
class Fingerprints:
    """Everything Vigil computes of one item. Hex strings are lowercase."""

    size: int
    md5: str
    sha1: str
    sha256: str
    media_type: str
    pdq: PDQ | None = None
    # Why a perceptual hash could not be computed (e.g. "truncated image"), or None.
    pdq_error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self, dihedral: bool = False) -> dict[str, Any]:
        """A JSON-ready dict (the `fingerprints` object of the output contract)."""
        out: dict[str, Any] = {
            "size": self.size,
            "media_type": self.media_type,
            "md5": self.md5,
            "sha1": self.sha1,
            "sha256": self.sha256,
            "pdq": self.pdq.hash if self.pdq else None,
            "pdq_quality": self.pdq.quality if self.pdq else None,
        }
        if dihedral and self.pdq:
            out["pdq_dihedral"] = dict(zip(DIHEDRAL_NAMES, self.pdq.dihedral, strict=True))
        if self.pdq_error:
            out["pdq_error"] = self.pdq_error
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Fingerprints:
        """Inverse of a full serialisation made by `to_json_state`."""
        pdq = PDQ(**d["pdq"]) if d.get("pdq") else None
        if pdq is not None:
            pdq = PDQ(pdq.hash, pdq.quality, tuple(pdq.dihedral))
        return cls(
            size=d["size"],
            md5=d["md5"],
            sha1=d["sha1"],
            sha256=d["sha256"],
            media_type=d["media_type"],
            pdq=pdq,
            pdq_error=d.get("pdq_error"),
            extra=d.get("extra", {}),
        )

    def to_json_state(self) -> dict[str, Any]:
        """A lossless dict for the fingerprint cache."""
        return asdict(self)
