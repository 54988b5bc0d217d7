"""Entry digests: the name of an entry's content, the same in every catalog that holds it.

An entry is packed canonically as MessagePack `[ext_id, category, meta, [[kind code, value],
...], [[frame, timestamp, quality, pdq], ...]]` (meta's keys sorted, hashes by kind code, frames
in order) and named by the first 16 bytes of that form's SHA-256. The store keeps each entry's
digest (indexed per set), so a re-imported list changes only the entries that differ, a catalog
bundle (vigil.updates.bundle) removes entries by digest, and neither reads a whole set to do it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgpack
import orjson

DIGEST_BYTES = 16


def canonical(value: Any) -> Any:
    """`value` with dict keys sorted (as text) and tuples as lists, recursively."""
    if isinstance(value, dict):
        return {str(k): canonical(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    return value


def pack(value: Any) -> bytes:
    """MessagePack, binary values as bin."""
    return msgpack.packb(value, use_bin_type=True)


def stored_meta(meta: Mapping[str, Any] | None) -> Any:
    """An entry's metadata as the catalog gives it back (through JSON, canonical)."""
    return meta_from_text(json.dumps(dict(meta or {})))


def meta_from_text(text: str) -> Any:
    """Stored metadata (JSON text, as the standard library wrote it), canonical.

    orjson sorts keys at every level in one pass (a tenth of the cost of `canonical` on a
    VICS record's metadata, which every entry of a million-entry import pays); the standard
    library where orjson reads differently (NaN and Infinity, which it writes as null; integers
    beyond 64 bits)."""
    if "NaN" not in text and "Infinity" not in text:
        try:
            return orjson.loads(orjson.dumps(orjson.loads(text), option=orjson.OPT_SORT_KEYS))
        except (orjson.JSONDecodeError, TypeError):
            pass
    return canonical(json.loads(text))


def pack_entry(
    ext_id: str | None,
    category: str | None,
    meta: Any,
    hashes: Sequence[Sequence[Any]],
    frames: Sequence[Sequence[Any]],
) -> bytes:
    """The canonical packed form; `meta` already canonical, `hashes` ([code, bytes]) by code,
    `frames` ([frame, timestamp, quality, pdq bytes]) in order."""
    return pack([ext_id, category, meta, hashes, frames])


def entry_digest(packed: bytes) -> bytes:
    """The name of an entry's content (its packed form)."""
    return hashlib.sha256(packed).digest()[:DIGEST_BYTES]


def content_digest(digests: Iterable[bytes]) -> bytes:
    """The digest of a set's entries as a multiset (order does not matter): SHA-256 of the
    sorted digests, sorted with NumPy (a million in a fraction of a second)."""
    import numpy as np  # here: commands that only read the sets start without it

    joined = b"".join(digests)
    if len(joined) % DIGEST_BYTES:
        raise ValueError("entry digests are 16 bytes each")
    ordered = np.sort(np.frombuffer(joined, dtype=f"S{DIGEST_BYTES}"))
    return hashlib.sha256(ordered.tobytes()).digest()
