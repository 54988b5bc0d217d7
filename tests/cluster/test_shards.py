"""Shards: cut by count and bytes, the same names for the same files, fed part by part."""

from __future__ import annotations

import pytest

from vigil.cluster.listing import Listed, object_identity
from vigil.cluster.shards import Cutter, cut


def files(n: int, size: int = 10, tag: str = "v1") -> list[Listed]:
    return [Listed(f"/data/f{i:04d}", size, f"{tag}:{i}") for i in range(n)]


def test_shards_are_cut_by_count_and_by_bytes() -> None:
    by_count = list(cut(files(10), max_files=4))
    assert [len(s.files) for s in by_count] == [4, 4, 2]
    by_bytes = list(cut(files(10, size=100), max_files=100, max_bytes=250))
    assert [len(s.files) for s in by_bytes] == [2, 2, 2, 2, 2]
    # A file larger than a shard's bytes is a shard of its own, never dropped.
    big = [Listed("/data/big", 1000, "x"), *files(2)]
    assert [len(s.files) for s in cut(big, max_bytes=100)] == [1, 2]
    with pytest.raises(ValueError):
        list(cut(files(1), max_files=0))


def test_the_same_files_give_the_same_names_and_a_change_another() -> None:
    names = [s.name for s in cut(files(10), max_files=4)]
    assert names == [s.name for s in cut(files(10), max_files=4)]
    assert len(set(names)) == 3
    changed = files(10)
    changed[5] = Listed(changed[5].url, changed[5].size, "v2:5")
    again = [s.name for s in cut(changed, max_files=4)]
    assert again[0] == names[0] and again[2] == names[2] and again[1] != names[1]


def test_small_parts_fill_shards_together() -> None:
    cutter = Cutter(max_files=5)
    shards = []
    for part in range(4):
        shards += list(cutter.feed(files(3, tag=f"p{part}"), "file"))
    shards += list(cutter.flush())
    assert [len(s.files) for s in shards] == [5, 5, 2]
    # Another protocol starts a shard of its own.
    cutter = Cutter(max_files=5)
    mixed = list(cutter.feed(files(2), "file")) + list(cutter.feed(files(2), "s3"))
    mixed += list(cutter.flush())
    assert [(s.protocol, len(s.files)) for s in mixed] == [("file", 2), ("s3", 2)]


def test_object_identity_prefers_a_version() -> None:
    assert object_identity({"ETag": '"abc"', "size": 3}) == "ETag=abc:3"
    assert object_identity({"VersionId": "7", "ETag": "abc", "size": 3}) == "VersionId=7:3"
    assert object_identity({"size": 3}) == "size=3"
