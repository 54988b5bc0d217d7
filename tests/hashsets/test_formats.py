"""The tests every registered hash-list format gets for free (vigil.hashsets.registry).

Each format declares a small example and the same with one malformed record; from those alone
every format is checked: detected as itself from content, read the same when named, a malformed
record counted and skipped, categories as declared, and a round trip through its writer when it
has one.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from vigil.hashsets import registry
from vigil.hashsets.entry import Entry, ParseReport
from vigil.hashsets.listformat import Detector, ListFormat, plain
from vigil.hashsets.reader import FORMATS, read_hashlist

ALL = registry.LIST_FORMATS
WRITTEN = [fmt for fmt in ALL if fmt.export is not None]


def read(tmp_path: Path, text: str, format: str = "auto") -> tuple[list[Entry], ParseReport]:
    path = tmp_path / "list.dat"  # a name that says nothing: detection reads the content
    path.write_text(text, encoding="utf-8", newline="")
    entries, report = read_hashlist(path, format)
    return list(entries), report


def content(entries: list[Entry]) -> list[tuple[object, ...]]:
    return [(e.id, e.category, e.hashes, e.vpdq) for e in entries]


@pytest.mark.parametrize("fmt", ALL, ids=lambda f: f.name)
def test_example_is_detected_as_its_format(tmp_path: Path, fmt: ListFormat) -> None:
    entries, report = read(tmp_path, fmt.example)
    assert report.format == fmt.name
    assert report.malformed == 0, report.problems
    assert entries
    assert all(e.hashes or e.vpdq for e in entries)
    assert report.known_good is fmt.known_good


@pytest.mark.parametrize("fmt", ALL, ids=lambda f: f.name)
def test_example_reads_the_same_when_named(tmp_path: Path, fmt: ListFormat) -> None:
    detected, _ = read(tmp_path, fmt.example)
    for name in (fmt.name, *fmt.aliases):
        named, report = read(tmp_path, fmt.example, name)
        assert report.format == fmt.name
        assert content(named) == content(detected)


@pytest.mark.parametrize("fmt", ALL, ids=lambda f: f.name)
def test_a_malformed_record_is_counted_not_fatal(tmp_path: Path, fmt: ListFormat) -> None:
    good, _ = read(tmp_path, fmt.example)
    entries, report = read(tmp_path, fmt.malformed_example, fmt.name)
    assert report.malformed == 1, report.problems
    assert len(report.problems) == 1
    # Every good record is still read (a video keeps its good frames).
    assert [e.id for e in entries] == [e.id for e in good]
    assert [e.hashes for e in entries] == [e.hashes for e in good]
    assert [len(e.vpdq) for e in entries] == [len(e.vpdq) for e in good]
    # ... and the file is still recognised for what it is.
    _, detected = read(tmp_path, fmt.malformed_example)
    assert detected.format == fmt.name


@pytest.mark.parametrize("fmt", ALL, ids=lambda f: f.name)
def test_categories_as_declared(tmp_path: Path, fmt: ListFormat) -> None:
    entries, _ = read(tmp_path, fmt.example)
    assert any(e.category for e in entries) is fmt.categories


@pytest.mark.parametrize("fmt", WRITTEN, ids=lambda f: f.name)
def test_round_trip_through_its_writer(tmp_path: Path, fmt: ListFormat) -> None:
    assert fmt.export is not None
    entries, _ = read(tmp_path, fmt.example)
    out = io.StringIO()
    assert fmt.export(entries, out) == len(entries)
    again, report = read(tmp_path, out.getvalue())
    assert report.format == fmt.name
    assert report.malformed == 0
    assert content(again) == content(entries)


def test_names_are_the_public_ones_in_order() -> None:
    assert FORMATS == registry.NAMES == tuple(fmt.name for fmt in ALL)
    assert set(registry.EXPORT_NAMES) == {"vics", "csv", "vpdq-csv"}
    assert [fmt.name for fmt in ALL if fmt.known_good] == ["nsrl"]


def test_every_name_and_alias_finds_its_format() -> None:
    for fmt in ALL:
        for name in (fmt.name, *fmt.aliases):
            assert registry.get(name) is fmt
    assert "auto" not in registry.CHOICES
    with pytest.raises(KeyError):
        registry.get("no-such-format")


def test_detection_goes_by_priority() -> None:
    priorities = [rule.priority for rule, _ in registry.DETECTION]
    assert priorities == sorted(priorities)
    assert all(fmt.detect for fmt in ALL)


def test_a_name_is_declared_once() -> None:
    def fake(name: str, *aliases: str) -> ListFormat:
        return ListFormat(
            name=name,
            parse=plain(lambda stream, report: iter(())),
            detect=(Detector(1, lambda sample: False),),
            example="",
            malformed_example="",
            aliases=aliases,
        )

    assert set(registry._index((fake("a", "b"), fake("c")))) == {"a", "b", "c"}
    with pytest.raises(ValueError, match="taken"):
        registry._index((fake("a"), fake("b", "a")))
    with pytest.raises(ValueError, match="taken"):
        registry._index((fake("auto"),))
