"""Confirmed incidents for police: VICS 2.0 (through the engine's writer) and CSV.

Only incidents a reviewer has confirmed (or already handed to police) leave the server this way;
each export is audited with the ids it carried.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.hashsets.entry import Entry
from vigil.hashsets.export import write_vics
from vigil.kinds import SINGLE
from vigil.server import audit
from vigil.server.incidents import Status
from vigil.server.models import Incident

FORMATS = ("vics", "csv")
# What may be exported: a reviewer's decision stands behind each one.
EXPORTABLE = (Status.CONFIRMED, Status.HANDED_TO_POLICE)
MEDIA_TYPES = {"vics": "application/json", "csv": "text/csv; charset=utf-8"}
# Rows read from the database at a time.
CHUNK = 1000

CSV_COLUMNS = (
    "id",
    "status",
    "host",
    "agent",
    "user",
    "owner",
    "client",
    "path",
    "member",
    "size",
    "media_type",
    "hashset",
    "entry_id",
    "category",
    "kind",
    "kinds",
    "distance",
    "transform",
    "detection",
    "first_seen",
    "last_seen",
    "seen_count",
    *(k.name for k in SINGLE),
    "catalog_version",
    "file_modified",
    "file_changed",
    "file_created",
)


class ExportError(ValueError):
    """An export that cannot be made as asked (unknown format, a status that is not exportable)."""


def check(fmt: str, statuses: Sequence[Status]) -> tuple[Status, ...]:
    """The statuses to export, checked; all exportable ones when none are named."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}: one of {', '.join(FORMATS)}")
    for s in statuses:
        if s not in EXPORTABLE:
            raise ExportError(
                f"only {' and '.join(e.value for e in EXPORTABLE)} incidents are exported, "
                f"not {s.value}"
            )
    return tuple(statuses) or EXPORTABLE


def _rows(session: Session, statuses: Sequence[Status]) -> Iterator[Incident]:
    """Incidents with one of `statuses`, oldest first, read in keyset chunks."""
    after = 0
    while True:
        chunk = list(
            session.scalars(
                select(Incident)
                .where(Incident.status.in_([s.value for s in statuses]), Incident.id > after)
                .order_by(Incident.id)
                .limit(CHUNK)
            )
        )
        yield from chunk
        if len(chunk) < CHUNK:
            return
        after = chunk[-1].id


def _entry(incident: Incident) -> Entry:
    """An incident as a VICS Media record: its hashes, category, where it was found."""
    fp = incident.fingerprints
    location = f"{incident.path}/{incident.member}" if incident.member else incident.path
    media_file: dict[str, Any] = {
        "FileName": location.replace("\\", "/").rsplit("/", 1)[-1],
        "FilePath": location,
        "SourceID": incident.host,
    }
    if fp.get("md5"):
        media_file["MD5"] = str(fp["md5"]).upper()
    if incident.member:
        media_file["ParentFilePath"] = incident.path
    # VICS's file times: Written (last modified), Change (inode changed), Created.
    for name, t in (
        ("Written", incident.file_modified),
        ("Change", incident.file_changed),
        ("Created", incident.file_created),
    ):
        if t is not None:
            media_file[name] = t.isoformat()
    return Entry(
        hashes={k.name: str(fp[k.name]) for k in SINGLE if fp.get(k.name)},
        id=str(incident.id),
        category=incident.category,
        meta={
            "MediaSize": incident.size,
            "MimeType": incident.media_type,
            "DateUpdated": incident.updated_at.isoformat(),
            "MediaFiles": [media_file],
            "Comments": (
                f"vigil incident {incident.id} ({incident.status}): host {incident.host}, "
                f"set {incident.hashset} entry {incident.entry_id}, matched by "
                f"{', '.join(incident.kinds)}, first seen {incident.first_seen.isoformat()}, "
                f"last seen {incident.last_seen.isoformat()}, seen {incident.seen_count} times"
            ),
        },
    )


def _csv_row(i: Incident) -> list[Any]:
    return [
        i.id,
        i.status,
        i.host,
        i.agent_id,
        i.user or "",
        i.owner or "",
        i.client or "",
        i.path,
        i.member or "",
        "" if i.size is None else i.size,
        i.media_type or "",
        i.hashset,
        i.entry_id,
        i.category or "",
        i.kind,
        " ".join(i.kinds),
        "" if i.distance is None else i.distance,
        i.transform or "",
        i.detection,
        i.first_seen.isoformat(),
        i.last_seen.isoformat(),
        i.seen_count,
        *(i.fingerprints.get(k.name) or "" for k in SINGLE),
        i.catalog_version or "",
        *(_iso(t) for t in (i.file_modified, i.file_changed, i.file_created)),
    ]


def _iso(t: datetime | None) -> str:
    return t.isoformat() if t is not None else ""


def export(session: Session, fmt: str, statuses: Sequence[Status], actor: str) -> tuple[str, int]:
    """The export's text and how many incidents it holds; audited in the caller's transaction."""
    chosen = check(fmt, statuses)
    rows = list(_rows(session, chosen))
    out = io.StringIO()
    if fmt == "vics":
        write_vics((_entry(i) for i in rows), out)
    else:
        w = csv.writer(out)
        w.writerow(CSV_COLUMNS)
        w.writerows(_csv_row(i) for i in rows)
    audit.record(
        session,
        actor,
        "incident.export",
        detail={
            "format": fmt,
            "statuses": [s.value for s in chosen],
            "incidents": [i.id for i in rows],
        },
    )
    return out.getvalue(), len(rows)


def filename(fmt: str) -> str:
    """The download's file name."""
    return "vigil-incidents.json" if fmt == "vics" else "vigil-incidents.csv"
