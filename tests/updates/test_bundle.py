"""Catalog bundles: a catalog moved as a full bundle or as deltas ends up the same, matches the
same files, and a broken or misapplied bundle changes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest
import zstandard
from support.catalogs import FORMATS, content, normalised, put, synthetic

from vigil.catalog.store import Catalog
from vigil.engine import Engine
from vigil.updates import bundle as B


def full(catalog: Catalog, version: int) -> B.Bundle:
    return B.read_bundle(B.full_bundle(version, content(catalog)))


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Catalog]:
    """An agent's catalog: SQLite under its home."""
    home = tmp_path / "agent"
    home.mkdir()
    cat = Catalog.open(home)
    yield cat
    cat.close()


def test_full_then_deltas_reproduce_the_servers_catalog(
    catalog: Catalog, agent: Catalog, shared_dir: Path
) -> None:
    for name in FORMATS[:5]:
        catalog.import_file(shared_dir / "formats" / name)
    put(catalog, "synthetic", synthetic(200, 1))
    B.apply(agent, full(catalog, 1))
    assert B.catalog_version(agent) == 1
    assert normalised(agent) == normalised(catalog)

    old = content(catalog)
    for name in FORMATS[5:]:
        catalog.import_file(shared_dir / "formats" / name)
    catalog.remove("example")  # example.hsh
    changed = synthetic(200, 1)
    changed[:10] = synthetic(10, 2, videos=0)  # ten entries replaced
    del changed[50]
    put(catalog, "synthetic", changed)
    data = B.delta_bundle(1, old, 2, content(catalog))
    delta = B.read_bundle(data)
    assert delta.base == 1 and delta.removed_sets == ["example"]
    sections = {s.info["name"]: s for s in delta.sets}
    assert sections["synthetic"].op == B.CHANGE
    assert len(sections["synthetic"].entries) == 10 and len(sections["synthetic"].removed) == 11
    assert {s.op for n, s in sections.items() if n != "synthetic"} == {B.ADD}
    B.apply(agent, delta)
    assert B.catalog_version(agent) == 2
    assert normalised(agent) == normalised(catalog)
    # Deterministic: the same catalog gives the same bytes.
    assert B.delta_bundle(1, old, 2, content(catalog)) == data
    assert B.full_bundle(2, content(catalog)) == B.full_bundle(2, content(catalog))


def test_unchanged_sets_are_not_in_a_delta(catalog: Catalog) -> None:
    put(catalog, "a", synthetic(20, 1))
    put(catalog, "b", synthetic(20, 2))
    old = content(catalog)
    put(catalog, "b", synthetic(21, 2))
    delta = B.read_bundle(B.delta_bundle(4, old, 5, content(catalog)))
    assert [(s.info["name"], len(s.entries), len(s.removed)) for s in delta.sets] == [("b", 1, 0)]


def test_agent_matches_the_same_files_as_the_server(tmp_path: Path) -> None:
    from support.planted import build

    (tmp_path / "data").mkdir()
    tree = build(tmp_path / "data")
    server_home, agent_home = tmp_path / "server", tmp_path / "agent"
    server_home.mkdir()
    agent_home.mkdir()
    server = Catalog.open(server_home)
    agent = Catalog.open(agent_home)
    try:
        server.import_file(tree.hashlist, name="known")
        put(server, "noise", synthetic(50, 3))
        B.apply(agent, full(server, 1))
    finally:
        server.close()
        agent.close()
    files = sorted(p for p in tree.root.rglob("*") if p.is_file())
    found = {}
    for home in (server_home, agent_home):
        with Engine.open(home) as engine:
            found[home] = sorted(
                json.dumps({k: v for k, v in m.to_dict().items()}, sort_keys=True, default=str)
                for p in files
                for m in engine.check(p.read_bytes(), str(p.relative_to(tree.root))).matches
            )
    assert len(found[server_home]) >= len(tree.planted) - 2  # the planted copies are found
    assert found[agent_home] == found[server_home]


def test_delta_for_another_base_is_refused_and_changes_nothing(
    catalog: Catalog, agent: Catalog
) -> None:
    put(catalog, "a", synthetic(20, 1))
    B.apply(agent, full(catalog, 3))
    before = normalised(agent)
    old = content(catalog)
    put(catalog, "a", synthetic(25, 1))
    delta = B.read_bundle(B.delta_bundle(7, old, 8, content(catalog)))
    with pytest.raises(B.BundleError, match="does not apply to version 3"):
        B.apply(agent, delta)
    assert normalised(agent) == before and B.catalog_version(agent) == 3


