"""Vigil: find known material by fingerprint."""

__version__ = "0.1.0"
