"""Listing the sets straight from the SQLite file gives exactly what Catalog.sets() gives."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from vigil.catalog import revision
from vigil.catalog.listing import read_sets
from vigil.catalog.store import Catalog
from vigil.hashsets.entry import Entry, ParseReport


def test_read_sets_matches_the_catalog(tmp_path: Path) -> None:
    catalog = Catalog.open(tmp_path)
    try:
        assert read_sets(tmp_path) == []
        for name, known_good in (("police", False), ("nsrl", True), ("Älter", False)):
            report = ParseReport(format="csv", known_good=known_good)
            report.info["version_hint"] = "2026-11"
            catalog.import_entries(
                name,
                [
                    Entry(hashes={"md5": "ab" * 16, "sha1": "cd" * 20}, id="1", category="1"),
                    Entry(hashes={"pdq": "ef" * 32}, id="2", category=None),
                ],
                report,
                source=f"/lists/{name}.csv",
                version="v1",
                known_good=known_good,
                content_sha256="12" * 32,
            )
        sets = catalog.sets()
        assert len(sets) == 3
        assert read_sets(tmp_path) == sets
        assert [s.to_dict() for s in read_sets(tmp_path) or []] == [s.to_dict() for s in sets]
    finally:
        catalog.close()


def test_read_sets_leaves_what_it_cannot_answer_to_the_catalog(tmp_path: Path) -> None:
    assert read_sets(tmp_path) is None  # no catalog yet
    catalog = Catalog.open(tmp_path)
    with catalog.engine.begin() as conn:  # a revision to upgrade to (or from)
        conn.execute(text(f"UPDATE {revision.VERSION_TABLE} SET version_num = '0002'"))
    catalog.close()
    assert read_sets(tmp_path) is None
