"""Byte mutations of valid seeds: bit flips, truncation, insertion, deletion, splicing, and
overwriting with values parsers trip on (lengths of 0, -1, 2^31, ...).

A mutation is a plain tuple, so the same code serves Hypothesis (which draws and shrinks the
tuples) and the campaign driver's own random loop.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Sequence

# Values that make lengths, counts and offsets wrong in interesting ways.
INTERESTING: tuple[bytes, ...] = (
    b"\x00",
    b"\xff",
    b"\x7f",
    b"\x80",
    b"\x00\x00",
    b"\xff\xff",
    b"\x7f\xff",
    b"\x80\x00",
    struct.pack("<I", 0),
    struct.pack("<I", 0xFFFFFFFF),
    struct.pack("<I", 0x7FFFFFFF),
    struct.pack("<I", 0x80000000),
    struct.pack(">I", 0x7FFFFFFF),
    struct.pack(">I", 0xFFFFFFFF),
    struct.pack("<Q", 0xFFFFFFFFFFFFFFFF),
    struct.pack(">Q", 0x7FFFFFFFFFFFFFFF),
)

KINDS = ("flip", "truncate", "insert", "delete", "overwrite", "interesting", "splice", "repeat")

# One mutation: (kind, position in 0..1 of the data, a size or bit, payload bytes).
Mutation = tuple[str, float, int, bytes]


def apply(data: bytes, mutations: Sequence[Mutation], other: bytes = b"") -> bytes:
    """`data` with each mutation applied in turn (`other` is what splice takes bytes from)."""
    out = bytearray(data)
    for kind, where, size, payload in mutations:
        at = min(int(where * len(out)), max(len(out) - 1, 0))
        if kind == "flip" and out:
            out[at] ^= 1 << (size % 8)
        elif kind == "truncate":
            del out[at:]
        elif kind == "insert":
            out[at:at] = payload
        elif kind == "delete":
            del out[at : at + max(size, 1)]
        elif kind == "overwrite":
            out[at : at + len(payload)] = payload
        elif kind == "interesting":
            value = INTERESTING[size % len(INTERESTING)]
            out[at : at + len(value)] = value
        elif kind == "splice" and other:
            start = int(where * len(other))
            out[at:] = other[start : start + max(size, 1) * 64]
        elif kind == "repeat" and out:
            piece = bytes(out[at : at + max(size % 64, 1)])
            out[at:at] = piece * (1 + size % 32)
    return bytes(out)


def random_mutations(rnd: random.Random, count: int | None = None) -> list[Mutation]:
    """A few random mutations (the campaign driver's fallback engine uses these)."""
    out: list[Mutation] = []
    for _ in range(count if count is not None else rnd.randint(1, 6)):
        kind = rnd.choice(KINDS)
        payload = (
            rnd.randbytes(rnd.choice((1, 2, 4, 8, 32))) if kind in ("insert", "overwrite") else b""
        )
        out.append((kind, rnd.random(), rnd.randint(0, 255), payload))
    return out
