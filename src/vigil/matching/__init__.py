"""Matching fingerprints against the compiled catalog: exact lookups and PDQ radius search."""

from vigil.matching.matcher import Hit, Matcher

__all__ = ["Hit", "Matcher"]
