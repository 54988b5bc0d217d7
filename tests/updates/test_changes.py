"""The catalog's change record and the deltas built from it: a delta the publisher builds from
what changed is the one a diff of the whole catalogs gives, on SQLite and PostgreSQL; a re-import
keeps the entries that did not change; a whole bundle made later, behind the deltas, still
verifies and brings an agent of any version to the newest."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from support.catalogs import FORMATS, content, normalised, put, synthetic

from vigil.catalog import schema
from vigil.catalog.digest import entry_digest
from vigil.catalog.store import Catalog, iter_packed
from vigil.hashsets.entry import ParseReport
from vigil.server.publish import Repository, _set_rows, change_delta
from vigil.updates import bundle as B
from vigil.updates.client import CatalogUpdater, save_root


def stored_digests(catalog: Catalog) -> list[tuple[int, bytes | None]]:
    e = schema.entries.c
    with catalog.engine.connect() as conn:
        return [(r[0], r[1]) for r in conn.execute(select(e.id, e.digest).order_by(e.id))]


def packed_digests(catalog: Catalog) -> list[tuple[int, bytes]]:
    with catalog.snapshot() as snap:
        return sorted((eid, entry_digest(p)) for _s, eid, p in iter_packed(snap.conn))


def sections(
    bundle: B.Bundle,
) -> dict[str, tuple[str, dict[str, object], list[bytes], list[bytes], bytes]]:
    """A bundle's sections as comparable data (entries and removals as sorted multisets)."""
    return {
        s.info["name"]: (s.op, s.info, sorted(s.entries), sorted(s.removed), s.digest)
        for s in bundle.sets
    }


def test_the_digest_stored_at_import_is_the_digest_of_the_entry_read_back(
    catalog: Catalog, shared_dir: Path
) -> None:
    for name in FORMATS:
        catalog.import_file(shared_dir / "formats" / name)
    put(catalog, "synthetic", synthetic(50, 1))
    stored = stored_digests(catalog)
    assert stored and all(d is not None for _, d in stored)
    assert [(i, bytes(d)) for i, d in stored if d is not None] == packed_digests(catalog)


def test_a_reimport_changes_only_the_entries_that_differ(catalog: Catalog) -> None:
    entries = synthetic(100, 1)
    put(catalog, "s", entries)
    ids_before = dict(stored_digests(catalog))
    changed = list(entries)
    changed[:5] = synthetic(5, 2, videos=0)
    del changed[40]
    put(catalog, "s", changed)
    ids_after = dict(stored_digests(catalog))
    kept = set(ids_before) & set(ids_after)
    assert len(kept) == len(entries) - 6  # 94 rows untouched, same ids and digests
    assert all(ids_before[i] == ids_after[i] for i in kept)
    assert len(ids_after) == len(changed)
    assert packed_digests(catalog) == sorted((i, bytes(d)) for i, d in ids_after.items() if d)
    r = schema.removed_entries.c
    with catalog.engine.connect() as conn:
        removed = conn.execute(select(r.digest, r.removed)).all()
    generation = catalog.generation()
    assert sorted(bytes(d) for d, _ in removed) == sorted(
        bytes(ids_before[i]) for i in set(ids_before) - kept if ids_before[i]
    )
    assert {g for _, g in removed} == {generation}
    assert catalog.forget_removed(generation) == 6
    assert catalog.forget_removed(generation) == 0


