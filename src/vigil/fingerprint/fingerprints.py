"""The fingerprints of one item (a file or an archive member)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vigil.kinds import HashKind

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


# The pdq_error of an image no decoder here reads (UnreadableItem's reason 'unsupported').
UNDECODED = "unsupported"


@dataclass(frozen=True)
class PDQ:
    """A 256-bit PDQ hash (64 hex characters), its quality (0-100) and its 8 dihedral variants."""

    hash: str
    quality: int
    # Hex hashes in DIHEDRAL_NAMES order; dihedral[0] == hash.
    dihedral: tuple[str, ...] = ()
    # Scanned-side variants (vigil.fingerprint.variants): (name, hex hash, quality) each, e.g.
    # ("trim", ..., 71): the picture without its borders. Not part of the reference output.
    variants: tuple[tuple[str, str, int], ...] = ()


@dataclass(frozen=True)
class VPDQFrame:
    """One hashed video frame: decoded-frame number, time in seconds, PDQ quality and hash."""

    index: int
    timestamp: float
    quality: int
    hash: str
    # PDQ of the frame without its black borders (letterbox/pillarbox), when it has some: matched
    # too, so a copy with borders added finds the original. Not part of the reference output.
    cropped: str | None = None


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
    # vPDQ of a video (or animated GIF/WebP): its sampled frames in order, None if not a video.
    vpdq: list[VPDQFrame] | None = None
    # Why vPDQ is missing or partial (a limit name, 'truncated', 'corrupt', ...), or None.
    vpdq_error: str | None = None
    # What the video stream says (codec, width, height, fps, frames, seconds), for videos.
    video: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def hex_of(self, kind: HashKind) -> str | None:
        """The item's value of a one-value hash kind (vigil.kinds.SINGLE) as hex, or None."""
        if kind.frames:
            raise ValueError(f"{kind.name} is a list of frames, not one value")
        value = getattr(self, kind.field)
        return value.hash if isinstance(value, PDQ) else value

    @property
    def undecoded(self) -> bool:
        """An image hashed exactly but not decoded: a valid variant no decoder here reads (it has
        no PDQ, and that is not an error)."""
        return self.pdq is None and self.pdq_error == UNDECODED

    def to_dict(self, dihedral: bool = False, frames: bool = False) -> dict[str, Any]:
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
        if self.vpdq is not None or self.vpdq_error or self.video:
            out["vpdq_frames"] = len(self.vpdq) if self.vpdq is not None else None
            if self.video:
                out["video"] = self.video
            if self.vpdq_error:
                out["vpdq_error"] = self.vpdq_error
            if frames and self.vpdq is not None:
                out["vpdq"] = [
                    {
                        "frame": f.index,
                        "quality": f.quality,
                        "pdq": f.hash,
                        "timestamp": f.timestamp,
                        **({"pdq_cropped": f.cropped} if f.cropped else {}),
                    }
                    for f in self.vpdq
                ]
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Fingerprints:
        """Inverse of a full serialisation made by `to_json_state` (every key present).

        Positional, without defaults looked up: a scan after a catalog change reads one of these
        back for every file it has cached."""
        p = d["pdq"]
        v = d["vpdq"]
        return cls(
            d["size"],
            d["md5"],
            d["sha1"],
            d["sha256"],
            d["media_type"],
            None
            if p is None
            else PDQ(
                p["hash"],
                p["quality"],
                tuple(p["dihedral"]),
                # Absent from fingerprints stored before the variants (a cluster checkpoint).
                tuple((n, h, q) for n, h, q in p.get("variants", ())),
            ),
            d["pdq_error"],
            None if v is None else [VPDQFrame(**f) for f in v],
            d["vpdq_error"],
            d["video"],
            d["extra"],
        )

    def to_json_state(self) -> dict[str, Any]:
        """A lossless dict for the fingerprint cache (`from_dict` reads it back).

        Written out rather than `dataclasses.asdict`, which deep-copies field by field and cost
        25 µs an image: the main process pays it for every file a scan caches.
        """
        pdq = self.pdq
        return {
            "size": self.size,
            "md5": self.md5,
            "sha1": self.sha1,
            "sha256": self.sha256,
            "media_type": self.media_type,
            "pdq": None
            if pdq is None
            else {
                "hash": pdq.hash,
                "quality": pdq.quality,
                "dihedral": list(pdq.dihedral),
                "variants": [list(v) for v in pdq.variants],
            },
            "pdq_error": self.pdq_error,
            "vpdq": None
            if self.vpdq is None
            else [
                {
                    "index": f.index,
                    "timestamp": f.timestamp,
                    "quality": f.quality,
                    "hash": f.hash,
                    "cropped": f.cropped,
                }
                for f in self.vpdq
            ],
            "vpdq_error": self.vpdq_error,
            "video": self.video,
            "extra": self.extra,
        }
