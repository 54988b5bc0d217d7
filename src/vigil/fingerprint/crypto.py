"""MD5, SHA-1 and SHA-256 of a byte stream, computed from one read.

Where the CPU has the SHA extensions (x86-64: Intel since Ice Lake, AMD since Zen) and the
compiled module `_digests` was built, the three digests are computed in one pass that
interleaves them block by block, so they cost about what MD5 alone does; elsewhere hashlib
(OpenSSL) computes them one after the other. Both give the same digests: the compiled path is
checked against hashlib on known inputs once per process before it is used, and falls back to
hashlib (with a warning) if it ever disagrees.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)


class DigestSink(Protocol):
    """What both implementations offer."""

    @property
    def size(self) -> int: ...

    def update(self, data: bytes | bytearray | memoryview, /) -> None: ...

    def hexdigests(self) -> tuple[str, str, str]: ...


class HashlibDigests:
    """Feed bytes once; get the three digests every hash list uses (OpenSSL, in turn)."""

    __slots__ = ("_md5", "_sha1", "_sha256", "size")

    def __init__(self) -> None:
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._sha1 = hashlib.sha1(usedforsecurity=False)
        self._sha256 = hashlib.sha256()
        self.size = 0

    def update(self, data: bytes | bytearray | memoryview, /) -> None:
        """Add the next chunk of the stream."""
        self._md5.update(data)
        self._sha1.update(data)
        self._sha256.update(data)
        self.size += len(data)

    def hexdigests(self) -> tuple[str, str, str]:
        """(md5, sha1, sha256) as lowercase hex."""
        return self._md5.hexdigest(), self._sha1.hexdigest(), self._sha256.hexdigest()


def _known_answers_hold(make: Callable[[], DigestSink]) -> bool:
    """Does `make` agree with hashlib on inputs that cover every padding case and chunking?"""
    pattern = bytes(range(256)) * 300  # 76,800 bytes: more than the GIL-release threshold
    for n in (0, 1, 3, 55, 56, 63, 64, 65, 119, 120, 128, 1000, len(pattern)):
        data = pattern[:n]
        expected = HashlibDigests()
        expected.update(data)
        whole = make()
        whole.update(data)
        pieces = make()
        step = 37 if n <= 1000 else 5003  # the long input in pieces that run without the GIL
        for i in range(0, n, step):
            pieces.update(data[i : i + step])
        want = expected.hexdigests()
        if whole.hexdigests() != want or pieces.hexdigests() != want or whole.size != n:
            return False
    return True


def _compiled() -> Callable[[], DigestSink] | None:
    try:
        from vigil.fingerprint import _digests
    except ImportError:
        return None
    if not _digests.ACCELERATED:
        return None
    if not _known_answers_hold(_digests.Digests):
        log.warning("the compiled digests disagree with hashlib here; using hashlib")
        return None
    return _digests.Digests


_COMPILED = _compiled()

#: The implementation in use: `Digests()` starts a stream.
Digests: Callable[[], DigestSink] = _COMPILED or HashlibDigests
#: True when the three digests run in one interleaved pass (the compiled module).
ACCELERATED = _COMPILED is not None


def digest_bytes(data: bytes | memoryview) -> tuple[str, str, str]:
    """(md5, sha1, sha256) of an in-memory buffer."""
    d = Digests()
    d.update(data)
    return d.hexdigests()
