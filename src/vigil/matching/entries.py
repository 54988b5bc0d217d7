"""What a match reports of a catalog entry, kept inside each compiled build.

A build carries the id, category and metadata of every entry it can match, taken from the same
catalog snapshot as its hashes: a hit becomes a complete match without asking the catalog, and a
scan that runs while sets are imported or removed reports the entries of its own build, never a
mix of two catalog states (nor a KeyError for an entry removed since).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:  # NumPy is loaded by the table's methods: the catalog imports EntryRecord
    import numpy as np


@dataclass(frozen=True)
class EntryRecord:
    """A catalog entry as a match reports it."""

    entry_id: int
    set_id: int
    ext_id: str | None
    category: str | None
    meta: dict[str, Any]


class EntryTable:
    """Entries sorted by id: ids and set ids as arrays, each entry's (ext_id, category, meta)
    as one JSON document in a byte blob, found by offset. Memory-mapped when loaded."""

    FILES = ("entries.ids", "entries.sets", "entries.offsets", "entries.data")

    def __init__(
        self, ids: np.ndarray, sets: np.ndarray, offsets: np.ndarray, data: np.ndarray
    ) -> None:
        self.ids, self.sets, self.offsets, self.data = ids, sets, offsets, data

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def build(cls, rows: Iterable[tuple[int, int, str | None, str | None, Any]]) -> EntryTable:
        """From (entry_id, set_id, ext_id, category, meta) rows in ascending id order; `meta`
        is a dict, or JSON text as a database returns it."""
        import numpy as np

        ids: list[int] = []
        sets: list[int] = []
        ends: list[int] = []
        parts: list[bytes] = []
        at = 0
        for entry_id, set_id, ext_id, category, meta in rows:
            if isinstance(meta, str | bytes):
                meta_json = meta.encode() if isinstance(meta, str) else meta
            else:
                meta_json = orjson.dumps(meta if meta is not None else {})
            doc = (
                b"["
                + orjson.dumps(ext_id)
                + b","
                + orjson.dumps(category)
                + b","
                + meta_json
                + b"]"
            )
            ids.append(entry_id)
            sets.append(set_id)
            parts.append(doc)
            at += len(doc)
            ends.append(at)
        id_arr = np.array(ids, dtype=np.int64)
        if len(id_arr) > 1 and not bool(np.all(id_arr[1:] > id_arr[:-1])):
            order = np.argsort(id_arr, kind="stable")
            id_arr = id_arr[order]
            parts = [parts[i] for i in order.tolist()]
            sets = [sets[i] for i in order.tolist()]
            ends = np.cumsum([len(p) for p in parts]).tolist()
        offsets = np.zeros(len(id_arr) + 1, dtype=np.int64)
        offsets[1:] = np.array(ends, dtype=np.int64)
        data = np.frombuffer(b"".join(parts), dtype=np.uint8)
        return cls(id_arr, np.array(sets, dtype=np.int32), offsets, data)

    def save(self, directory: Path) -> None:
        """Write the four arrays under `directory`."""
        import numpy as np

        for name, arr in zip(
            self.FILES, (self.ids, self.sets, self.offsets, self.data), strict=True
        ):
            np.save(directory / f"{name}.npy", arr)

    @classmethod
    def load(cls, directory: Path) -> EntryTable:
        """Memory-map a saved table (OSError / ValueError if it is missing or damaged)."""
        import numpy as np

        arrs = [np.load(directory / f"{name}.npy", mmap_mode="r") for name in cls.FILES]
        return cls(*arrs)

    def get(self, entry_id: int) -> EntryRecord:
        """The entry with this id (KeyError if the build has none: a bug, never a race)."""
        import numpy as np

        i = int(np.searchsorted(self.ids, entry_id))
        if i >= len(self.ids) or int(self.ids[i]) != entry_id:
            raise KeyError(entry_id)
        lo, hi = int(self.offsets[i]), int(self.offsets[i + 1])
        ext_id, category, meta = orjson.loads(bytes(self.data[lo:hi]))
        return EntryRecord(entry_id, int(self.sets[i]), ext_id, category, meta or {})
