"""A match made into the server's incident report: what a reviewer needs, nothing more.

The report carries the matched item's own fingerprints and the file's metadata; never content,
never a fingerprint of anything that did not match; its file times are the stat the scan took
(last written, inode changed, and created where the platform records a birth time). Its id is made here from what was found
(path, archive member, set, entry, kind and the matched item's SHA-256): the same finding made
again (a rescan, a resend after a crash) has the same id, which the server acknowledges without
counting it twice.
"""

from __future__ import annotations

import hashlib
import os
import pwd
from datetime import UTC, datetime
from typing import Any

from vigil.scan.results import Match

# The server bounds every string: what is longer is cut (paths past PATH_MAX do not exist on Linux).
PATH_MAX = 4096
NAME_MAX = 255


def report_id(match: Match) -> str:
    """The agent-made id of a finding: stable across rescans and resends."""
    key = "\0".join(
        (
            match.path,
            match.member or "",
            match.hashset,
            match.entry.id or "",
            match.kind,
            match.fingerprints.sha256,
        )
    )
    return "r-" + hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:40]


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name[:NAME_MAX]
    except KeyError:
        return str(uid)


def home_user(path: str) -> str | None:
    """The OS user whose home directory holds `path` (the person the finding concerns)."""
    best: tuple[int, str] | None = None
    for entry in pwd.getpwall():
        home = entry.pw_dir.rstrip("/")
        if home and home != "/" and (path == home or path.startswith(home + "/")):
            if best is None or len(home) > best[0]:
                best = (len(home), entry.pw_name)
    return best[1][:NAME_MAX] if best else None


def build(
    match: Match,
    detection: str,
    catalog_version: str | None,
    st: os.stat_result | None,
    seen_at: datetime,
) -> dict[str, Any]:
    """The incident report of one match (the server's IncidentReport body). Every match of one
    file in one scan carries the same `seen_at`: the server counts them as one sighting."""
    fp = match.fingerprints
    fingerprints: dict[str, str] = {"md5": fp.md5, "sha1": fp.sha1, "sha256": fp.sha256}
    if fp.pdq is not None:
        fingerprints["pdq"] = fp.pdq.hash
    segment = None
    if match.segment:
        segment = {
            "start": float(match.segment.get("query_start", 0.0)),
            "end": float(match.segment.get("query_end", 0.0)),
        }
    report: dict[str, Any] = {
        "id": report_id(match),
        "path": match.path[:PATH_MAX],
        "member": match.member[:PATH_MAX] if match.member else None,
        "user": home_user(match.path),
        "owner": _user_name(st.st_uid) if st is not None else None,
        "size": match.size,
        "media_type": (match.media_type or None) and match.media_type[:NAME_MAX],
        "hashset": match.hashset[:NAME_MAX],
        "entry": {
            "id": (match.entry.id or "?")[:NAME_MAX],
            "category": match.entry.category[:100] if match.entry.category else None,
        },
        "kind": match.kind,
        "distance": int(match.distance),
        "transform": match.transform,
        "segment": segment,
        "detection": detection,
        "seen_at": seen_at.isoformat(),
        "fingerprints": fingerprints,
        "catalog_version": catalog_version[:100] if catalog_version else None,
    }
    if st is not None:
        report["file_times"] = file_times(st)
    return report


def file_times(st: os.stat_result) -> dict[str, str | None]:
    """A file's times as the report carries them: ISO 8601 in UTC."""

    def iso(seconds: float) -> str:
        return datetime.fromtimestamp(seconds, UTC).isoformat()

    birth = getattr(st, "st_birthtime", None)
    return {
        "modified": iso(st.st_mtime),
        "changed": iso(st.st_ctime),
        "created": iso(birth) if birth is not None else None,
    }
