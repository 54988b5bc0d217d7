"""Write entries as VICS 2.0 JSON or as CSV, one record at a time.

VICS is how found material goes back to police tools: `MediaFiles` (taken from
`entry.meta['MediaFiles']`) says where each copy was found.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from typing import Any, TextIO

from vigil.fingerprint.video import reference_lines
from vigil.hashsets.entry import Entry
from vigil.hashsets.formats.vics import FLAG_FIELDS, SOURCE_ID_KEY

VICS_CONTEXT = (
    "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/{scheme}/$metadata#Media"
)
CSV_COLUMNS = ("id", "category", "md5", "sha1", "sha256", "pdq")
# VICS Media fields copied from an entry's meta when present (flags written as JSON booleans).
MEDIA_FIELDS = (
    "MediaSize",
    "DateUpdated",
    "MimeType",
    "RelativeFilePath",
    "IsPrecategorized",
    "PrecategorizationSource",
    "VictimIdentified",
    "OffenderIdentified",
    "IsDistributed",
    "IsSuspected",
    "SelfGenerated",
    "Series",
    "Tags",
    "Comments",
    "PhotoDNA",
    "Segments",
)
_ALTERNATIVE_NAMES = (("sha256", "SHA256"), ("pdq", "PDQ"))
# A video's vPDQ in AlternativeHashes: HashName "vPDQ", HashValue the reference tool's lines
# (`frame,quality,pdq,timestamp`) joined by newlines.
VPDQ_HASH_NAME = "vPDQ"
VPDQ_CSV_COLUMNS = ("video_id", "frame", "quality", "pdq", "timestamp", "category", "md5")


def write_vics(entries: Iterable[Entry], out: TextIO, *, context: str = "US") -> int:
    """Write entries as a VICS 2.0 Media list (`context`: US, UK or CUSTOM); return the count.

    MediaID is the entry's id when it is a number; otherwise a number is made up (one above the
    largest seen so far) and the original id is kept next to it as `MediaID@vigil.sourceId`.
    """
    out.write('{\n  "@odata.context": ')
    out.write(json.dumps(VICS_CONTEXT.format(scheme=context.upper())))
    out.write(',\n  "value": [')
    count = 0
    next_id = 1
    for entry in entries:
        media, next_id = _media(entry, next_id)
        out.write(",\n    " if count else "\n    ")
        out.write(json.dumps(media, ensure_ascii=False, default=str))
        count += 1
    out.write("\n  ]\n}\n" if count else "]\n}\n")
    return count


def write_csv(entries: Iterable[Entry], out: TextIO) -> int:
    """Write entries as CSV with the header id,category,md5,sha1,sha256,pdq; return the count."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for entry in entries:
        hashes = entry.hashes
        writer.writerow(
            (
                entry.id or "",
                entry.category or "",
                hashes.get("md5", ""),
                hashes.get("sha1", ""),
                hashes.get("sha256", ""),
                hashes.get("pdq", ""),
            )
        )
        count += 1
    return count


def write_vpdq_csv(entries: Iterable[Entry], out: TextIO) -> int:
    """Write the videos among entries as vPDQ CSV (one row per frame); return the videos written."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(VPDQ_CSV_COLUMNS)
    count = 0
    for number, entry in enumerate(entries, start=1):
        if not entry.vpdq:
            continue
        video_id = entry.id or f"video-{number}"
        for f in entry.vpdq:
            writer.writerow(
                (
                    video_id,
                    f.index,
                    f.quality,
                    f.hash,
                    f"{f.timestamp:.3f}",
                    entry.category or "",
                    entry.hashes.get("md5", ""),
                )
            )
        count += 1
    return count


def _media(entry: Entry, next_id: int) -> tuple[dict[str, Any], int]:
    """One entry as a VICS Media record, and the next free made-up MediaID."""
    media: dict[str, Any] = {}
    if entry.id is not None and entry.id.isascii() and entry.id.isdigit():
        media["MediaID"] = int(entry.id)
        next_id = max(next_id, media["MediaID"] + 1)
    else:
        media["MediaID"] = next_id
        next_id += 1
        if entry.id is not None:
            media[SOURCE_ID_KEY] = entry.id
    category = entry.category
    if category is not None and category.isascii() and category.isdigit():
        media["Category"] = int(category)
    else:
        media["Category"] = category
    md5 = entry.hashes.get("md5")
    if md5:
        media["MD5"] = md5.upper()
    if entry.hashes.get("sha1"):
        media["SHA1"] = entry.hashes["sha1"].upper()
    meta = entry.meta
    for name in MEDIA_FIELDS:
        value = meta.get(name)
        if value is not None and value != "":
            media[name] = value if name not in FLAG_FIELDS else _flag(value)
    alternatives: list[dict[str, Any]] = []
    for kind, hash_name in _ALTERNATIVE_NAMES:
        if entry.hashes.get(kind):
            alternative = {"HashName": hash_name, "HashValue": entry.hashes[kind]}
            alternatives.append({"MD5": md5.upper(), **alternative} if md5 else alternative)
    if entry.vpdq:
        value = "\n".join(reference_lines(entry.vpdq))
        alternative = {"HashName": VPDQ_HASH_NAME, "HashValue": value}
        alternatives.append({"MD5": md5.upper(), **alternative} if md5 else alternative)
    for other in meta.get("alternative_hashes") or ():
        if isinstance(other, dict):
            alternatives.append({"MD5": md5.upper(), **other} if md5 else dict(other))
    if alternatives:
        media["AlternativeHashes"] = alternatives
    files = meta.get("MediaFiles")
    if isinstance(files, list) and files:
        media["MediaFiles"] = files
    return media, next_id


def _flag(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return value
