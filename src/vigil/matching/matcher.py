"""The compiled matcher: the catalog as sorted arrays and a PDQ index, memory-mapped from disk.

A compile is a *build*: never changed after it is made (vigil.matching.builds keeps them on disk,
one directory each). It holds everything a match reports (the entries' ids, categories and
metadata, the sets' names), so turning a hit into a match asks no database. Restricting it to
some sets makes a view that shares the arrays; the build itself is never modified.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vigil.fingerprint.fingerprints import DIHEDRAL_NAMES, Fingerprints
from vigil.kinds import EXACT, NEAR_NAMES, PDQ, VPDQ
from vigil.matching.entries import EntryRecord, EntryTable
from vigil.matching.exact import as_rows, equal_ranges, prefix_directory, sort_order
from vigil.matching.pdq_index import PDQIndex, build_pdq_index, load_pdq_index
from vigil.matching.settings import AGREE_ANCHOR, AGREE_MASKS, AGREE_WITH, MatchSettings
from vigil.matching.video import VideoIndex

if TYPE_CHECKING:  # SQLAlchemy is imported only by code that queries the catalog
    from vigil.catalog.store import Catalog, HashSetInfo

EXACT_KINDS: dict[str, int] = {k.name: k.byte_width for k in EXACT}
# Batches up to this many digests are looked up with NumPy's searchsorted, larger ones with the
# compiled kernel (vigil.matching.kernels.equal_ranges).
_SMALL_BATCH = 256


def _read_only(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


# find_many's answer when nothing is listed (shared, so read-only).
_NO_ROWS = (
    _read_only(np.zeros(0, dtype=np.int64)),
    _read_only(np.zeros(0, dtype=np.int64)),
    _read_only(np.zeros(0, dtype=np.int32)),
)
# 2: multi-index PDQ; 3: vpdq/ (video frames); 4: build id (scan verdicts are kept per build);
# 5: a prefix directory per exact table; 6: the entries and the sets' descriptions.
FORMAT_VERSION = 6


@dataclass(frozen=True)
class Hit:
    """A catalog entry that an item matched, by which hash, how far, under which transform."""

    entry_id: int
    set_id: int
    kind: str
    distance: int
    transform: str | None
    # vPDQ only: the matched segments (see vigil.matching.video.VideoIndex.search).
    segment: dict[str, float] | None = None


class _ExactTable:
    """Sorted fixed-width byte strings with the entry and set of each."""

    def __init__(
        self,
        values: np.ndarray,
        entry_ids: np.ndarray,
        set_ids: np.ndarray,
        directory: np.ndarray | None = None,
    ) -> None:
        self.values, self.entry_ids, self.set_ids = values, entry_ids, set_ids
        width = values.dtype.itemsize
        # Where each leading-bits prefix starts (vigil.matching.exact.prefix_directory).
        self.directory = (
            directory if directory is not None else prefix_directory(as_rows(values, width))
        )

    def find(self, digest: bytes) -> list[tuple[int, int]]:
        if len(self.values) == 0:
            return []
        key = np.array([digest], dtype=self.values.dtype)
        lo = int(np.searchsorted(self.values, key, side="left")[0])
        hi = int(np.searchsorted(self.values, key, side="right")[0])
        return [(int(self.entry_ids[i]), int(self.set_ids[i])) for i in range(lo, hi)]

    def find_many(self, digests: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(indices in `digests`, entries, sets) of every listed digest, as arrays."""
        if len(self.values) == 0 or len(digests) == 0:
            return _NO_ROWS
        keys = np.asarray(digests, dtype=self.values.dtype)
        width = self.values.dtype.itemsize
        if len(keys) <= _SMALL_BATCH:
            # A few keys (a rescan matches again only the files that matched before): NumPy's
            # own binary search, without loading the compiled kernels for so little.
            first = np.searchsorted(self.values, keys, side="left")
            end = np.searchsorted(self.values, keys, side="right")
            return self._rows(first, end)
        # Searched in sorted order: neighbouring keys walk the same first steps of the binary
        # search, so those pages and cache lines are met warm (and a cold mapping is read in
        # order), then the ranges are put back in the callers' order.
        order = None
        if len(keys) > 64:  # by the first 8 bytes: enough for locality, cheaper than a full sort
            order = np.argsort(
                np.ascontiguousarray(as_rows(keys, width)[:, :8]).view(">u8").ravel()
            )
        sorted_keys = keys if order is None else keys[order]
        first_s, end_s = equal_ranges(
            as_rows(self.values, width), as_rows(sorted_keys, width), self.directory
        )
        if order is None:
            first, end = first_s, end_s
        else:
            first, end = np.empty_like(first_s), np.empty_like(end_s)
            first[order], end[order] = first_s, end_s
        return self._rows(first, end)

    def _rows(
        self, first: np.ndarray, end: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(query, entry, set) of every row in the ranges [first[q], end[q])."""
        counts = end - first
        if not counts.any():  # the usual answer: nothing listed
            return _NO_ROWS
        queries = np.repeat(np.arange(len(first)), counts)
        starts = np.repeat(first - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
        rows = starts + np.arange(len(queries))
        return queries, np.asarray(self.entry_ids[rows]), np.asarray(self.set_ids[rows])


class Matcher:
    """Looks fingerprints up in every compiled hash set."""

    def __init__(
        self,
        generation: int,
        exact: dict[str, _ExactTable],
        pdq_index: PDQIndex,
        pdq_entries: np.ndarray,
        pdq_sets: np.ndarray,
        set_names: dict[int, str],
        known_good: set[int],
        video: VideoIndex | None = None,
        build_id: str | None = None,
        entries: EntryTable | None = None,
        sets: dict[int, dict[str, Any]] | None = None,
    ) -> None:
        self.generation = generation
        # Which compile this is: a new one for every compile, kept with the saved build. Scan
        # results remembered under one build (vigil.scan.cache) are valid for that build only.
        self.build_id = build_id or uuid.uuid4().hex
        self._exact = exact
        self._pdq = pdq_index
        self._pdq_entries = pdq_entries
        self._pdq_sets = pdq_sets
        self.set_names = set_names
        self.known_good_sets = known_good
        self._only: frozenset[int] | None = None
        self._video = video if video is not None else VideoIndex.build(())
        self._entries = entries if entries is not None else EntryTable.build(())
        # The sets as `vigil hashset list --json` describes them, by id (for reports).
        self.sets = sets if sets is not None else {}
        # Whatever keeps the build's files from being removed while they are mapped (a lock
        # held by vigil.matching.builds); shared by every view, released with the last one.
        self.lease: object | None = None

    # -- building ----------------------------------------------------------------------------

    @classmethod
    def compile(cls, catalog: Catalog, build_id: str | None = None) -> Matcher:
        """Build from the catalog's current contents, all read from one snapshot of it.

        `build_id`: who knows that this content was compiled before with the same answers may
        say so (e.g. the same hash-list files, unchanged); by default every compile is new.
        """
        with catalog.snapshot() as snap:
            generation = snap.generation()
            sets = snap.sets()
            arrays = snap.hash_arrays({**EXACT_KINDS, PDQ.name: PDQ.byte_width})
            exact: dict[str, _ExactTable] = {}
            for kind, width in EXACT_KINDS.items():
                vals, ents, sids = arrays.pop(kind)
                order = sort_order(vals, width)
                exact[kind] = _ExactTable(vals[order], ents[order], sids[order])
                del vals, ents, sids, order
            pvals, pents, psids = arrays.pop(PDQ.name)
            hashes = pvals.view(np.uint8).reshape(-1, PDQ.byte_width)
            video = VideoIndex.build(snap.iter_video_frames())
            entries = EntryTable.build(snap.iter_entry_rows())
        return cls(
            generation,
            exact,
            build_pdq_index(hashes),
            pents,
            psids,
            {s.id: s.name for s in sets},
            {s.id for s in sets if s.known_good},
            video,
            build_id,
            entries,
            {s.id: _set_description(s) for s in sets},
        )

    def save(self, directory: Path) -> None:
        """Write every file of the build into `directory` (which must exist and be empty).

        Builds are published by vigil.matching.builds, which fills a new directory and then
        points `current` at it: a written build is never changed.
        """
        for kind, table in self._exact.items():
            np.save(directory / f"{kind}.values.npy", table.values)
            np.save(directory / f"{kind}.entries.npy", table.entry_ids)
            np.save(directory / f"{kind}.sets.npy", table.set_ids)
            np.save(directory / f"{kind}.directory.npy", table.directory)
        self._pdq.save(directory)
        np.save(directory / "pdq.entries.npy", self._pdq_entries)
        np.save(directory / "pdq.sets.npy", self._pdq_sets)
        self._video.save(directory)
        self._entries.save(directory)
        meta = {
            "format": FORMAT_VERSION,
            "generation": self.generation,
            "sets": {str(k): v for k, v in self.set_names.items()},
            "set_info": {str(k): v for k, v in self.sets.items()},
            "known_good": sorted(self.known_good_sets),
            "build": self.build_id,
        }
        # Written last: a directory with meta.json is a complete build.
        (directory / "meta.json").write_text(json.dumps(meta))

    @classmethod
    def load(cls, directory: Path) -> Matcher | None:
        """Memory-map a saved build, or None if there is none (or it is of another format)."""
        try:
            meta = json.loads((directory / "meta.json").read_text())
        except (OSError, ValueError):
            return None
        if meta.get("format") != FORMAT_VERSION:
            return None

        def arr(name: str) -> np.ndarray:
            return np.load(directory / name, mmap_mode="r")

        try:
            pdq_index = load_pdq_index(directory)
            if pdq_index is None:
                return None
            exact = {
                k: _ExactTable(
                    arr(f"{k}.values.npy"),
                    arr(f"{k}.entries.npy"),
                    arr(f"{k}.sets.npy"),
                    arr(f"{k}.directory.npy"),
                )
                for k in EXACT_KINDS
            }
            return cls(
                int(meta["generation"]),
                exact,
                pdq_index,
                arr("pdq.entries.npy"),
                arr("pdq.sets.npy"),
                {int(k): v for k, v in meta["sets"].items()},
                set(meta["known_good"]),
                VideoIndex.load(directory),
                str(meta["build"]),
                EntryTable.load(directory),
                {int(k): v for k, v in meta.get("set_info", {}).items()},
            )
        except (OSError, ValueError, KeyError):
            return None  # a damaged build is compiled again, never half used

    # -- views -------------------------------------------------------------------------------

    def view(self, set_ids: set[int] | frozenset[int] | None) -> Matcher:
        """The same build reporting hits from these sets only (None: all sets).

        A view shares every array (and the lease) with this matcher and changes nothing in it:
        other holders of the build keep their answers.
        """
        other = copy.copy(self)
        other._only = None if set_ids is None else frozenset(set_ids)
        return other

    def entry(self, entry_id: int) -> EntryRecord:
        """What a match reports of one of this build's entries."""
        return self._entries.get(entry_id)

    def set_name(self, set_id: int) -> str:
        """The name of one of this build's sets."""
        return self.set_names.get(set_id, str(set_id))

    def reported_sets(self) -> list[dict[str, Any]]:
        """Descriptions of the sets this view reports, and of the known-good sets it uses."""
        return [
            d
            for i, d in sorted(self.sets.items(), key=lambda kv: str(kv[1].get("name", "")))
            if self._only is None or i in self._only or i in self.known_good_sets
        ]

    # -- matching ----------------------------------------------------------------------------

    def context_key(self) -> str:
        """What the answers of this matcher depend on: its build and the sets it reports.

        Two matchers with the same key give the same answers to the same fingerprints and
        settings, so a result remembered under one key can be reused under it.
        """
        only = "all" if self._only is None else ",".join(map(str, sorted(self._only)))
        return f"{self.build_id}:{only}"

    def is_empty(self) -> bool:
        """True when no hash at all is compiled."""
        return (
            len(self._pdq) == 0
            and len(self._video) == 0
            and all(len(t.values) == 0 for t in self._exact.values())
        )

    def exact_many(
        self, kind: str, digests: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Batched exact lookup: (indices in `digests`, entries, sets) of every listed digest.

        `digests` is an array of raw digests (e.g. dtype S16 for MD5), as many as wanted.
        """
        return self._exact[kind].find_many(digests)

    def known_good(self, fp: Fingerprints) -> bool:
        """True if the item's bytes are listed in a known-good set (NSRL and the like)."""
        return bool(self.known_good_sets) and self.match_many([fp])[0][0]

    def lookup(self, fp: Fingerprints, settings: MatchSettings = MatchSettings()) -> list[Hit]:
        """Every entry the item is reported for: exact by digest, near by PDQ (best variant),
        by vPDQ; with the known-good rule applied (see `match_all`)."""
        return [hit for _, hit in match_all([self], [fp], settings)[1][0]]

    def _video_hits(self, fp: Fingerprints, settings: MatchSettings) -> list[Hit]:
        """vPDQ hits of a video's frames (vigil.matching.video)."""
        assert fp.vpdq is not None
        return [
            Hit(h.entry_id, h.set_id, VPDQ.name, h.distance, None, h.segment)
            for h in self._video.search(fp.vpdq, settings.video_rule(), self._reportable)
        ]

    def match_many(
        self, fps: Sequence[Fingerprints], settings: MatchSettings = MatchSettings()
    ) -> tuple[list[bool], list[list[Hit]]]:
        """Per item, whether its bytes are listed in a known-good set (NSRL and the like), and
        every alerting entry it matches: exact by digest, near by PDQ (best variant per entry),
        by vPDQ for videos.

        Every exact kind is one `exact_many` call over all the items' digests, and the PDQ
        variants of all items are one index search.
        """
        n = len(fps)
        good = [False] * n
        hits: list[list[Hit]] = [[] for _ in range(n)]
        if n == 0:
            return good, hits
        for kind, width in EXACT_KINDS.items():
            table = self._exact[kind]
            if len(table.values) == 0:
                continue
            raw = bytes.fromhex("".join([getattr(fp, kind) for fp in fps]))
            if len(raw) != n * width:  # not one full digest per item: look up one by one
                self._exact_one_by_one(kind, fps, good, hits)
                continue
            queries, entries, sets = table.find_many(np.frombuffer(raw, dtype=f"S{width}"))
            if len(queries) == 0:
                continue
            for qi, entry_id, set_id in zip(
                queries.tolist(), entries.tolist(), sets.tolist(), strict=True
            ):
                if set_id in self.known_good_sets:
                    good[qi] = True
                elif self._reportable(set_id) and not any(
                    h.entry_id == entry_id and h.kind == kind for h in hits[qi]
                ):
                    hits[qi].append(Hit(entry_id, set_id, kind, 0, None))
        for i, fp in enumerate(fps):
            if fp.vpdq:
                hits[i].extend(self._video_hits(fp, settings))
        if len(self._pdq) == 0:
            return good, hits
        owners: list[int] = []
        hexes: list[str] = []
        radii: list[int] = []
        names: list[str] = []
        # The extra chances are never looser than the plain hash's distance.
        low_radius = min(settings.pdq_low_quality_distance, settings.pdq_distance)
        variant_radius = min(settings.pdq_variant_distance, settings.pdq_distance)
        # The agreement rule's anchors (the 3% re-padding, the plain hash) are searched to
        # agree_radius; a hit past their own radius counts only when confirmed (`_agreed`).
        # Off without the variants.
        agree_radius, plain_radius = settings.agree_radii()
        anchors: dict[int, tuple[int, tuple[str, ...]]] = {}  # query -> (item, partners)
        for i, fp in enumerate(fps):
            if fp.pdq is None:
                continue
            pdq = fp.pdq
            if pdq.quality >= settings.pdq_quality:
                radius = settings.pdq_distance
            elif pdq.quality >= settings.pdq_low_quality:
                radius = low_radius
            else:
                continue
            variants = pdq.dihedral if settings.rotations and pdq.dihedral else (pdq.hash,)
            full = pdq.quality >= settings.pdq_quality  # the agreement needs it
            if settings.pdq_agree_masks and full and agree_radius > settings.pdq_distance:
                anchors[len(hexes)] = (i, AGREE_MASKS)
            owners.extend([i] * len(variants))
            hexes.extend(variants)
            radii.extend([radius] * len(variants))
            names.extend(DIHEDRAL_NAMES[: len(variants)])
            if settings.pdq_variants:
                for name, hex_, quality in pdq.variants:
                    if quality >= settings.pdq_quality:
                        if name == AGREE_ANCHOR and agree_radius and full:
                            anchors[len(hexes)] = (i, AGREE_WITH)
                        owners.append(i)
                        hexes.append(hex_)
                        radii.append(variant_radius)
                        names.append(name)
        if not hexes:
            return good, hits
        queries_pdq = np.frombuffer(bytes.fromhex("".join(hexes)), dtype=np.uint8).reshape(-1, 32)
        # (item, entry) -> (distance, query, set, transform): the nearest query wins, the first
        # on a tie (the plain hash before its rotations, those before the scanned-side variants,
        # those before an agreement).
        best: dict[tuple[int, int], tuple[int, int, int, str]] = {}
        searched = max(radii)
        found = self._pdq.search(queries_pdq, searched)
        if anchors and agree_radius > searched:  # the anchors a little further
            anchor_queries = sorted(anchors)
            found += [
                (anchor_queries[qi], row, dist)
                for qi, row, dist in self._pdq.search(queries_pdq[anchor_queries], agree_radius)
                if dist > searched
            ]
        pending: list[tuple[int, int, int]] = []  # (query, row, distance) to confirm
        for qi, row, dist in found:
            if dist > radii[qi]:
                if qi in anchors and dist <= agree_radius:
                    pending.append((qi, row, dist))
                continue
            self._keep(best, owners[qi], qi, row, dist, names[qi])
        confirmed = self._agreed(pending, fps, anchors, agree_radius, plain_radius, settings)
        for qi, row, dist, partner in confirmed:
            self._keep(best, owners[qi], qi, row, dist, f"{names[qi]}+{partner}")
        for (owner, entry_id), (dist, _, set_id, transform) in sorted(best.items()):
            hits[owner].append(Hit(entry_id, set_id, PDQ.name, dist, transform))
        return good, hits

    def _keep(
        self,
        best: dict[tuple[int, int], tuple[int, int, int, str]],
        owner: int,
        qi: int,
        row: int,
        dist: int,
        transform: str,
    ) -> None:
        """Keep the hit if its set is reported and it is the item's nearest to the entry."""
        entry_id, set_id = int(self._pdq_entries[row]), int(self._pdq_sets[row])
        if not self._reportable(set_id):
            return
        key = (owner, entry_id)
        if key not in best or (dist, qi) < best[key][:2]:
            best[key] = (dist, qi, set_id, transform)

    def _agreed(
        self,
        pending: list[tuple[int, int, int]],
        fps: Sequence[Fingerprints],
        anchors: dict[int, tuple[int, tuple[str, ...]]],
        agree_radius: int,
        plain_radius: int,
        settings: MatchSettings,
    ) -> list[tuple[int, int, int, str]]:
        """The anchor hits past their own distance that the agreement rule confirms, with the
        agreeing variant's name: one of the anchor's partners (another re-padded amount for the
        re-padded anchor, a masked variant for the plain hash) within `agree_radius` of the same
        stored hash, and, for a re-padded anchor, the plain hash within `plain_radius` of it."""
        if not pending:
            return []
        stored = self._pdq.hashes(np.array([row for _, row, _ in pending], dtype=np.int64))
        out = []
        for (qi, row, dist), target in zip(pending, stored, strict=True):
            owner, partners = anchors[qi]
            pdq = fps[owner].pdq
            assert pdq is not None
            if pdq.quality < settings.pdq_quality:
                continue
            if partners is AGREE_WITH and _distance(pdq.hash, target) > plain_radius:
                continue
            near = [
                (d, name)
                for name, hex_, quality in pdq.variants
                if name in partners
                and quality >= settings.pdq_quality
                and (d := _distance(hex_, target)) <= agree_radius
            ]
            if near:
                out.append((qi, row, dist, min(near)[1]))
        return out

    def _exact_one_by_one(
        self, kind: str, fps: Sequence[Fingerprints], good: list[bool], hits: list[list[Hit]]
    ) -> None:
        for qi, fp in enumerate(fps):
            try:
                digest = bytes.fromhex(getattr(fp, kind))
            except ValueError:
                continue
            for entry_id, set_id in self._exact[kind].find(digest):
                if set_id in self.known_good_sets:
                    good[qi] = True
                elif self._reportable(set_id) and not any(
                    h.entry_id == entry_id and h.kind == kind for h in hits[qi]
                ):
                    hits[qi].append(Hit(entry_id, set_id, kind, 0, None))

    def _reportable(self, set_id: int) -> bool:
        if set_id in self.known_good_sets:
            return False
        return self._only is None or set_id in self._only


def _distance(hex_: str, stored: np.ndarray) -> int:
    """Hamming distance between a hex PDQ hash and a stored one (32 bytes)."""
    return int(np.bitwise_count(np.frombuffer(bytes.fromhex(hex_), np.uint8) ^ stored).sum())


def _set_description(info: HashSetInfo) -> dict[str, Any]:
    """A set as reports describe it (what `vigil hashset list --json` shows)."""
    return info.to_dict()


def match_all(
    matchers: Sequence[Matcher], fps: Sequence[Fingerprints], settings: MatchSettings
) -> tuple[list[bool], list[list[tuple[int, Hit]]]]:
    """Match items against several builds (or views) at once: per item, whether a known-good
    set lists its bytes, and the (index of the matcher, hit) pairs to report.

    The known-good rule lives here and nowhere else: bytes listed in a known-good set (NSRL and
    the like) of any of the matchers are never reported by similarity (PDQ, vPDQ); an exact
    listing by an alerting set still is, since the police list outranks a software catalogue.
    """
    n = len(fps)
    known_good = [False] * n
    per_matcher: list[list[list[Hit]]] = []
    for matcher in matchers:
        good, hits = matcher.match_many(fps, settings)
        known_good = [a or b for a, b in zip(known_good, good, strict=True)]
        per_matcher.append(hits)
    reported: list[list[tuple[int, Hit]]] = [[] for _ in range(n)]
    for m, hits in enumerate(per_matcher):
        for i in range(n):
            for hit in hits[i]:
                if known_good[i] and hit.kind in NEAR_NAMES:  # similarity, on known-good bytes
                    continue
                reported[i].append((m, hit))
    return known_good, reported