def test_delta_that_would_leave_a_different_set_is_refused(
    catalog: Catalog, agent: Catalog
) -> None:
    put(catalog, "a", synthetic(20, 1))
    B.apply(agent, full(catalog, 1))
    before = normalised(agent)
    old = content(catalog)
    put(catalog, "a", synthetic(25, 1))
    delta = B.read_bundle(B.delta_bundle(1, old, 2, content(catalog)))
    delta.sets[0].entries.pop()  # one added entry lost
    with pytest.raises(B.BundleError, match="differs from the server's"):
        B.apply(agent, delta)
    assert normalised(agent) == before and B.catalog_version(agent) == 1


def _frame(kind: bytes, header: dict[str, object], *objs: object) -> bytes:
    payload = b"".join(msgpack.packb(o, use_bin_type=True) for o in (header, *objs))
    return B.MAGIC + bytes([B.FORMAT]) + kind + zstandard.ZstdCompressor().compress(payload)


GOOD_INFO = {
    "name": "s",
    "format": "vics",
    "source": "x",
    "version": "1",
    "imported_at": "2024-01-01T00:00:00Z",
    "known_good": False,
    "content_sha256": "",
    "entries": 1,
    "counts": {},
    "info": {},
}


def _section(entry: object) -> list[object]:
    return [
        {"op": "add", "info": GOOD_INFO, "removed": [], "digest": b"\0" * 32, "count": 1},
        entry,
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "bad magic"),
        (b"PK\x03\x04 not a bundle", "bad magic"),
        (B.MAGIC + b"\x09F", "format 9 is not supported"),
        (B.MAGIC + b"\x01X", "unknown catalog bundle kind"),
        (B.MAGIC + b"\x01F" + b"garbage that is not zstd", "compressed data"),
        (_frame(B.FULL, {"version": 1, "sections": 1}), "truncated"),
        (_frame(B.FULL, {"sections": 0}), "no version"),
        (_frame(B.DELTA, {"version": 2, "sections": 0}), "no base version"),
        (_frame(B.FULL, {"version": 1, "sections": 0}, "extra"), "data after the last set"),
        (
            _frame(
                B.FULL, {"version": 1, "sections": 1}, *_section([None, None, {}, [[1, b"12"]], []])
            ),
            "md5 value is not 16 bytes",
        ),
        (
            _frame(
                B.FULL, {"version": 1, "sections": 1}, *_section([None, None, {}, [[99, b"1"]], []])
            ),
            "unknown hash kind code 99",
        ),
        (
            _frame(B.FULL, {"version": 1, "sections": 1}, *_section([None, None, {}, [], []])),
            "without hashes",
        ),
        (
            _frame(
                B.FULL,
                {"version": 1, "sections": 1},
                {
                    "op": "change",
                    "info": GOOD_INFO,
                    "removed": [],
                    "digest": b"\0" * 32,
                    "count": 0,
                },
            ),
            "bad op",
        ),
        (
            _frame(
                B.FULL,
                {"version": 1, "sections": 1},
                {
                    "op": "add",
                    "info": {"name": "s"},
                    "removed": [],
                    "digest": b"\0" * 32,
                    "count": 0,
                },
            ),
            "set info fields",
        ),
    ],
)
def test_broken_bundles_are_refused_clearly(data: bytes, message: str) -> None:
    with pytest.raises(B.BundleError, match=message):
        B.read_bundle(data)


def test_truncated_and_flipped_real_bundles_are_refused(catalog: Catalog, agent: Catalog) -> None:
    put(catalog, "a", synthetic(300, 1))
    data = B.full_bundle(1, content(catalog))
    for cut in (len(data) // 2, len(data) - 1):
        with pytest.raises(B.BundleError):
            B.read_bundle(data[:cut])
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    with pytest.raises(B.BundleError):
        bundle = B.read_bundle(bytes(flipped))
        # A flip inside a hash value parses; the content digest then refuses it.
        B.apply(agent, bundle)
    assert B.catalog_version(agent) is None and normalised(agent) == {}


def test_a_chain_of_deltas_applies_whole_or_not_at_all(catalog: Catalog, agent: Catalog) -> None:
    put(catalog, "a", synthetic(30, 1))
    B.apply(agent, full(catalog, 1))
    before = normalised(agent)
    v1 = content(catalog)
    put(catalog, "b", synthetic(10, 2))
    v2 = content(catalog)
    put(catalog, "a", synthetic(35, 1))
    v3 = content(catalog)
    d12 = B.read_bundle(B.delta_bundle(1, v1, 2, v2))
    d23 = B.read_bundle(B.delta_bundle(2, v2, 3, v3))
    broken = B.read_bundle(B.delta_bundle(2, v2, 3, v3))
    broken.sets[0].digest = b"\0" * 32
    with pytest.raises(B.BundleError, match="differs"):
        B.apply(agent, d12, broken)
    assert normalised(agent) == before and B.catalog_version(agent) == 1
    B.apply(agent, d12, d23)
    assert normalised(agent) == normalised(catalog) and B.catalog_version(agent) == 3