@pytest.mark.parametrize(
    "change",
    [
        "reimport",
        "new_set",
        "remove_set",
        "recreate_set",
        "info_only",
        "withdraw",
        "twice",
    ],
)
def test_the_delta_from_the_change_record_equals_the_delta_by_diffing(
    catalog: Catalog, tmp_path: Path, change: str
) -> None:
    put(catalog, "a", synthetic(60, 1))
    put(catalog, "b", synthetic(30, 2))
    agent = Catalog(f"sqlite:///{tmp_path / 'agent.sqlite'}")
    try:
        B.apply(agent, B.read_bundle(B.full_bundle(1, content(catalog))))
        old = content(catalog)
        with catalog.snapshot() as snap:
            base_sets = _set_rows(snap.conn)
            base_generation = snap.generation()

        def do(cat: Catalog) -> None:
            if change == "reimport":
                changed = synthetic(60, 1)
                changed[3:13] = synthetic(10, 3, videos=0)
                changed.append(changed[0])  # a duplicate entry
                put(cat, "a", changed)
            elif change == "new_set":
                put(cat, "c", synthetic(10, 4))
            elif change == "remove_set":
                cat.remove("b")
            elif change == "recreate_set":
                cat.remove("b")
                put(cat, "b", synthetic(31, 2))
            elif change == "info_only":
                cat.import_entries(
                    "b", synthetic(30, 2), list_report(), source="elsewhere", version="2"
                )
            elif change == "withdraw":
                report = list_report()
                report.deleted_ids = ["e1-0", "e1-7"]
                cat.import_entries("a", synthetic(60, 1), report, source="test", version="1")
            elif change == "twice":
                # Added after the base and removed again before publishing: in neither list.
                put(cat, "a", synthetic(60, 1) + synthetic(3, 9, videos=0))
                put(cat, "a", synthetic(59, 1))

        do(catalog)
        with catalog.snapshot() as snap:
            data = change_delta(snap.conn, 1, base_generation, base_sets, 2)
        from_record = B.read_bundle(data)
        by_diff = B.read_bundle(B.delta_bundle(1, old, 2, content(catalog)))
        assert from_record.removed_sets == by_diff.removed_sets or change == "recreate_set"
        record, diff = sections(from_record), sections(by_diff)
        if change == "recreate_set":
            # The record sees a set removed and made again (removed, then added whole); the
            # diff sees one set that changed. Both bring an agent to the same catalog.
            assert from_record.removed_sets == ["b"] and record["b"][0] == B.ADD
            assert record["b"][4] == diff["b"][4]
        else:
            assert record == diff
        B.apply(agent, from_record)
        assert normalised(agent) == normalised(catalog)
    finally:
        agent.close()


