"""`vigil scan` end to end: real processes, a real catalog, real images and archives."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import lzma
import os
import socket
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from support.planted import Tree, build

from vigil.hashsets.reader import read_hashlist

VIGIL = [sys.executable, "-m", "vigil.cli"]


def vigil(*args: str, home: Path, check_rc: int | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VIGIL_HOME": str(home)}
    proc = subprocess.run([*VIGIL, *args], capture_output=True, text=True, env=env, timeout=300)
    if check_rc is not None:
        assert proc.returncode == check_rc, proc.stderr
    return proc


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Tree:
    return build(tmp_path_factory.mktemp("planted"))


@pytest.fixture
def home(tmp_path: Path, tree: Tree) -> Path:
    h = tmp_path / "home"
    vigil("hashset", "import", str(tree.hashlist), "--name", "police", home=h, check_rc=0)
    return h


def json_matches(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_every_planted_copy_is_found_and_nothing_else(tree: Tree, home: Path) -> None:
    proc = vigil("scan", str(tree.root), "--json", home=home)
    assert proc.returncode == 1, proc.stderr
    matches = json_matches(proc.stdout)
    found: dict[tuple[str, str | None], list[dict]] = {}
    for m in matches:
        rel = os.path.relpath(m["path"], tree.root)
        found.setdefault((rel, m["member"]), []).append(m)
    for p in tree.planted:
        got = found.get((p.rel, p.member))
        assert got, f"missed {p.rel} {p.member} ({p.how})"
        kinds = {m["kind"] for m in got}
        assert {m["hashset"] for m in got} == {"police"}
        if p.exact:
            assert {"md5", "sha1", "sha256"} <= kinds
            assert all(m["distance"] == 0 for m in got)
        else:
            (pdq,) = [m for m in got if m["kind"] == "pdq"]
            assert pdq["distance"] <= 31, p
            assert pdq["transform"] == p.transform, (p, pdq)
            assert pdq["fingerprints"]["pdq_quality"] >= 50
    planted_keys = {(p.rel, p.member) for p in tree.planted}
    assert set(found) == planted_keys, f"unexpected matches: {set(found) - planted_keys}"
    # The contract's fields.
    m = matches[0]
    assert set(m) >= {
        "path",
        "member",
        "size",
        "media_type",
        "hashset",
        "entry",
        "kind",
        "distance",
        "transform",
        "fingerprints",
    }
    assert set(m["entry"]) >= {"id", "category", "meta"}
    renamed = found[("docs/report.txt", None)][0]
    assert renamed["media_type"] == "image/jpeg"
    assert renamed["entry"]["id"] == "500" and renamed["entry"]["category"] == "1"


def test_json_mode_prints_only_matches_on_stdout(tree: Tree, home: Path) -> None:
    proc = vigil("scan", str(tree.root / "alt"), "--json", home=home)
    for line in proc.stdout.splitlines():
        assert json.loads(line)["hashset"] == "police"
    assert "known items found" in proc.stderr


class _Cells(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, str]] = []
        self.totals: dict[str, str] = {}
        self._col: str | None = None
        self._total: str | None = None
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.add(tag)
        if tag == "tr" and a.get("data-row") == "match":
            self.rows.append({})
        if tag == "td" and "data-col" in a and self.rows is not None:
            self._col = a["data-col"]
        if tag == "td" and "data-total" in a:
            self.totals[a["data-total"] or ""] = a.get("data-value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._col = None

    def handle_data(self, data: str) -> None:
        if self._col and self.rows:
            self.rows[-1][self._col] = self.rows[-1].get(self._col, "") + data


def test_report_and_exports(tree: Tree, home: Path, tmp_path: Path) -> None:
    report, vics, csvf = tmp_path / "r.html", tmp_path / "found.json", tmp_path / "found.csv"
    proc = vigil(
        "scan",
        str(tree.root),
        "--quiet",
        "--report",
        str(report),
        "--export-vics",
        str(vics),
        "--export-csv",
        str(csvf),
        home=home,
    )
    assert proc.returncode == 1, proc.stderr
    html = report.read_text()
    parser = _Cells()
    parser.feed(html)
    assert "img" not in parser.tags and "script" not in parser.tags
    assert "data:image" not in html
    assert int(parser.totals["matches"]) == len(parser.rows) > 0
    assert int(parser.totals["errors"]) == 0
    paths = {
        (os.path.relpath(r["path"].strip(), tree.root), r.get("member", "").strip() or None)
        for r in parser.rows
    }
    assert paths == {(p.rel, p.member) for p in tree.planted}
    # VICS 2.0 export: one Media per distinct found content, MediaFiles saying where.
    entries, rep = read_hashlist(vics)
    entries = list(entries)
    assert rep.format == "vics" and rep.malformed == 0
    copies = {mf["FilePath"] for e in entries for mf in e.meta["MediaFiles"]}
    assert str(tree.root / "archive/outer.zip") + "/inner.tar.gz/deep/x.jpg" in copies
    assert len(copies) == len(tree.planted)
    lines = csvf.read_text().splitlines()
    assert lines[0].startswith(
        "path,member,size,media_type,hashset,entry_id,category,kind,distance"
    )
    assert len(lines) - 1 == len(parser.rows)


def test_exit_status_clean_found_and_incomplete(tree: Tree, home: Path, tmp_path: Path) -> None:
    assert vigil("scan", str(tree.root / "other"), "-q", home=home).returncode == 0
    assert vigil("scan", str(tree.root / "alt"), "-q", home=home).returncode == 1
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "cut.jpg").write_bytes(tree.originals["rocket"][:5000])
    (bad / "loop").symlink_to(bad / "loop")
    proc = vigil("scan", str(bad), "-q", home=home)
    assert proc.returncode == 2
    assert "cut.jpg: truncated" in proc.stderr
    assert "symlink-loop" not in proc.stderr  # skipped, not an error: listed with --verbose


def test_matches_are_reported_even_when_the_scan_is_incomplete(
    tree: Tree, home: Path, tmp_path: Path
) -> None:
    d = tmp_path / "mixed"
    d.mkdir()
    (d / "copy.jpg").write_bytes(tree.originals["chelsea"])
    (d / "cut.jpg").write_bytes(tree.originals["rocket"][:3000])
    proc = vigil("scan", str(d), "--json", home=home)
    assert proc.returncode == 2
    assert {m["kind"] for m in json_matches(proc.stdout)} == {"md5", "sha1", "sha256", "pdq"}


def test_no_hash_sets_is_a_clear_error(tmp_path: Path, tree: Tree) -> None:
    proc = vigil("scan", str(tree.root), home=tmp_path / "empty")
    assert proc.returncode == 2
    assert "no hash sets imported" in proc.stderr


def test_hash_list_file_read_on_the_fly(tree: Tree, tmp_path: Path) -> None:
    h = tmp_path / "fresh"
    proc = vigil("scan", str(tree.root / "docs"), "--json", "--hashset", str(tree.hashlist), home=h)
    assert proc.returncode == 1, proc.stderr
    assert {m["hashset"] for m in json_matches(proc.stdout)} == {"known"}
    # Nothing was imported into the catalog.
    assert "no hash sets imported" in vigil("hashset", "list", home=h).stdout


def test_unknown_set_name(tree: Tree, home: Path) -> None:
    proc = vigil("scan", str(tree.root), "--hashset", "nope", home=home)
    assert proc.returncode == 2
    assert "'nope'" in proc.stderr and "police" in proc.stderr


def test_pdq_options_change_what_matches(tree: Tree, home: Path) -> None:
    mirror = str(tree.root / "alt" / "astronaut-mirror.jpg")
    assert vigil("scan", mirror, "-q", home=home).returncode == 1
    assert vigil("scan", mirror, "-q", "--no-rotations", home=home).returncode == 0
    assert (
        vigil("scan", mirror, "-q", "--pdq-quality", "101", home=home).returncode == 2
    )  # bad option


def test_limit_option_is_reported_by_name(tree: Tree, home: Path) -> None:
    proc = vigil(
        "scan", str(tree.root / "archive"), "-q", "--limit", "max_archive_depth=1", home=home
    )
    assert proc.returncode == 2
    assert "max_archive_depth" in proc.stderr
    proc = vigil("scan", str(tree.root), "-q", "--limit", "bogus=1", home=home)
    assert proc.returncode == 2 and "unknown limit 'bogus'" in proc.stderr


def test_progress_bar_on_a_terminal_and_quiet_when_piped(tree: Tree, home: Path) -> None:
    import pty

    master, slave = pty.openpty()
    env = {**os.environ, "VIGIL_HOME": str(home), "COLUMNS": "150", "TERM": "xterm"}
    proc = subprocess.Popen(
        [*VIGIL, "scan", str(tree.root), "--json"], stdout=subprocess.PIPE, stderr=slave, env=env
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the terminal closed
            break
        if not data:
            break
        chunks.append(data)
    out, _ = proc.communicate(timeout=300)
    os.close(master)
    terminal = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 1
    assert "scanning" in terminal and "files/s" in terminal and "found" in terminal
    assert all(json.loads(line) for line in out.decode().splitlines())  # stdout stays JSON only
    piped = vigil("scan", str(tree.root), "--json", home=home)
    assert "scanning" not in piped.stderr and "files/s" not in piped.stderr


def test_demo_finds_every_planted_copy(tmp_path: Path) -> None:
    proc = vigil("demo", "--engine", "--dir", str(tmp_path / "demo"), home=tmp_path / "unused")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "found 6 of 6 planted copies; missed: none" in proc.stdout
    report = tmp_path / "demo" / "report.html"
    assert f"HTML report: {report}" in proc.stdout
    assert "6 known items found" in report.read_text()


def test_a_hash_list_file_keeps_its_cached_verdicts_until_it_changes(
    tree: Tree, tmp_path: Path
) -> None:
    from vigil.cli.context import Context
    from vigil.cli.scan import _matchers

    listing = tmp_path / "list.txt"
    listing.write_text(f"{'0' * 32}  nothing.bin\n")
    ctx = Context(home_override=str(tmp_path / "home"))
    key = _matchers(ctx, (str(listing),))[0].context_key()
    # The same file, unchanged: the same build, so verdicts cached with it stay valid...
    assert _matchers(ctx, (str(listing),))[0].context_key() == key
    # ...and a changed file is another build: every cached file is matched again.
    photo = tree.root / tree.unrelated[0]
    md5 = subprocess.run(["md5sum", str(photo)], capture_output=True, text=True).stdout.split()[0]
    listing.write_text(f"{'0' * 32}  nothing.bin\n{md5}  photo.jpg\n")
    assert _matchers(ctx, (str(listing),))[0].context_key() != key

    # End to end: a clean scan, the list changes, the next scan (from the cache) finds it.
    h = tmp_path / "h"
    listing.write_text(f"{'0' * 32}  nothing.bin\n")
    first = vigil("scan", str(tree.root), "--json", "--hashset", str(listing), home=h)
    assert first.returncode == 0 and first.stdout == "", first.stderr
    again = vigil("scan", str(tree.root), "--json", "--hashset", str(listing), home=h)
    assert again.returncode == 0 and again.stdout == "" and " from cache" in again.stderr
    listing.write_text(f"{'0' * 32}  nothing.bin\n{md5}  photo.jpg\n")
    changed = vigil("scan", str(tree.root), "--json", "--hashset", str(listing), home=h)
    assert changed.returncode == 1, changed.stderr
    assert [m["path"] for m in json_matches(changed.stdout)] == [str(photo)]


# -- a healthy system scans clean ------------------------------------------------------------

# Text libarchive's mtree bidder took for a manifest once gzipped (as Debian changelogs were).
CHANGELOG = (
    b"v2.0.1\n------\n\n\nMisc\n^^^^\n* #101: Minor refactorings to support logging.\n\n"
    b"Documentation changes\n^^^^^^^^^^^^^^^^^^^^^\n"
    b'* #102: Updated the "Your Project\xe2\x80\x99s Version" page.\n'
)
NOTES = b"inner notes\n"
# Two characters per pixel and an X11 colour name: valid, and not read by Pillow.
XPM = (
    b'/* XPM */\nstatic char *icon[] = {\n"4 2 2 2",\n"a. c #34479E",\n"b. c gray100",\n'
    b'"a.b.a.b.",\n"b.a.b.a."\n};\n'
)


def tar_gz(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return out.getvalue()


Healthy = tuple[Path, Path, list[str]]


@pytest.fixture
def healthy(tmp_path: Path) -> Iterator[Healthy]:
    """A tree like a healthy system's: nothing in it is damaged or unreadable, and several
    entries have no content to check. Yields (root, hash list of nothing in it, skipped)."""
    root = tmp_path / "sys"
    (root / "bin").mkdir(parents=True)
    (root / "doc").mkdir()
    (root / "bin" / "tool").write_bytes(b"#!/bin/sh\necho hi\n")
    (root / "bin" / "X11").symlink_to(".")  # /usr/bin/X11 -> .
    (root / "masked.service").symlink_to("/dev/null")  # a masked systemd unit
    (root / "gone").symlink_to(root / "nowhere")
    (root / "ping").symlink_to(root / "pong")
    (root / "pong").symlink_to(root / "ping")
    os.mkfifo(root / "fifo")
    (root / "doc" / "changelog.gz").write_bytes(gzip.compress(CHANGELOG))
    (root / "doc" / "NEWS.bz2").write_bytes(bz2.compress(CHANGELOG))
    (root / "doc" / "README.xz").write_bytes(lzma.compress(CHANGELOG))
    (root / "doc" / "bundle.tar.gz").write_bytes(tar_gz({"inner/notes.txt": NOTES}))
    (root / "icon.xpm").write_bytes(XPM)
    hashes = tmp_path / "empty.md5"
    hashes.write_text(f"{'0' * 32}  nothing\n")
    skipped = ["bin/X11", "fifo", "gone", "masked.service", "ping", "pong"]
    # A unix socket's path must be short: bound where it fits, with a link to it in the tree.
    sock = socket.socket(socket.AF_UNIX)
    short = Path(f"/tmp/vigil-test-{os.getpid()}.sock")
    short.unlink(missing_ok=True)
    sock.bind(str(short))
    (root / "socket").symlink_to(short)
    skipped.append("socket")
    try:
        yield root, hashes, sorted(skipped)
    finally:
        sock.close()
        short.unlink(missing_ok=True)


def skipped_lines(stderr: str, root: Path) -> list[tuple[str, str]]:
    prefix = "vigil: skipped: "
    out = []
    for line in stderr.splitlines():
        if line.startswith(prefix):
            path, reason = line[len(prefix) :].split(": ")[:2]
            out.append((os.path.relpath(path, root), reason))
    return sorted(out)


def test_a_healthy_tree_scans_clean(healthy: Healthy, tmp_path: Path) -> None:
    root, hashes, skipped = healthy
    report = tmp_path / "r.html"
    args = ["scan", str(root), "--hashset", str(hashes), "--no-cache", "--report", str(report)]
    proc = vigil(*args, home=tmp_path / "home")
    assert proc.returncode == 0, proc.stderr
    assert "error" not in proc.stderr and "skipped:" not in proc.stderr
    assert f"0 errors, {len(skipped)} skipped (no content to check)" in proc.stdout
    assert "1 undecoded" in proc.stdout
    assert "nothing found" in proc.stdout
    html = report.read_text()
    parser = _Cells()
    parser.feed(html)
    assert parser.totals["errors"] == "0"
    assert parser.totals["skipped"] == str(len(skipped))
    assert parser.totals["undecoded"] == "1"
    assert html.count('data-row="skipped"') == len(skipped)

    verbose = vigil(*args, "--verbose", home=tmp_path / "home")
    assert verbose.returncode == 0, verbose.stderr
    assert skipped_lines(verbose.stderr, root) == [
        ("bin/X11", "symlink-loop"),
        ("fifo", "not-regular"),
        ("gone", "broken-symlink"),
        ("masked.service", "not-regular"),
        ("ping", "symlink-loop"),
        ("pong", "symlink-loop"),
        ("socket", "not-regular"),
    ]
    assert "vigil: error" not in verbose.stderr


def test_compressed_files_are_what_they_hold(healthy: Healthy, tmp_path: Path) -> None:
    root, _, _ = healthy
    # The texts, and the tar's member, are items of their own: a list naming them finds them.
    listed = tmp_path / "listed.md5"
    text, notes = hashlib.md5(CHANGELOG).hexdigest(), hashlib.md5(NOTES).hexdigest()
    listed.write_text(f"{text}  changelog\n{notes}  notes\n")
    proc = vigil("scan", str(root / "doc"), "--hashset", str(listed), "--json", home=tmp_path / "h")
    assert proc.returncode == 1, proc.stderr
    found = {(os.path.basename(m["path"]), m["member"]) for m in json_matches(proc.stdout)}
    assert found == {
        ("changelog.gz", "changelog"),
        ("NEWS.bz2", "NEWS"),
        ("README.xz", "README"),
        ("bundle.tar.gz", "inner/notes.txt"),
    }


def test_only_real_damage_makes_a_scan_incomplete(
    healthy: Healthy, tree: Tree, tmp_path: Path
) -> None:
    root, hashes, skipped = healthy
    (root / "cut.jpg").write_bytes(tree.originals["rocket"][:5000])
    proc = vigil("scan", str(root), "--hashset", str(hashes), "--no-cache", home=tmp_path / "h")
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("vigil: error: ")]
    assert len(errors) == 1
    assert errors[0].startswith(f"vigil: error: {root / 'cut.jpg'}: truncated: ")
    assert "scan incomplete: 1 error" in proc.stdout
    assert f"{len(skipped)} skipped" in proc.stdout


def test_symlinks_not_followed_are_skipped(healthy: Healthy, tmp_path: Path) -> None:
    root, hashes, _ = healthy
    proc = vigil(
        "scan", str(root), "--hashset", str(hashes), "--no-follow-symlinks", "-v", "-q",
        home=tmp_path / "h",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert skipped_lines(proc.stderr, root) == [
        ("bin/X11", "symlink-skipped"),
        ("fifo", "not-regular"),
        ("gone", "symlink-skipped"),
        ("masked.service", "symlink-skipped"),
        ("ping", "symlink-skipped"),
        ("pong", "symlink-skipped"),
        ("socket", "symlink-skipped"),
    ]
