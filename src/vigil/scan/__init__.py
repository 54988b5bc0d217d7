"""Scanning: walk files and archives, fingerprint every item, match, report."""
