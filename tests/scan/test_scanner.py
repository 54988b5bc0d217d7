"""The scanner in-process: the fingerprint cache, killed and hung workers, every core used."""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import time
from pathlib import Path

import pytest
from support.planted import Tree, build

from vigil.catalog.store import Catalog
from vigil.fingerprint.crypto import digest_bytes
from vigil.hashsets.entry import Entry, ParseReport
from vigil.limits import Limits
from vigil.matching.builds import BuildStore
from vigil.matching.matcher import Matcher, MatchSettings
from vigil.scan import scanner as scanner_mod
from vigil.scan import worker
from vigil.scan.cache import FingerprintCache
from vigil.scan.scanner import CollectingSink, Scanner, ScanOptions
from vigil.scan.worker import FileResult


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Tree:
    return build(tmp_path_factory.mktemp("planted"))


def police_catalog(tree: Tree, home: Path) -> tuple[Catalog, FingerprintCache]:
    """A catalog in `home` holding the planted tree's list as set 'police', and an empty cache."""
    catalog = Catalog.open(home)
    catalog.import_file(tree.hashlist, name="police")
    return catalog, FingerprintCache(home / "cache.sqlite", engine_version="t")


def refuse_to_read(path: str, *_: object) -> FileResult:
    """Stands in for the worker when a test proves that no file is read."""
    raise AssertionError(f"file content was read: {path}")


def hang(path: str, source: object, limits: Limits, *_: object, seconds: float = 60) -> FileResult:
    if path.endswith("slow.bin"):
        time.sleep(seconds)
    return worker.fingerprint_item(path, None, limits)


def die(path: str, source: object, limits: Limits, *_: object) -> FileResult:
    if path.endswith("boom.bin"):
        os._exit(9)
    return worker.fingerprint_item(path, None, limits)


def scan(
    matchers: list[Matcher], root: Path, cache: FingerprintCache | None, **opts: object
) -> CollectingSink:
    sink = CollectingSink()
    summary = Scanner(matchers, ScanOptions(**opts), cache).run([str(root)], sink)  # type: ignore[arg-type]
    sink.summary = summary  # type: ignore[attr-defined]
    return sink


