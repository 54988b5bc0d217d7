"""Fingerprints of an item: cryptographic digests, media type, PDQ."""
