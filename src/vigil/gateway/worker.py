"""Fingerprinting in worker processes: one per core, forked from the gateway once its engine is
prepared (decoders, compiled kernels and libraries inherited warm), so bodies are fingerprinted
in parallel and the event loop never competes with them for the interpreter.

A worker only fingerprints (Content-Encoding undone, multipart parts split, archives opened,
through the engine facade) and hands back the fingerprints; matching against the build in use
and reporting stay in the gateway, which alone follows catalog updates. A body too slow for
`object_seconds` has its worker stopped and replaced (`vigil.gateway.workers`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import IO, BinaryIO, cast

from vigil.engine import Engine, Fingerprinted
from vigil.fingerprint.mediatype import SNIFF_BYTES, sniff_media
from vigil.gateway.content import Decoded, split_multipart

# The engine the workers use, set in the gateway before they fork.
_engine: Engine | None = None


@dataclass
class Found:
    """What a worker found in one body: the fingerprints of each object in it (the body
    itself, or each media part of an upload, named by `member`)."""

    objects: list[tuple[str | None, Fingerprinted]] = field(default_factory=list)


@dataclass(frozen=True)
class Job:
    """One body to fingerprint: in memory (`data`) or in a file the gateway keeps until the
    job ends (`path`)."""

    name: str
    codings: list[str]
    boundary: bytes | None
    limit: int
    memory: int
    data: bytes | None = None
    path: str | None = None


def use(engine: Engine) -> None:
    """Set the engine forked workers inherit."""
    global _engine
    _engine = engine


def warm() -> int:
    """A task that only starts a worker."""
    return os.getpid()


def fingerprint(job: Job) -> Found:
    """In a worker: the fingerprints of every object in the body."""
    assert _engine is not None, "the gateway's engine was not set before the workers forked"
    raw: IO[bytes]
    if job.data is not None:
        import io

        raw = io.BytesIO(job.data)
    else:
        assert job.path is not None
        raw = open(job.path, "rb")  # noqa: SIM115 — closed below
    try:
        stream = cast(BinaryIO, Decoded(raw, job.codings, job.limit))
        if job.boundary is None:
            return Found([(None, _engine.fingerprint(stream, job.name))])
        found = Found()
        parts = split_multipart(stream, job.boundary, job.memory, job.limit)
        try:
            for n, part in enumerate(parts, 1):
                head = part.body.head(SNIFF_BYTES)
                if sniff_media(head) is None:
                    continue
                member = part.filename or part.name or f"part{n}"
                reader = cast(BinaryIO, part.body.reader())
                found.objects.append((member, _engine.fingerprint(reader, job.name)))
        finally:
            for part in parts:
                part.body.close()
        return found
    finally:
        raw.close()
