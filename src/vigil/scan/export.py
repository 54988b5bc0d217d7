"""Scan results for other tools: VICS 2.0 (how results go back to police tools) and CSV."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from typing import TextIO

from vigil.hashsets.entry import Entry
from vigil.hashsets.export import write_vics
from vigil.kinds import SINGLE
from vigil.scan.results import Match

CSV_COLUMNS = (
    "path",
    "member",
    "size",
    "media_type",
    "hashset",
    "entry_id",
    "category",
    "kind",
    "distance",
    "transform",
    *(k.name for k in SINGLE),
    "pdq_quality",
)


def _media_file(m: Match) -> dict[str, object]:
    location = f"{m.path}/{m.member}" if m.member else m.path
    return {
        "MD5": m.fingerprints.md5.upper(),
        "FileName": os.path.basename(m.member or m.path),
        "FilePath": location,
        "ParentFilePath": m.path if m.member else None,
    }


def matches_to_entries(matches: Sequence[Match]) -> list[Entry]:
    """One entry per distinct found content (by SHA-256), listing every place it was found."""
    by_content: dict[str, Entry] = {}
    places: dict[str, set[str]] = {}
    for m in matches:
        fp = m.fingerprints
        entry = by_content.get(fp.sha256)
        if entry is None:
            hashes = {k.name: value for k in SINGLE if (value := fp.hex_of(k))}
            entry = Entry(
                hashes=hashes,
                id=None,
                category=m.entry.category,
                meta={
                    "MediaSize": fp.size,
                    "MimeType": fp.media_type,
                    "MediaFiles": [],
                    "matched": [],
                },
            )
            by_content[fp.sha256] = entry
            places[fp.sha256] = set()
        how = f"{m.hashset}:{m.entry.id}:{m.kind}:{m.distance}"
        if how not in entry.meta["matched"]:
            entry.meta["matched"].append(how)
        mf = _media_file(m)
        if mf["FilePath"] not in places[fp.sha256]:
            places[fp.sha256].add(str(mf["FilePath"]))
            entry.meta["MediaFiles"].append(mf)
    for entry in by_content.values():
        entry.meta["Comments"] = "matched " + "; ".join(entry.meta.pop("matched"))
    return list(by_content.values())


def export_vics(matches: Sequence[Match], out: TextIO) -> int:
    """Write matches as VICS 2.0 Media, MediaFiles saying where each copy was found."""
    return write_vics(matches_to_entries(matches), out)


def export_csv(matches: Sequence[Match], out: TextIO) -> int:
    """Write one CSV row per match."""
    w = csv.writer(out)
    w.writerow(CSV_COLUMNS)
    for m in matches:
        fp = m.fingerprints
        w.writerow(
            [
                m.path,
                m.member or "",
                fp.size,
                fp.media_type,
                m.hashset,
                m.entry.id or "",
                m.entry.category or "",
                m.kind,
                m.distance,
                m.transform or "",
                *(fp.hex_of(k) or "" for k in SINGLE),
                fp.pdq.quality if fp.pdq else "",
            ]
        )
    return len(matches)