def list_report() -> ParseReport:
    """A report like the one `put` passes."""
    return ParseReport(format="vics")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A server home's TUF repository as static files over loopback HTTP (the agents' side is
    the real CatalogUpdater and ngclient)."""
    home = tmp_path / "server"
    home.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(home))
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield home, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def updater(home: Path, url: str, repo: Repository) -> CatalogUpdater:
    home.mkdir()
    save_root(home, repo.root_json())
    return CatalogUpdater(home, url, "unused")


def targets_downloaded(u: CatalogUpdater) -> list[str]:
    got = [url.rsplit("/", 1)[1].split(".", 1)[1] for url, _ in u.downloads if "/targets/" in url]
    u.downloads.clear()
    return got


def test_deltas_at_once_the_whole_bundle_later_and_every_agent_converges(
    served: tuple[Path, str], tmp_path: Path
) -> None:
    home, url = served
    catalog = Catalog.open(home)
    try:
        repo = Repository(home)
        repo.create()
        put(catalog, "a", synthetic(80, 1))
        assert repo.publish(catalog) == 1  # the first version: bundled whole at once
        assert repo.state()["full"] == 1
        current = updater(tmp_path / "current", url, repo)
        behind = updater(tmp_path / "behind", url, repo)
        assert current.update().version == 1 and behind.update().version == 1
        assert targets_downloaded(current) == targets_downloaded(behind) == ["catalog.bundle"]

        changed = synthetic(80, 1)
        changed[:4] = synthetic(4, 2, videos=0)
        put(catalog, "a", changed)
        assert repo.publish(catalog) == 2
        assert repo.state()["full"] == 1  # only the delta so far
        whole = repo._read("targets").signed.targets["catalog.bundle"]
        assert whole.custom == {"version": 1, "latest": 2}
        assert current.update().version == 2
        assert targets_downloaded(current) == ["catalog-delta-1-2.bundle"]
        assert normalised(Catalog.open(current.home)) == normalised(catalog)

        put(catalog, "b", synthetic(5, 3))
        assert repo.publish(catalog) == 3
        # A new agent takes the whole bundle of version 1 and the two deltas after it.
        fresh = updater(tmp_path / "fresh", url, repo)
        assert fresh.update().version == 3
        assert targets_downloaded(fresh) == [
            "catalog.bundle",
            "catalog-delta-1-2.bundle",
            "catalog-delta-2-3.bundle",
        ]
        # The whole bundle of version 3, made later, is signed like the rest and verifies.
        assert repo.build_full(catalog) == 3
        assert repo.build_full(catalog) is None  # nothing more to bundle
        assert repo._read("targets").signed.targets["catalog.bundle"].custom == {
            "version": 3,
            "latest": 3,
        }
        late = updater(tmp_path / "late", url, repo)
        assert late.update().version == 3
        assert targets_downloaded(late) == ["catalog.bundle"]
        # An agent two versions behind takes the chain of deltas (smaller than the whole).
        assert behind.update().version == 3
        assert targets_downloaded(behind) == [
            "catalog-delta-1-2.bundle",
            "catalog-delta-2-3.bundle",
        ]
        for u in (current, fresh, late, behind):
            u.update()
            held = Catalog.open(u.home)
            try:
                assert normalised(held) == normalised(catalog), u.home
            finally:
                held.close()
        # The whole bundle is made only of the version published from the catalog as it is.
        catalog.remove("b")
        assert repo.build_full(catalog) is None
    finally:
        catalog.close()


def test_removed_entries_are_forgotten_once_published(tmp_path: Path) -> None:
    home = tmp_path / "server"
    home.mkdir()
    catalog = Catalog.open(home)
    try:
        repo = Repository(home)
        repo.create()
        put(catalog, "a", synthetic(20, 1))
        repo.publish(catalog)
        put(catalog, "a", synthetic(18, 1))
        r = schema.removed_entries
        with catalog.engine.connect() as conn:
            assert len(conn.execute(select(r)).all()) == 2
        repo.publish(catalog)
        with catalog.engine.connect() as conn:
            assert conn.execute(select(r)).all() == []
    finally:
        catalog.close()


def test_the_publisher_bundles_the_whole_catalog_once_it_is_quiet(tmp_path: Path) -> None:
    from vigil.server.publisher import Publisher

    home = tmp_path / "server"
    home.mkdir()
    catalog = Catalog.open(home)
    repo = Repository(home)
    try:
        repo.create()
        put(catalog, "a", synthetic(20, 1))
        publisher = Publisher(repo, catalog, full_quiet=3600, full_every=3600)
        assert publisher.step() == 1
        put(catalog, "a", synthetic(19, 1))
        assert publisher.step() == 2
        assert repo.state()["full"] == 1  # changing: no whole bundle yet
        assert publisher.step() is None
        publisher.wait_full()
        assert repo.state()["full"] == 1
        publisher.full_quiet = 0  # quiet long enough
        assert publisher.step() is None
        publisher.wait_full()
        assert repo.state()["full"] == 2
        assert repo._read("targets").signed.targets["catalog.bundle"].custom == {
            "version": 2,
            "latest": 2,
        }
    finally:
        repo.unlock()
        catalog.close()


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_a_stored_sets_digest_read_in_index_order_is_the_sorted_digest(
    db: str, tmp_path: Path
) -> None:
    """The digest a set's rows give read in their index's order (what an agent checks after
    applying an update, without sorting) equals the digest of the same entries sorted, for
    digests with zero and high bytes at either end and repeated entries."""
    import os

    from sqlalchemy import create_engine, text

    from vigil.catalog.digest import content_digest

    digests = [os.urandom(16) for _ in range(3000)]
    digests += [b"\0" * 16, b"a" + b"\0" * 15, b"\0" * 15 + b"\1", b"\xff" * 16, b"a" * 16] * 2
    url = "postgresql+psycopg://postgres@127.0.0.1/test" if db == "postgresql" else "sqlite://"
    engine = create_engine(url)
    with engine.begin() as conn:
        temp = "TEMPORARY " if db == "postgresql" else ""
        blob = "bytea" if db == "postgresql" else "blob"
        conn.execute(text(f"CREATE {temp}TABLE entries (set_id int, digest {blob})"))
        conn.execute(text("INSERT INTO entries VALUES (7, :d)"), [{"d": d} for d in digests])
        conn.execute(text("INSERT INTO entries VALUES (8, :d)"), [{"d": b"\1" * 16}])
        assert B.stored_content_digest(conn, 7) == content_digest(reversed(digests))
        conn.execute(text("INSERT INTO entries VALUES (7, NULL)"))
        with pytest.raises(B.BundleError, match="no digest"):
            B.stored_content_digest(conn, 7)
    engine.dispose()
