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
    # vPDQ: P and Q of the video rule (percent of the scanned / of the known video's frames).
    vpdq_query_percent: float = _VPDQ.query_match_percent
    vpdq_compared_percent: float = _VPDQ.compared_match_percent

    def video_rule(self) -> VideoRule:
        """The vPDQ rule under these settings: a video's frames are PDQ hashes, matched as such."""
        return VideoRule(
            self.pdq_distance,
            self.pdq_quality,
            self.vpdq_query_percent,
            self.vpdq_compared_percent,
        )
