"""Errors the engine raises; each carries a message meant for the person running Vigil."""

from __future__ import annotations


class VigilError(Exception):
    """Base class: a problem the user can act on (bad input, bad configuration)."""


class HashListError(VigilError):
    """A hash list cannot be parsed at all (the import is abandoned, nothing is changed)."""


class AmbiguousFormatError(HashListError):
    """A hash list could be more than one format; the user must name it with --format."""


class CatalogError(VigilError):
    """The catalog is missing something asked for, or is in an unusable state."""


class LimitExceeded(VigilError):
    """A scan limit was reached; `limit` is the name from the limits table."""

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(message)
        self.limit = limit


class UnreadableItem(VigilError):
    """An item could not be read or decoded (truncated, corrupt, encrypted, vanished)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
