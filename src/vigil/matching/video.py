"""vPDQ matching: which known videos a scanned video's frames match, and which segment.

The rule is Meta's (python-threatexchange `vpdq_util` / vpdq `matchTwoHash`): both videos' frames
below the quality threshold are dropped and identical hashes deduplicated; a scanned frame
matches when any frame of the known video is within the PDQ distance; the scanned video matches a
known one when at least P% of its frames match (`query_match_percent`) and at least Q% of the
known video's frames are matched by one of them (`compared_match_percent`).

All known frames, of every video of every set, sit in one PDQ index (the same `PDQIndex` the
images use): one radius search with the scanned video's frames finds every candidate at once, so
the cost grows with the scanned video's length and the index's, not with the number of videos.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vigil.fingerprint.fingerprints import VPDQFrame
from vigil.kinds import PDQ_QUALITY_THRESHOLD
from vigil.matching.pdq_index import PDQIndex, build_pdq_index, load_pdq_index
from vigil.matching.settings import VideoRule

# Sub-directory of the compiled matcher holding the video index.
DIRECTORY = "vpdq"

# Which index holds the known frames (the image index's implementation, through its interface).
_new_index: Callable[[np.ndarray], PDQIndex] = build_pdq_index
_load_index: Callable[[Path], PDQIndex | None] = load_pdq_index


@dataclass(frozen=True)
class VideoHit:
    """A known video a scanned video matched, with the matched segments of both."""

    entry_id: int
    set_id: int
    # Median, over the scanned video's matched frames, of each one's distance to its nearest
    # frame of the known video.
    distance: int
    segment: dict[str, float]


class VideoIndex:
    """Every known video's usable frames: one PDQ index plus, per row, its entry, set and times.

    Rows are the distinct hashes of each video with quality >= the threshold at compile time
    (frames below it are never matched); a hash shown several times keeps its first and last time.
    """

    def __init__(
        self,
        index: PDQIndex,
        entries: np.ndarray,
        sets: np.ndarray,
        first: np.ndarray,
        last: np.ndarray,
        quality: np.ndarray,
    ) -> None:
        self._index = index
        self._entries = entries
        self._sets = sets
        self._first = first
        self._last = last
        self._quality = quality
        # Usable (deduplicated) frames per known video, the denominator of compared_match_percent.
        ids, counts = np.unique(np.asarray(entries), return_counts=True)
        self._frames_per_entry = dict(zip(ids.tolist(), counts.tolist(), strict=True))

    def __len__(self) -> int:
        return len(self._index)

    @classmethod
    def build(
        cls,
        frames: Iterable[tuple[int, int, int, float, int, bytes]],
        min_quality: int = PDQ_QUALITY_THRESHOLD,
    ) -> VideoIndex:
        """From (entry_id, set_id, frame, timestamp, quality, pdq bytes) rows in entry order."""
        hashes: list[bytes] = []
        entries: list[int] = []
        sets: list[int] = []
        first: list[float] = []
        last: list[float] = []
        quality: list[int] = []
        seen: dict[bytes, int] = {}
        current = None
        for entry_id, set_id, _frame, timestamp, q, pdq in frames:
            if entry_id != current:
                current, seen = entry_id, {}
            if q < min_quality:
                continue
            row = seen.get(pdq)
            if row is not None:
                first[row] = min(first[row], timestamp)
                last[row] = max(last[row], timestamp)
                continue
            seen[pdq] = len(hashes)
            hashes.append(pdq)
            entries.append(entry_id)
            sets.append(set_id)
            first.append(timestamp)
            last.append(timestamp)
            quality.append(q)
        matrix = (
            np.frombuffer(b"".join(hashes), dtype=np.uint8).reshape(-1, 32)
            if hashes
            else np.zeros((0, 32), dtype=np.uint8)
        )
        return cls(
            _new_index(matrix.copy()),
            np.array(entries, dtype=np.int64),
            np.array(sets, dtype=np.int32),
            np.array(first, dtype=np.float64),
            np.array(last, dtype=np.float64),
            np.array(quality, dtype=np.int16),
        )

    def save(self, directory: Path) -> None:
        """Write under `directory`/vpdq (the image index owns the directory's own file names)."""
        sub = directory / DIRECTORY
        sub.mkdir(parents=True, exist_ok=True)
        self._index.save(sub)
        for name, arr in self._arrays().items():
            np.save(sub / f"{name}.npy", arr)

    @classmethod
    def load(cls, directory: Path) -> VideoIndex | None:
        """Memory-map a saved video index (None when there is none)."""
        sub = directory / DIRECTORY
        if not sub.is_dir():
            return None

        def arr(name: str) -> Any:
            return np.load(sub / f"{name}.npy", mmap_mode="r")

        index = _load_index(sub)
        if index is None:
            return None
        try:
            return cls(
                index,
                arr("entries"),
                arr("sets"),
                arr("first"),
                arr("last"),
                arr("quality"),
            )
        except (OSError, ValueError):
            return None

    def _arrays(self) -> dict[str, np.ndarray]:
        return {
            "entries": np.asarray(self._entries),
            "sets": np.asarray(self._sets),
            "first": np.asarray(self._first),
            "last": np.asarray(self._last),
            "quality": np.asarray(self._quality),
        }

    def search(
        self,
        frames: list[VPDQFrame],
        rule: VideoRule = VideoRule(),
        reportable: Callable[[int], bool] = lambda _set_id: True,
    ) -> list[VideoHit]:
        """The known videos the scanned video `frames` matches under `rule`, by entry id."""
        query = usable_frames(frames, rule.quality)
        if not query or len(self._index) == 0:
            return []
        # Each usable frame as is, and without its black borders when it has some.
        owners: list[int] = []
        parts: list[bytes] = []
        for number, (frame, _) in enumerate(query):
            for value in (frame.hash, frame.cropped):
                if value:
                    owners.append(number)
                    parts.append(bytes.fromhex(value))
        matrix = np.frombuffer(b"".join(parts), dtype=np.uint8)
        # entry -> query frame -> nearest distance; entry -> known rows matched
        nearest: dict[int, dict[int, int]] = {}
        rows_hit: dict[int, set[int]] = {}
        set_of: dict[int, int] = {}
        for variant, row, dist in self._index.search(matrix.reshape(-1, 32), rule.distance):
            qi = owners[variant]
            entry_id = int(self._entries[row])
            set_id = int(self._sets[row])
            if not reportable(set_id):
                continue
            set_of[entry_id] = set_id
            per_query = nearest.setdefault(entry_id, {})
            if dist < per_query.get(qi, 1 << 30):
                per_query[qi] = dist
            rows_hit.setdefault(entry_id, set()).add(row)
        hits: list[VideoHit] = []
        for entry_id, per_query in sorted(nearest.items()):
            query_percent = 100.0 * len(per_query) / len(query)
            known = self._frames_per_entry.get(entry_id, 0)
            rows = rows_hit[entry_id]
            compared_percent = 100.0 * len(rows) / known if known else 0.0
            if query_percent < rule.query_match_percent:
                continue
            if compared_percent < rule.compared_match_percent:
                continue
            q_times = [t for qi in per_query for t in query[qi][1]]
            rows_a = np.fromiter(rows, dtype=np.int64)
            segment = {
                "query_start": round(min(q_times), 3),
                "query_end": round(max(q_times), 3),
                "match_start": round(float(np.min(self._first[rows_a])), 3),
                "match_end": round(float(np.max(self._last[rows_a])), 3),
                "query_match_percent": round(query_percent, 2),
                "compared_match_percent": round(compared_percent, 2),
            }
            distance = int(np.median(np.fromiter(per_query.values(), dtype=np.int64)))
            hits.append(VideoHit(entry_id, set_of[entry_id], distance, segment))
        return hits


def usable_frames(
    frames: list[VPDQFrame], min_quality: int = PDQ_QUALITY_THRESHOLD
) -> list[tuple[VPDQFrame, tuple[float, float]]]:
    """Frames of quality >= `min_quality`, one per distinct hash, each with its first and last time."""
    out: list[tuple[VPDQFrame, tuple[float, float]]] = []
    where: dict[str, int] = {}
    for frame in frames:
        if frame.quality < min_quality:
            continue
        at = where.get(frame.hash)
        if at is None:
            where[frame.hash] = len(out)
            out.append((frame, (frame.timestamp, frame.timestamp)))
        else:
            kept, (t0, t1) = out[at]
            out[at] = (kept, (min(t0, frame.timestamp), max(t1, frame.timestamp)))
    return out