def test_cache_second_scan_reads_nothing_and_new_sets_rematch(
    tree: Tree, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog, cache = police_catalog(tree, tmp_path)
    first = scan([Matcher.compile(catalog)], tree.root, cache)
    assert first.summary.cached == 0 and first.errors == []
    n_files = first.summary.files
    first_found = sorted((m.path, m.member, m.kind) for m in first.matches)

    # Second scan of the unchanged tree: every file from the cache, no file content read.
    monkeypatch.setattr(scanner_mod, "fingerprint_item", refuse_to_read)
    second = scan([Matcher.compile(catalog)], tree.root, cache)
    assert second.errors == []
    assert second.summary.cached == n_files
    assert sorted((m.path, m.member, m.kind) for m in second.matches) == first_found

    # A new set that lists an unrelated photo: found from the cached fingerprints alone.
    unrelated = tree.root / tree.unrelated[0]
    md5 = digest_bytes(unrelated.read_bytes())[0]
    catalog.import_entries(
        "new", [Entry({"md5": md5}, id="n1")], ParseReport(format="md5sum"), source="x", version="1"
    )
    third = scan([Matcher.compile(catalog)], tree.root, cache)
    assert third.errors == [] and third.summary.cached == n_files
    assert [(m.path, m.hashset) for m in third.matches if m.hashset == "new"] == [
        (str(unrelated), "new")
    ]

    # A changed file is read again (and here that is refused, so it shows as an error).
    target = tree.root / "other" / "readme.md"
    target.write_bytes(b"# changed\n")
    fourth = scan([Matcher.compile(catalog)], tree.root, cache)
    assert [e.path for e in fourth.errors] == [str(target)]
    assert fourth.summary.cached == n_files - 1
    cache.close()


def totals(sink: CollectingSink) -> tuple[int, ...]:
    s = sink.summary  # type: ignore[attr-defined]
    return (
        s.files, s.items, s.images, s.videos, s.known_good, s.matches, s.errors, s.undecoded,
        s.skipped,
    )  # fmt: skip


def found(sink: CollectingSink) -> list[tuple[str, str | None, str, str, int]]:
    return sorted((m.path, m.member, m.hashset, m.kind, m.distance) for m in sink.matches)


def whole(sink: CollectingSink) -> list[str]:
    return sorted(json.dumps(m.to_dict(), sort_keys=True) for m in sink.matches)


# An icon Pillow does not read (two characters per pixel, a colour by X11 name): valid, undecoded.
XPM = (
    b'/* XPM */\nstatic char *icon[] = {\n"4 2 2 2",\n"a. c #34479E",\n"b. c gray100",\n'
    b'"a.b.a.b.",\n"b.a.b.a."\n};\n'
)


def test_undecoded_and_skipped_are_counted_from_the_cache_too(
    tree: Tree, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "icons"
    root.mkdir()
    (root / "java.xpm").write_bytes(XPM)
    (root / "photo.jpg").write_bytes(tree.originals["rocket"])
    (root / "X11").symlink_to(".")
    (root / "masked.service").symlink_to("/dev/null")
    (tmp_path / "home").mkdir()
    catalog, cache = police_catalog(tree, tmp_path / "home")

    def source() -> Matcher:
        return Matcher.compile(catalog)

    first = scan([source()], root, cache)
    assert first.errors == []
    s = first.summary  # type: ignore[attr-defined]
    assert (s.files, s.images, s.undecoded, s.skipped, s.errors) == (2, 1, 1, 2, 0)
    assert sorted((os.path.basename(k.path), k.reason) for k in first.skipped_items) == [
        ("X11", "symlink-loop"),
        ("masked.service", "not-regular"),
    ]
    monkeypatch.setattr(scanner_mod, "fingerprint_item", refuse_to_read)
    second = scan([source()], root, cache)  # the verdicts replayed
    assert totals(second) == totals(first) and second.summary.cached == 2  # type: ignore[attr-defined]
    catalog.import_entries(  # a new set: the cached fingerprints matched again
        "other",
        [Entry({"md5": "0" * 32}, id="o1")],
        ParseReport(format="md5sum"),
        source="x",
        version="1",
    )
    third = scan([source()], root, cache)
    assert totals(third) == totals(first)
    cache.close()


class CountingMatches:
    """Counts the fingerprints the scanner asks a matcher about (wraps Matcher.match_many)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.asked: list[str] = []
        real = Matcher.match_many

        def match_many(matcher: Matcher, fps, *args):  # type: ignore[no-untyped-def]
            self.asked.extend(fp.sha256 for fp in fps)
            return real(matcher, fps, *args)

        monkeypatch.setattr(Matcher, "match_many", match_many)


def test_unchanged_files_under_an_unchanged_catalog_are_not_matched_again(
    tree: Tree, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog, cache = police_catalog(tree, tmp_path)

    def source() -> Matcher:  # as `vigil scan` does: the build published, then mapped again
        return BuildStore(tmp_path / "builds").for_catalog(catalog)

    first = scan([source()], tree.root, cache)
    assert first.errors == [] and first.matches

    monkeypatch.setattr(scanner_mod, "fingerprint_item", refuse_to_read)
    asked = CountingMatches(monkeypatch)
    second = scan([source()], tree.root, cache)
    # The same matches, whole (entry, distance, transform, fingerprints), and the same totals,
    # from the cache alone: nothing was read, and nothing was matched.
    assert whole(second) == whole(first)
    assert totals(second) == totals(first)
    assert second.summary.cached == first.summary.files  # type: ignore[attr-defined]
    assert asked.asked == []

    # The cache survives closing: a third scan from a new cache object is the same.
    cache.close()
    cache = FingerprintCache(tmp_path / "cache.sqlite", engine_version="t")
    third = scan([source()], tree.root, cache)
    assert whole(third) == whole(first) and totals(third) == totals(first)
    assert asked.asked == []
    cache.close()


def test_cached_verdicts_do_not_outlive_their_thresholds_sets_or_catalog(
    tree: Tree, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog, cache = police_catalog(tree, tmp_path)
    matcher = BuildStore(tmp_path / "builds").for_catalog(catalog)
    full = scan([matcher], tree.root, None)
    near = [m for m in full.matches if m.kind == "pdq" and m.distance > 0]
    assert near, "the planted tree has altered copies found by PDQ only"

    # Exact matching only (distance 0, no variants): the altered copies are clean...
    strict = MatchSettings(pdq_distance=0, rotations=False)
    first = scan([matcher], tree.root, cache, match=strict)
    assert first.summary.cached == 0  # type: ignore[attr-defined]
    assert {m.path for m in near}.isdisjoint({m.path for m in first.matches if m.kind == "pdq"})
    monkeypatch.setattr(scanner_mod, "fingerprint_item", refuse_to_read)
    assert found(scan([matcher], tree.root, cache, match=strict)) == found(first)

    # ...but not under the default thresholds: every near copy is found from the cache.
    again = scan([matcher], tree.root, cache)
    assert again.errors == [] and found(again) == found(full)

    # Another set imported: the catalog recompiles, and files clean so far are matched again.
    unrelated = tree.root / tree.unrelated[0]
    md5 = digest_bytes(unrelated.read_bytes())[0]
    catalog.import_entries(
        "new", [Entry({"md5": md5}, id="n1")], ParseReport(format="md5sum"), source="x", version="1"
    )
    recompiled = BuildStore(tmp_path / "builds").for_catalog(catalog)
    assert recompiled.context_key() != matcher.context_key()
    newer = scan([recompiled], tree.root, cache)
    assert [(m.path, m.hashset) for m in newer.matches if m.hashset == "new"] == [
        (str(unrelated), "new")
    ]

    # Reporting the old set only: the new set's match is not reported...
    police = next(s.id for s in catalog.sets() if s.name == "police")
    only = scan([recompiled.view({police})], tree.root, cache)
    assert {m.hashset for m in only.matches} == {"police"}
    # ...and reporting every set again brings it back, although that file was clean just now.
    every = scan([recompiled], tree.root, cache)
    assert found(every) == found(newer)
    cache.close()


def test_a_hung_worker_is_stopped_and_the_scan_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "slow.bin").write_bytes(b"x" * 10)
    (tmp_path / "ok.bin").write_bytes(b"y" * 10)
    monkeypatch.setattr(scanner_mod, "fingerprint_item", hang)
    sink = scan([], tmp_path, None, limits=Limits(item_seconds=0.5), kill_grace=0.5, workers=2)
    assert [(Path(e.path).name, e.reason) for e in sink.errors] == [("slow.bin", "item_seconds")]
    assert sink.summary.files == 2 and sink.summary.items == 1


def test_a_crashed_worker_is_reported_and_the_scan_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(5):
        (tmp_path / f"f{i}.bin").write_bytes(bytes([i]) * 100)
    (tmp_path / "boom.bin").write_bytes(b"z")
    monkeypatch.setattr(scanner_mod, "fingerprint_item", die)
    sink = scan([], tmp_path, None, workers=2)
    assert [(Path(e.path).name, e.reason) for e in sink.errors] == [("boom.bin", "crashed")]
    assert sink.summary.items == 5


def test_workers_run_in_parallel_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for i in range(6):
        (data / f"f{i}.bin").write_bytes(bytes([i]))
    seen = tmp_path / "pids"
    seen.mkdir()
    monkeypatch.setenv("VIGIL_TEST_PIDS", str(seen))
    monkeypatch.setattr(scanner_mod, "fingerprint_item", record_pid)
    sink = scan([], data, None, workers=2)
    assert sink.errors == [] and sink.summary.items == 6
    pids = {p.name.split("-")[0] for p in seen.iterdir()}
    assert len(pids) == 2 and str(os.getpid()) not in pids


def record_pid(path: str, source: object, limits: Limits, *_: object) -> FileResult:
    """Waits (up to 60 s) until two different processes are working at once."""
    d = Path(os.environ["VIGIL_TEST_PIDS"])
    (d / f"{os.getpid()}-{Path(path).name}").touch()
    deadline = time.monotonic() + 60
    while len({p.name.split("-")[0] for p in d.iterdir()}) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    return worker.fingerprint_item(path, None, limits)


def test_content_that_only_looks_like_an_image_is_hashed_without_an_error(tmp_path: Path) -> None:
    # libmagic calls these images on a byte or two of evidence; no decoder reads them.
    samples = {
        "tga.bin": bytes([1]) * 100,
        "jxl.bin": bytes.fromhex("ff0a61f301279aec5f532bc45b7c5e91") * 64,
        "bios.bin": bytes.fromhex("1009b17bf7f9a2ce2ca990fb990cec45") * 64,
    }
    for name, data in samples.items():
        (tmp_path / name).write_bytes(data)
    sink = scan([], tmp_path, None, workers=1)
    assert sink.errors == []
    assert sink.summary.items == 3 and sink.summary.images == 0
    # A damaged JPEG is still an error.
    (tmp_path / "cut.jpg").write_bytes(bytes.fromhex("ffd8ffe000104a464946") + b"\x00" * 50)
    assert [e.reason for e in scan([], tmp_path, None, workers=1).errors] in (
        ["truncated"],
        ["corrupt"],
    )


def test_a_parcel_that_hangs_is_split_and_only_the_culprit_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One worker: the first file goes alone, the next ones travel in parcels of several files.
    for i in range(6):
        (tmp_path / f"f{i}.bin").write_bytes(b"%d" % i)
    (tmp_path / "f3-slow.bin").write_bytes(b"x")
    monkeypatch.setattr(scanner_mod, "fingerprint_item", hang)
    sink = scan([], tmp_path, None, limits=Limits(item_seconds=0.3), kill_grace=0.3, workers=1)
    assert [(Path(e.path).name, e.reason) for e in sink.errors] == [("f3-slow.bin", "item_seconds")]
    assert sink.summary.files == 7 and sink.summary.items == 6


def test_a_hang_in_a_big_parcel_is_caught_within_one_files_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One worker, files walked in name order: f00 goes alone, the next 32 (the hanging one among
    # them) in one parcel. A parcel gets one file's time (1 s), so the hang is stopped and the
    # parcel split long before its 20 s are up; given 32 files' time (32 s), the parcel would
    # have waited for it and reported nothing.
    for i in range(40):
        (tmp_path / f"f{i:02d}.bin").write_bytes(b"%d" % i)
    (tmp_path / "f05-slow.bin").write_bytes(b"x")
    real_walk = scanner_mod.walk
    monkeypatch.setattr(
        scanner_mod, "walk", lambda roots, **kw: sorted(real_walk(roots, **kw), key=str)
    )
    monkeypatch.setattr(scanner_mod, "fingerprint_item", functools.partial(hang, seconds=20))
    sink = scan([], tmp_path, None, limits=Limits(item_seconds=1), kill_grace=0.5, workers=1)
    assert [(Path(e.path).name, e.reason) for e in sink.errors] == [
        ("f05-slow.bin", "item_seconds")
    ]
    assert sink.summary.files == 41 and sink.summary.items == 40


def test_a_cache_of_an_older_format_is_emptied_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    old.execute("INSERT INTO meta VALUES ('stamp', '3:t')")
    old.execute(
        "CREATE TABLE files (dev INTEGER, ino INTEGER, size INTEGER, mtime_ns INTEGER, "
        "ctime_ns INTEGER, items TEXT, PRIMARY KEY (dev, ino))"
    )
    f = tmp_path / "a.bin"
    f.write_bytes(b"abc")
    st = os.stat(f)
    old.execute(
        "INSERT INTO files VALUES (?,?,?,?,?,?)",
        (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, "[]"),
    )
    old.commit()
    old.close()

    cache = FingerprintCache(path, engine_version="t")
    assert cache.get(str(f), st) is None  # the old row is gone, not misread
    sink = scan([], tmp_path / "a.bin", cache)
    assert sink.errors == [] and sink.summary.items == 1  # type: ignore[attr-defined]
    cache.close()
    again = FingerprintCache(path, engine_version="t")
    assert scan([], f, again).summary.cached == 1  # type: ignore[attr-defined]
    again.close()
