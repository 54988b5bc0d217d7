"""The catalog store: import, replace, withdraw, remove, atomicity, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from vigil.catalog.store import Catalog
from vigil.errors import CatalogError, HashListError
from vigil.hashsets.entry import Entry, ParseReport

MD5 = [f"{i:032x}" for i in range(1, 6)]
SHA1 = [f"{i * 7:040x}" for i in range(1, 6)]


def entries(n: int = 5, category: str = "1") -> list[Entry]:
    return [
        Entry(
            hashes={"md5": MD5[i], "sha1": SHA1[i]},
            id=str(100 + i),
            category=category,
            meta={"n": i},
        )
        for i in range(n)
    ]


def test_import_counts_by_kind_and_category(catalog: Catalog) -> None:
    es = entries(4) + [Entry(hashes={"pdq": "ab" * 32}, id="p1", category=None)]
    result = catalog.import_entries(
        "police", es, ParseReport(format="csv"), source="x.csv", version="v1"
    )
    info = result.hashset
    assert info.entries == 5
    assert info.counts["by_kind"] == {"md5": 4, "sha1": 4, "pdq": 1}
    assert info.counts["by_category"] == {"1": 4, "uncategorised": 1}
    assert [s.name for s in catalog.sets()] == ["police"]
    assert catalog.generation() == 1


def test_reimport_replaces_the_old_version(catalog: Catalog) -> None:
    catalog.import_entries(
        "police", entries(5), ParseReport(format="csv"), source="a", version="v1"
    )
    result = catalog.import_entries(
        "police", entries(2, "2"), ParseReport(format="csv"), source="a", version="v2"
    )
    assert result.replaced is not None and result.replaced.version == "v1"
    assert catalog.get("police").entries == 2
    assert catalog.get("police").version == "v2"
    assert {e.category for e in catalog.iter_entries("police")} == {"2"}
    assert sum(1 for _ in catalog.iter_hashes("md5")) == 2
    assert catalog.generation() == 2


def test_failed_import_leaves_the_catalog_exactly_as_it_was(catalog: Catalog) -> None:
    catalog.import_entries(
        "police", entries(5), ParseReport(format="csv"), source="a", version="v1"
    )
    before = (
        catalog.generation(),
        [s.to_dict() for s in catalog.sets()],
        list(catalog.iter_hashes("md5")),
    )

    def broken() -> Iterator[Entry]:
        yield from entries(3, "9")
        raise HashListError("line 4: unexpected end of file")

    with pytest.raises(HashListError):
        catalog.import_entries(
            "police", broken(), ParseReport(format="csv"), source="a", version="v2"
        )
    after = (
        catalog.generation(),
        [s.to_dict() for s in catalog.sets()],
        list(catalog.iter_hashes("md5")),
    )
    assert after == before


def test_withdrawn_ids_are_removed(catalog: Catalog) -> None:
    report = ParseReport(format="ncmec", deleted_ids=["101", "103", "999"])
    result = catalog.import_entries("ncmec", entries(5), report, source="a", version="v1")
    assert result.withdrawn == 2
    assert catalog.get("ncmec").entries == 3
    assert sorted(e.id for e in catalog.iter_entries("ncmec")) == ["100", "102", "104"]


def test_export_round_trip_keeps_hashes_ids_categories_meta(catalog: Catalog) -> None:
    catalog.import_entries(
        "police", entries(3), ParseReport(format="csv"), source="a", version="v1"
    )
    got = list(catalog.iter_entries("police"))
    assert [(e.id, e.category, e.hashes, e.meta) for e in got] == [
        (e.id, e.category, e.hashes, e.meta) for e in entries(3)
    ]


def test_remove_and_unknown_names(catalog: Catalog) -> None:
    catalog.import_entries("a", entries(2), ParseReport(format="csv"), source="a", version="1")
    catalog.import_entries("b", entries(1), ParseReport(format="csv"), source="b", version="1")
    catalog.remove("a")
    assert [s.name for s in catalog.sets()] == ["b"]
    with pytest.raises(CatalogError, match="no hash set named 'a'"):
        catalog.remove("a")
    with pytest.raises(CatalogError, match="known: b"):
        catalog.get("nope")


def test_known_good_flag_from_report(catalog: Catalog) -> None:
    catalog.import_entries(
        "nsrl", entries(2), ParseReport(format="nsrl", known_good=True), source="n", version="1"
    )
    assert catalog.get("nsrl").known_good is True


def test_all_malformed_is_an_error_and_changes_nothing(catalog: Catalog) -> None:
    report = ParseReport(format="md5sum")
    report.problem(1, "not a hash: 'xyz'")
    with pytest.raises(HashListError, match="no valid entries"):
        catalog.import_entries("bad", [], report, source="a", version="1")
    assert catalog.sets() == []
    assert catalog.generation() == 0
