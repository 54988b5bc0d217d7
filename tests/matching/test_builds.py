"""Immutable builds on disk, the `current` pointer, leases, and the holder fronts keep."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from vigil.catalog.store import Catalog
from vigil.fingerprint.fingerprints import Fingerprints
from vigil.hashsets.entry import Entry, ParseReport
from vigil.matching.builds import BuildStore, MatcherHolder
from vigil.matching.matcher import Matcher


def fp(md5: str) -> Fingerprints:
    return Fingerprints(1, md5, "0" * 40, "0" * 64, "application/octet-stream")


def add(catalog: Catalog, name: str, md5: str, category: str = "1") -> None:
    catalog.import_entries(
        name,
        [Entry({"md5": md5}, id=f"{name}-1", category=category, meta={"note": name})],
        ParseReport(format="csv"),
        source=name,
        version="1",
    )


MD5_A, MD5_B = "a" * 32, "b" * 32


def files_of(directory: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in directory.rglob("*") if p.is_file()}


def test_a_published_build_is_never_changed_and_answers_alone(tmp_path: Path) -> None:
    catalog = Catalog.open(tmp_path)
    add(catalog, "a", MD5_A, category="2")
    store = BuildStore(tmp_path / "builds")
    first = store.for_catalog(catalog)
    directory = store.root / first.build_id
    before = files_of(directory)
    # The build carries what a match reports: no catalog needed to describe the hit.
    hit = first.lookup(fp(MD5_A))[0]
    rec = first.entry(hit.entry_id)
    assert (first.set_name(hit.set_id), rec.ext_id, rec.category, rec.meta) == (
        "a",
        "a-1",
        "2",
        {"note": "a"},
    )
    # A new catalog state is a new build beside it; the first one's files are untouched.
    add(catalog, "b", MD5_B)
    second = store.for_catalog(catalog)
    assert second.build_id != first.build_id and store.current_id() == second.build_id
    assert files_of(directory) == before
    assert [h.kind for h in first.lookup(fp(MD5_B))] == []  # the old build answers as before
    assert [second.set_name(h.set_id) for h in second.lookup(fp(MD5_B))] == ["b"]
    # Removing the set from the catalog does not take the entry out of a build in use.
    catalog.remove("a")
    assert first.entry(hit.entry_id).ext_id == "a-1"


def test_a_build_mapped_by_another_process_is_kept_until_it_lets_go(tmp_path: Path) -> None:
    catalog = Catalog.open(tmp_path)
    add(catalog, "a", MD5_A)
    store = BuildStore(tmp_path / "builds")
    old_id = store.for_catalog(catalog).build_id
    gc.collect()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from vigil.matching.builds import BuildStore;"
            "m = BuildStore(Path(sys.argv[1])).open(); print(m.build_id, flush=True);"
            "sys.stdin.read()",
            str(store.root),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == old_id
        add(catalog, "b", MD5_B)
        new = store.for_catalog(catalog)
        assert store.collect() == []
        assert (store.root / old_id / "meta.json").is_file()  # still mapped by the other process
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=60)
    assert store.collect() == [old_id]
    assert sorted(p.name for p in store.root.iterdir() if not p.name.startswith(".")) == sorted(
        ["current", new.build_id]
    )


def test_a_damaged_build_is_compiled_again_not_half_used(tmp_path: Path) -> None:
    catalog = Catalog.open(tmp_path)
    add(catalog, "a", MD5_A)
    store = BuildStore(tmp_path / "builds")
    first = store.for_catalog(catalog)
    (store.root / first.build_id / "md5.values.npy").write_bytes(b"garbage")
    del first
    gc.collect()
    again = store.for_catalog(catalog)
    assert [h.kind for h in again.lookup(fp(MD5_A))] == ["md5"]


def test_two_processes_finding_the_build_stale_compile_it_once(tmp_path: Path) -> None:
    catalog = Catalog.open(tmp_path)
    add(catalog, "a", MD5_A)
    code = (
        "import sys; from pathlib import Path; from vigil.catalog.store import Catalog;"
        "from vigil.matching.builds import BuildStore;"
        "home = Path(sys.argv[1]);"
        "print(BuildStore(home / 'builds').for_catalog(Catalog.open(home)).build_id)"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    ids = {p.communicate(timeout=120)[0].strip() for p in procs}
    assert len(ids) == 1 and BuildStore(tmp_path / "builds").current_id() in ids


def test_readers_never_see_a_mix_of_two_builds(tmp_path: Path) -> None:
    # One catalog state lists MD5_A as set "a", the other MD5_B as set "b". Builds of both are
    # published again and again while readers open the current build: each must answer as
    # exactly one of them (its entries and sets agreeing with its hashes).
    cat_a, cat_b = Catalog.in_memory(), Catalog.in_memory()
    add(cat_a, "a", MD5_A)
    add(cat_b, "b", MD5_B)
    store = BuildStore(tmp_path / "builds")
    store.publish(Matcher.compile(cat_a))
    done = threading.Event()
    deadline = time.monotonic() + 120  # bounded even if publishing stalls
    problems: list[str] = []
    opened = 0

    def read() -> None:
        nonlocal opened
        while not done.is_set() and time.monotonic() < deadline:
            m = store.open()
            if m is None:
                problems.append("no build")
                continue
            opened += 1
            names = sorted(m.set_names.values())
            found = [m.set_name(h.set_id) for h in m.lookup(fp(MD5_A)) + m.lookup(fp(MD5_B))]
            if names not in (["a"], ["b"]) or found != names:
                problems.append(f"{names} {found}")

    readers = [threading.Thread(target=read) for _ in range(2)]
    for t in readers:
        t.start()
    for published in range(12):
        store.publish(Matcher.compile(cat_b if published % 2 == 0 else cat_a))
    done.set()
    for t in readers:
        t.join()
    assert problems == [] and opened >= 12
    gc.collect()
    store.collect()
    # Every superseded build was removed once unused: only the current one is left.
    assert [p.name for p in store.root.iterdir() if not p.name.startswith(".")] != []
    left = [p for p in store.root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert len(left) == 1


def test_the_holder_swaps_builds_and_calls_in_flight_keep_theirs(tmp_path: Path) -> None:
    catalog = Catalog.open(tmp_path)
    add(catalog, "a", MD5_A)
    holder = MatcherHolder(BuildStore(tmp_path / "builds"), catalog)
    in_flight = holder.matcher()
    assert holder.refresh() is False and not holder.stale()
    add(catalog, "b", MD5_B)
    assert holder.stale()
    assert holder.refresh() is True and holder.swaps == 2  # the first load counts as one
    assert [h.kind for h in in_flight.lookup(fp(MD5_B))] == []
    assert [h.kind for h in holder.matcher().lookup(fp(MD5_B))] == ["md5"]
    holder.close()


def test_a_holder_without_catalog_follows_the_pointer(tmp_path: Path) -> None:
    cat_a, cat_b = Catalog.in_memory(), Catalog.in_memory()
    add(cat_a, "a", MD5_A)
    add(cat_b, "b", MD5_B)
    store = BuildStore(tmp_path / "builds")
    holder = MatcherHolder(BuildStore(store.root))
    with pytest.raises(LookupError):
        holder.matcher()
    store.publish(Matcher.compile(cat_a))
    assert sorted(holder.matcher().set_names.values()) == ["a"]
    store.publish(Matcher.compile(cat_b))
    holder.poll(0.05)
    deadline = time.monotonic() + 30
    while sorted(holder.matcher().set_names.values()) != ["b"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sorted(holder.matcher().set_names.values()) == ["b"]
    holder.close()


def test_a_killed_compile_leaves_no_current_build_behind(tmp_path: Path) -> None:
    # A compile killed while writing leaves a .tmp- directory, never a half build named as one.
    catalog = Catalog.open(tmp_path)
    add(catalog, "a", MD5_A)
    store = BuildStore(tmp_path / "builds")
    store.root.mkdir()
    partial = store.root / ".tmp-deadbeef-00000000"
    partial.mkdir()
    (partial / "md5.values.npy").write_bytes(b"partial")
    assert store.open() is None and store.current_id() is None
    m = store.for_catalog(catalog)
    assert store.current_id() == m.build_id
    old = time.time() - 7200
    os.utime(partial, (old, old))
    store.collect()
    assert not partial.exists()
