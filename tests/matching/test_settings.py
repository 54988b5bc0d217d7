"""The match thresholds: stated once (vigil.kinds), the vPDQ rule built from the settings."""

from __future__ import annotations

from vigil import kinds
from vigil.matching.matcher import MatchSettings as FromMatcher
from vigil.matching.settings import MatchSettings, VideoRule
from vigil.matching.video import VideoRule as FromVideo


def test_defaults_are_the_kinds_thresholds() -> None:
    settings = MatchSettings()
    assert kinds.PDQ.thresholds == kinds.Thresholds(settings.pdq_distance, settings.pdq_quality)
    assert kinds.VPDQ.thresholds == kinds.VideoThresholds(
        settings.pdq_distance,
        settings.pdq_quality,
        settings.vpdq_query_percent,
        settings.vpdq_compared_percent,
    )


def test_the_video_rule_is_built_from_the_settings() -> None:
    assert MatchSettings().video_rule() == VideoRule()
    strict = MatchSettings(pdq_distance=10, pdq_quality=70, vpdq_query_percent=90.0)
    assert strict.video_rule() == VideoRule(10, 70, 90.0, VideoRule().compared_match_percent)


def test_one_class_each_wherever_imported_from() -> None:
    assert FromMatcher is MatchSettings
    assert FromVideo is VideoRule
