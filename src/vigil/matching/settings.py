"""The match thresholds a scan runs with: one settings object, the vPDQ rule derived from it.

The default numbers are the near kinds' (vigil.kinds); nothing here states one again. The
module itself needs no NumPy (the package's __init__ loads the matcher, though).
"""

from __future__ import annotations

from dataclasses import dataclass

from vigil.kinds import PDQ, VPDQ, HashKind, Thresholds, VideoThresholds


def _thresholds(kind: HashKind) -> Thresholds:
    if kind.thresholds is None:  # pragma: no cover - a near kind always declares them
        raise TypeError(f"{kind.name} declares no thresholds")
    return kind.thresholds


def _video_thresholds(kind: HashKind) -> VideoThresholds:
    found = _thresholds(kind)
    if not isinstance(found, VideoThresholds):  # pragma: no cover - declared in vigil.kinds
        raise TypeError(f"{kind.name} declares no video thresholds")
    return found


_PDQ = _thresholds(PDQ)
_VPDQ = _video_thresholds(VPDQ)

# The scanned-side variants (vigil.fingerprint.variants: trimmed borders, re-padded and centred
# crops, masked corners and bands) are extra chances to match, so each gets a tighter distance than the plain hash: chosen
# with benchmarks/bench_robustness.py (README, "Robustness"), where it kept every unrelated image
# unmatched.
PDQ_VARIANT_DISTANCE = 28
# Agreement of differently made hashes, for near-threshold hits (chosen with
# benchmarks/bench_robustness.py; README, "Robustness"):
# - the anchor variant (re-padded by 3% a side) within PDQ_AGREE_DISTANCE of an entry counts when
#   another re-padded amount is within it too and the plain hash (made from the pixels, not
#   re-padded) is within PDQ_AGREE_PLAIN of the same entry: a copy cropped by a few percent a
#   side, which no single variant brings within PDQ_VARIANT_DISTANCE;
# - with `pdq_agree_masks` (off by default), the plain hash within PDQ_AGREE_DISTANCE (a few bits
#   past the plain distance) counts when a masked variant (a corner or band filled: AGREE_MASKS)
#   is within it too: a logo or caption. Off because a mask is made from the plain hash's own
#   block and is often near it (half of them within 16 bits on the benchmark's tiles): the
#   agreement adds little to the plain hash at 36, which the benchmark cannot judge (README).
PDQ_AGREE_DISTANCE = 36
PDQ_AGREE_PLAIN = 72
# The anchor (vigil.fingerprint.variants: re-padded by 3% a side, the amount nearest the original
# most often on the benchmark's crops of 2-4% a side) and the variants that may agree with it.
AGREE_ANCHOR = "pad3"
AGREE_WITH: tuple[str, ...] = ("pad2", "pad4", "pad5")
# The masked variants that may agree with the plain hash.
AGREE_MASKS: tuple[str, ...] = (
    "mask-tl",
    "mask-tr",
    "mask-bl",
    "mask-br",
    "mask-top",
    "mask-bottom",
)
# Copies of a listed picture whose quality falls just under the gate (a resized or blurred copy
# of a low-contrast photo) are matched down to this quality, but only within a tighter distance;
# flat and near-flat images (quality near 0) stay out.
PDQ_LOW_QUALITY = 30
# 28 (was 20): the distance of the other extra chance (the variants); on the benchmark's larger
# sample of such copies it finds 476 of the 477 within 31 bits of their original (20: 469), and
# the unrelated tiles of quality 30-49 stay 84 bits or more from every listed photo.
PDQ_LOW_QUALITY_DISTANCE = 28


@dataclass(frozen=True)
class VideoRule:
    """The thresholds of the vPDQ rule (vigil.matching.video): a frame matches within
    `distance`, frames below `quality` are dropped, and a video matches when at least
    `query_match_percent` of its frames match and `compared_match_percent` of the known
    video's frames are matched. A scan builds it from its settings (`MatchSettings.video_rule`)."""

    distance: int = _VPDQ.distance
    quality: int = _VPDQ.quality
    query_match_percent: float = _VPDQ.query_match_percent
    compared_match_percent: float = _VPDQ.compared_match_percent


@dataclass(frozen=True)
class MatchSettings:
    """PDQ thresholds, whether to try the 8 variants, and the vPDQ shares (defaults: vigil.kinds)."""

    pdq_distance: int = _PDQ.distance
    pdq_quality: int = _PDQ.quality
    rotations: bool = True
    # Scanned-side variants matched (within `pdq_variant_distance`, each of quality at least
    # `pdq_quality`): a copy cropped, padded or framed is found. False: the reference's rule.
    # Neither this distance nor the low-quality one is ever looser than `pdq_distance`.
    pdq_variants: bool = True
    pdq_variant_distance: int = PDQ_VARIANT_DISTANCE
    # The agreement rule (with `pdq_variants` only; a distance not above
    # `pdq_variant_distance` turns it off). It is never looser than `pdq_distance` plus the
    # defaults' difference (5 bits), nor its plain bound than twice `pdq_distance` plus 10.
    pdq_agree_distance: int = PDQ_AGREE_DISTANCE
    pdq_agree_plain: int = PDQ_AGREE_PLAIN
    pdq_agree_masks: bool = False
    # Images of quality in [pdq_low_quality, pdq_quality) are matched within
    # `pdq_low_quality_distance` (a value >= pdq_quality turns this off).
    pdq_low_quality: int = PDQ_LOW_QUALITY
    pdq_low_quality_distance: int = PDQ_LOW_QUALITY_DISTANCE
    # vPDQ: P and Q of the video rule (percent of the scanned / of the known video's frames).
    vpdq_query_percent: float = _VPDQ.query_match_percent
    vpdq_compared_percent: float = _VPDQ.compared_match_percent

    def agree_radii(self) -> tuple[int, int]:
        """(anchor's and partner's distance, plain hash's distance) of the agreement rule as
        applied: never looser than `pdq_distance` plus the defaults' difference, nor the plain
        bound than twice `pdq_distance` plus 10; (0, 0) when off."""
        if not self.pdq_variants:
            return 0, 0
        radius = min(
            self.pdq_agree_distance, self.pdq_distance + PDQ_AGREE_DISTANCE - _PDQ.distance
        )
        if radius <= min(self.pdq_variant_distance, self.pdq_distance):
            return 0, 0
        return radius, min(self.pdq_agree_plain, 2 * self.pdq_distance + 10)

    def video_rule(self) -> VideoRule:
        """The vPDQ rule under these settings: a video's frames are PDQ hashes, matched as such."""
        return VideoRule(
            self.pdq_distance,
            self.pdq_quality,
            self.vpdq_query_percent,
            self.vpdq_compared_percent,
        )
