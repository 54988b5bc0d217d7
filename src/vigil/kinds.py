"""Hash kinds: one declaration per kind of fingerprint a hash list lists and a scan matches.

Everything that needs to know the kinds (the matcher, the catalog, the list formats, the
reports) iterates or looks up this registry; the names themselves ("md5", "sha1", "sha256",
"pdq", "vpdq") are the public ones of the JSON output, the catalog and the hash lists.

Adding a kind is one declaration here (plus computing it in `Fingerprints`). Import-light on
purpose (no NumPy): the CLI and the catalog read it at start-up.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# Meta's defaults (python-threatexchange PDQ_CONFIDENT_MATCH_THRESHOLD and QUALITY_THRESHOLD):
# the largest Hamming distance between two PDQ hashes that is a match, and the smallest quality
# of a hash worth matching (below it, near-uniform images match each other).
PDQ_MATCH_DISTANCE = 31
PDQ_QUALITY_THRESHOLD = 50
# vPDQ: share of the scanned video's frames that must match (P) and of the known video's frames
# that must be matched (Q), in percent. Meta's defaults for "this is (a clip of) that video".
VPDQ_QUERY_MATCH_PERCENT = 80.0
VPDQ_COMPARED_MATCH_PERCENT = 0.0


@dataclass(frozen=True)
class Thresholds:
    """When a near kind's hash matches: within `distance`, of quality at least `quality`."""

    distance: int
    quality: int


@dataclass(frozen=True)
class VideoThresholds(Thresholds):
    """A video's frames match as PDQ hashes; the video matches when at least
    `query_match_percent` of its frames match and `compared_match_percent` of the known
    video's frames are matched."""

    query_match_percent: float
    compared_match_percent: float


@dataclass(frozen=True)
class HashKind:
    """What one kind of hash is: its public name, width, how it matches, where it is kept."""

    name: str
    # Hex characters of one value (for vpdq: of one frame's PDQ).
    hex_width: int
    # Exact (a digest: equal or not) or near (a perceptual hash: within a Hamming distance).
    exact: bool
    # The `Fingerprints` attribute holding a scanned item's value.
    field: str
    # Which kind an incident names when one entry matched by several: higher is stronger.
    rank: int
    # The number the catalog stores in `hashes.kind` (None: kept elsewhere, vPDQ frames in
    # `video_frames`). Never renumbered: existing catalogs hold these numbers.
    code: int | None = None
    # Near kinds: the default thresholds of a match.
    thresholds: Thresholds | None = None
    # One value per video frame (vPDQ) instead of one value per item.
    frames: bool = False

    @property
    def byte_width(self) -> int:
        """Bytes of one raw value."""
        return self.hex_width // 2

    def __str__(self) -> str:
        return self.name


_REGISTRY: dict[str, HashKind] = {}


def declare(kind: HashKind) -> HashKind:
    """Register `kind` (its name and catalog code must be new) and return it."""
    if kind.name in _REGISTRY:
        raise ValueError(f"hash kind {kind.name!r} declared twice")
    if kind.code is not None and any(k.code == kind.code for k in _REGISTRY.values()):
        raise ValueError(f"catalog code {kind.code} of {kind.name!r} is taken")
    if kind.exact == (kind.thresholds is not None):
        raise ValueError(f"{kind.name!r}: thresholds are for near kinds, and only for them")
    _REGISTRY[kind.name] = kind
    return kind


MD5 = declare(HashKind("md5", 32, exact=True, field="md5", rank=3, code=1))
SHA1 = declare(HashKind("sha1", 40, exact=True, field="sha1", rank=4, code=2))
SHA256 = declare(HashKind("sha256", 64, exact=True, field="sha256", rank=5, code=3))
PDQ = declare(
    HashKind(
        "pdq",
        64,
        exact=False,
        field="pdq",
        rank=2,
        code=4,
        thresholds=Thresholds(PDQ_MATCH_DISTANCE, PDQ_QUALITY_THRESHOLD),
    )
)
VPDQ = declare(
    HashKind(
        "vpdq",
        64,
        exact=False,
        field="vpdq",
        rank=1,
        # Each frame is a PDQ hash, matched under PDQ's distance and quality.
        thresholds=VideoThresholds(
            PDQ_MATCH_DISTANCE,
            PDQ_QUALITY_THRESHOLD,
            VPDQ_QUERY_MATCH_PERCENT,
            VPDQ_COMPARED_MATCH_PERCENT,
        ),
        frames=True,
    )
)

# Every kind, in declaration order (the order reports list them in).
KINDS: tuple[HashKind, ...] = tuple(_REGISTRY.values())
# Kinds matched by equality, and by distance.
EXACT: tuple[HashKind, ...] = tuple(k for k in KINDS if k.exact)
NEAR: tuple[HashKind, ...] = tuple(k for k in KINDS if not k.exact)
# Kinds with one value per entry: what an `Entry.hashes` and the catalog's `hashes` table hold.
SINGLE: tuple[HashKind, ...] = tuple(k for k in KINDS if not k.frames)
NAMES: tuple[str, ...] = tuple(k.name for k in KINDS)
EXACT_NAMES: frozenset[str] = frozenset(k.name for k in EXACT)
NEAR_NAMES: frozenset[str] = frozenset(k.name for k in NEAR)


def kind(name: str) -> HashKind:
    """The kind named `name`; KeyError for an unknown name."""
    return _REGISTRY[name]


def by_code(code: int) -> HashKind:
    """The kind the catalog stores as `code`; KeyError for an unknown code."""
    for k in KINDS:
        if k.code == code:
            return k
    raise KeyError(code)


def strongest(names: Iterable[str]) -> str:
    """The highest-ranked of these kind names (exact before near, sha256 > sha1 > md5)."""
    return max(names, key=lambda name: _REGISTRY[name].rank)
