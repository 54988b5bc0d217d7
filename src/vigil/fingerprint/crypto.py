"""MD5, SHA-1 and SHA-256 of a byte stream, computed from one read."""

from __future__ import annotations

import hashlib


class Digests:
    """Feed bytes once; get the three digests every hash list uses."""

    __slots__ = ("_md5", "_sha1", "_sha256", "size")

    def __init__(self) -> None:
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._sha1 = hashlib.sha1(usedforsecurity=False)
        self._sha256 = hashlib.sha256()
        self.size = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        """Add the next chunk of the stream."""
        self._md5.update(data)
        self._sha1.update(data)
        self._sha256.update(data)
        self.size += len(data)

    def hexdigests(self) -> tuple[str, str, str]:
        """(md5, sha1, sha256) as lowercase hex."""
        return self._md5.hexdigest(), self._sha1.hexdigest(), self._sha256.hexdigest()


def digest_bytes(data: bytes | memoryview) -> tuple[str, str, str]:
    """(md5, sha1, sha256) of an in-memory buffer."""
    d = Digests()
    d.update(data)
    return d.hexdigests()
