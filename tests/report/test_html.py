"""The HTML hand-over report: content, counts, escaping, no image or external resource."""

from __future__ import annotations

import socket
from html.parser import HTMLParser
from pathlib import Path

import pytest

import vigil
from vigil.fingerprint.fingerprints import PDQ, Fingerprints
from vigil.report.html import write_html_report
from vigil.scan.results import Match, MatchedEntry, ScanError, ScanSummary, Skipped

SECTION_IDS = (
    "totals",
    "by-hashset",
    "by-category",
    "by-kind",
    "matches",
    "errors",
    "skipped",
    "hashsets",
)
HOSTILE = "<script>alert('x')</script>&amp;\"quoted\".jpg"


def fingerprints(n: int, size: int = 1000, media_type: str = "image/jpeg") -> Fingerprints:
    return Fingerprints(
        size=size,
        md5=f"{n:032x}",
        sha1=f"{n:040x}",
        sha256=f"{n:064x}",
        media_type=media_type,
        pdq=PDQ(f"{n:064x}", 100),
    )


def match(
    path: str,
    member: str | None = None,
    *,
    hashset: str = "police-a",
    entry: str | None = "e1",
    category: str | None = "A",
    kind: str = "md5",
    distance: int = 0,
    transform: str | None = None,
    n: int = 1,
    size: int = 1000,
) -> Match:
    return Match(
        path=path,
        member=member,
        hashset=hashset,
        entry=MatchedEntry(entry, category, {"source": "test"}),
        kind=kind,
        distance=distance,
        transform=transform,
        fingerprints=fingerprints(n, size),
    )


HASHSETS = [
    {
        "name": "police-a",
        "source": "Police A",
        "version": "2024-05",
        "imported_at": "2024-05-02T08:00:00Z",
        "entries": 1_234_567,
        "known_good": False,
    },
    {
        "name": "police-b",
        "source": "Police B",
        "version": "7",
        "imported_at": "2024-05-03T08:00:00Z",
        "entries": 10,
        "known_good": False,
    },
    {
        "name": "nsrl",
        "source": "NIST",
        "version": "2024.03.1",
        "imported_at": "2024-04-01T08:00:00Z",
        "entries": 99,
        "known_good": True,
    },
]


class Report(HTMLParser):
    """The parts of the report the tests look at, from its data- attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.ids: list[str] = []
        self.section: str | None = None
        self.rows: dict[str, list[dict[str, str]]] = {}
        self.keyed: dict[str, dict[str, dict[str, str]]] = {}
        self.totals: dict[str, str] = {}
        self.fields: dict[str, str] = {}
        self.text: list[str] = []
        self._row: dict[str, str] | None = None
        self._cell: str | None = None
        self._field: str | None = None
        self._buf: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if a.get("id"):
            self.ids.append(a["id"] or "")
            if a["id"] in SECTION_IDS:
                self.section = a["id"]
        if tag == "tr" and ("data-row" in a or "data-key" in a):
            self._row = {}
            if "data-row" in a:
                self.rows.setdefault(a["data-row"] or "", []).append(self._row)
            else:
                assert self.section is not None
                self.keyed.setdefault(self.section, {})[a["data-key"] or ""] = self._row
        if tag == "td" and "data-col" in a:
            self._cell, self._buf = a["data-col"], []
        if tag == "td" and "data-total" in a:
            self.totals[a["data-total"] or ""] = a["data-value"] or ""
        if "data-field" in a:
            self._field, self._buf = a["data-field"], []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None and self._row is not None:
            self._row[self._cell] = "".join(self._buf).strip()
            self._cell = None
        if tag in ("td", "p") and self._field is not None:
            self.fields[self._field] = " ".join("".join(self._buf).split())
            self._field = None
        if tag == "tr":
            self._row = None

    def handle_data(self, data: str) -> None:
        self._buf.append(data)
        self.text.append(data)


def write(tmp_path: Path, summary, matches, errors, hashsets=HASHSETS, **kw) -> tuple[str, Report]:
    out = tmp_path / "report.html"
    write_html_report(out, summary, matches, errors, hashsets, **kw)
    html = out.read_text(encoding="utf-8")
    parsed = Report()
    parsed.feed(html)
    parsed.close()
    return html, parsed


def sample() -> tuple[ScanSummary, list[Match], list[ScanError]]:
    matches = [
        match("/evidence/b.jpg", kind="pdq", distance=14, transform="rotate90", n=2, size=2048),
        match("/evidence/a.zip", "inner/z.jpg", entry="e9", category="B", kind="sha1", n=3),
        match("/evidence/a.zip", "inner/c.jpg", hashset="police-b", category=None, n=4),
        match("/evidence/b.jpg", hashset="police-b", entry="x7", kind="sha256", n=2, size=2048),
    ]
    errors = [
        ScanError("/evidence/z.jpg", None, "truncated", "image data ends at byte 812"),
        ScanError("/evidence/a.zip", "inner/secret.7z", "encrypted", "password protected"),
    ]
    summary = ScanSummary(
        files=120,
        items=150,
        bytes=5_000_000,
        images=90,
        cached=30,
        known_good=7,
        matches=len(matches),
        errors=len(errors),
        seconds=3725.5,
        started_at="2024-05-04T09:15:00+02:00",
        roots=["/evidence", "/mnt/usb"],
        hashsets=["police-a", "police-b", "nsrl"],
    )
    return summary, matches, errors


def test_sections_header_and_totals(tmp_path: Path) -> None:
    summary, matches, errors = sample()
    _, r = write(tmp_path, summary, matches, errors, host="ws-042")
    for section in SECTION_IDS:
        assert section in r.ids
    assert r.totals == {
        "files": "120",
        "items": "150",
        "bytes": "5000000",
        "images": "90",
        "undecoded": "0",
        "videos": "0",
        "matches": "4",
        "matched_items": "3",
        "errors": "2",
        "skipped": "0",
        "cached": "30",
        "known_good": "7",
    }
    assert r.fields["host"] == "ws-042"
    assert r.fields["started_at"] == "2024-05-04T09:15:00+02:00"
    assert r.fields["duration"] == "1 h 02 min 06 s"
    assert r.fields["roots"] == "/evidence /mnt/usb"
    assert r.fields["version"] == f"Vigil {vigil.__version__}"
    assert r.fields["verdict"] == "3 known items found (4 matches); scan incomplete: 2 errors"


def test_host_defaults_to_this_machine(tmp_path: Path) -> None:
    summary, matches, errors = sample()
    _, r = write(tmp_path, summary, matches, errors)
    assert r.fields["host"] == socket.gethostname()


def test_one_row_per_match_in_path_then_member_order(tmp_path: Path) -> None:
    summary, matches, errors = sample()
    _, r = write(tmp_path, summary, matches, errors)
    rows = r.rows["match"]
    assert [(row["path"], row["member"]) for row in rows] == [
        ("/evidence/a.zip", "inner/c.jpg"),
        ("/evidence/a.zip", "inner/z.jpg"),
        ("/evidence/b.jpg", ""),
        ("/evidence/b.jpg", ""),
    ]
    assert [row["n"] for row in rows] == ["1", "2", "3", "4"]
    pdq_row = next(row for row in rows if row["kind"] == "pdq")
    assert pdq_row == {
        "n": pdq_row["n"],
        "path": "/evidence/b.jpg",
        "member": "",
        "size": "2,048",
        "media_type": "image/jpeg",
        "hashset": "police-a",
        "entry": "e1",
        "category": "A",
        "kind": "pdq",
        "distance": "14",
        "transform": "rotate90",
        "md5": f"{2:032x}",
        "sha256": f"{2:064x}",
    }
    assert rows[0]["category"] == ""  # no category: an empty cell, not "None"
    assert rows[0]["transform"] == ""


def test_counts_by_hashset_category_and_kind(tmp_path: Path) -> None:
    summary, matches, errors = sample()
    _, r = write(tmp_path, summary, matches, errors)

    def counts(section: str) -> dict[str, tuple[str, str]]:
        return {k: (v["matches"], v["items"]) for k, v in r.keyed[section].items()}

    # Every set used is listed, even one without a match.
    assert counts("by-hashset") == {
        "police-a": ("2", "2"),
        "police-b": ("2", "2"),
        "nsrl": ("0", "0"),
    }
    assert counts("by-category") == {"A": ("2", "1"), "B": ("1", "1"), "(none)": ("1", "1")}
    assert counts("by-kind") == {
        "md5": ("1", "1"),
        "sha1": ("1", "1"),
        "sha256": ("1", "1"),
        "pdq": ("1", "1"),
        "vpdq": ("0", "0"),
    }
    assert list(r.keyed["by-kind"]) == ["md5", "sha1", "sha256", "pdq", "vpdq"]


def test_errors_and_hashsets_listed(tmp_path: Path) -> None:
    summary, matches, errors = sample()
    _, r = write(tmp_path, summary, matches, errors)
    assert r.rows["error"] == [
        {
            "path": "/evidence/a.zip",
            "member": "inner/secret.7z",
            "reason": "encrypted",
            "message": "password protected",
        },
        {
            "path": "/evidence/z.jpg",
            "member": "",
            "reason": "truncated",
            "message": "image data ends at byte 812",
        },
    ]
    assert [h["name"] for h in r.rows["hashset"]] == ["police-a", "police-b", "nsrl"]
    assert r.rows["hashset"][0] == {
        "name": "police-a",
        "source": "Police A",
        "version": "2024-05",
        "imported_at": "2024-05-02T08:00:00Z",
        "entries": "1,234,567",
        "known_good": "no",
    }
    assert r.rows["hashset"][2]["known_good"] == "yes"


def test_no_image_script_or_external_resource(tmp_path: Path) -> None:
    summary, matches, errors = sample()
    matches.append(match("/evidence/http:/example.com/x.jpg", n=9))
    html, r = write(tmp_path, summary, matches, errors)
    lowered = html.lower()
    for needle in ("<img", "<script", "<link", "<iframe", "<object", "<embed", "<svg", "<video"):
        assert needle not in lowered
    for needle in ("url(", "@import", "data:", "javascript:", "@font-face"):
        assert needle not in lowered
    for tag, attrs in r.tags:
        assert tag not in ("img", "script", "link", "iframe", "object", "embed", "base", "form")
        for name in attrs:
            assert name not in ("src", "srcset", "href", "action", "poster", "background")
            assert not name.startswith("on")
    csp = [a for t, a in r.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in (csp[0]["content"] or "")
    assert "no image content" in " ".join(r.text)


def test_hostile_names_are_escaped(tmp_path: Path) -> None:
    evil_set = 'x" onmouseover="alert(1)'
    matches = [
        match(f"/evidence/{HOSTILE}", f"{HOSTILE}/m.jpg", hashset=evil_set, category="<b>A</b>"),
        match("/evidence/\x1b[31mred\u202egpj.exe", "bad\udcffbyte.jpg", entry="<i>", n=2),
    ]
    errors = [ScanError(f"/evidence/{HOSTILE}", None, "<reason>", "<img src=x onerror=alert(1)>")]
    hashsets = [dict(HASHSETS[0], name=evil_set, source="<script>alert(2)</script>")]
    summary = ScanSummary(matches=2, errors=1, roots=[f"/evidence/{HOSTILE}"])
    html, r = write(tmp_path, summary, matches, errors, hashsets, host="<b>host</b>")
    lowered = html.lower()
    assert "<script" not in lowered and "<img" not in lowered and "<b>" not in lowered
    for _, attrs in r.tags:
        assert not any(name.startswith("on") for name in attrs)
    # The parsed text is exactly the hostile name: escaped, not mangled.
    rows = r.rows["match"]
    hostile = next(row for row in rows if HOSTILE in row["path"])
    assert hostile["path"] == f"/evidence/{HOSTILE}"
    assert hostile["member"] == f"{HOSTILE}/m.jpg"
    assert hostile["hashset"] == evil_set
    assert hostile["category"] == "<b>A</b>"
    assert evil_set in r.keyed["by-hashset"]
    assert r.rows["error"][0]["message"] == "<img src=x onerror=alert(1)>"
    assert r.rows["hashset"][0]["source"] == "<script>alert(2)</script>"
    assert r.fields["host"] == "<b>host</b>"
    # Control characters, bidi overrides and undecodable bytes are shown as visible escapes.
    other = next(row for row in rows if row["entry"] == "<i>")
    assert other["path"] == "/evidence/\\x1b[31mred\\u202egpj.exe"
    assert other["member"] == "bad\\xffbyte.jpg"
    assert "\x1b" not in html and "\u202e" not in html


def test_empty_scan(tmp_path: Path) -> None:
    summary = ScanSummary(files=3, items=3, bytes=10, seconds=0.25, roots=["/tmp/x"])
    _, r = write(tmp_path, summary, [], [], [])
    for section in SECTION_IDS:
        assert section in r.ids
    assert "match" not in r.rows and "error" not in r.rows
    assert r.totals["matches"] == "0" and r.totals["errors"] == "0"
    assert r.fields["verdict"] == "nothing found"
    assert r.fields["duration"] == "0.25 s"
    assert list(r.keyed["by-kind"]) == ["md5", "sha1", "sha256", "pdq", "vpdq"]


def test_skipped_and_undecoded_are_counted_not_errors(tmp_path: Path) -> None:
    skipped = [
        Skipped("/usr/bin/X11", None, "symlink-loop", "leads back to /usr/bin"),
        Skipped("/etc/systemd/system/x.service", None, "not-regular", "a character device"),
    ]
    summary = ScanSummary(files=5, items=5, images=2, undecoded=1, skipped=3)
    _, r = write(tmp_path, summary, [], [], skipped=skipped)
    assert r.totals["skipped"] == "3" and r.totals["undecoded"] == "1"
    assert r.totals["errors"] == "0"
    assert r.fields["verdict"] == "nothing found"
    assert r.rows["skipped"] == [
        {
            "path": "/etc/systemd/system/x.service",
            "reason": "not-regular",
            "message": "a character device",
        },
        {"path": "/usr/bin/X11", "reason": "symlink-loop", "message": "leads back to /usr/bin"},
    ]
    assert "error" not in r.rows
    assert r.fields["skipped_not_listed"].startswith("1 further skipped")


def test_counted_but_unlisted_are_said(tmp_path: Path) -> None:
    summary, matches, errors = sample()
    summary.errors = 12
    _, r = write(tmp_path, summary, matches, errors)
    assert r.totals["errors"] == "12"
    assert r.fields["errors_not_listed"].startswith("10 further errors")


def test_replaces_existing_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    summary, matches, errors = sample()
    (tmp_path / "report.html").write_text("old")
    html, _ = write(tmp_path, summary, matches, errors)
    assert html.startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_missing_directory_raises_and_leaves_nothing(tmp_path: Path) -> None:
    summary, matches, errors = sample()
    with pytest.raises(FileNotFoundError):
        write_html_report(tmp_path / "no" / "r.html", summary, matches, errors, HASHSETS)
    assert list(tmp_path.iterdir()) == []


def test_ten_thousand_matches_are_all_listed_and_counted(tmp_path: Path) -> None:
    matches = [
        match(
            f"/evidence/dir{i % 97}/file{i}.jpg",
            hashset=("police-a", "police-b")[i % 2],
            category="ABC"[i % 3],
            kind=("md5", "pdq")[i % 2],
            distance=i % 32,
            n=i,
        )
        for i in range(10_000)
    ]
    summary = ScanSummary(files=10_000, items=10_000, matches=10_000)
    _, r = write(tmp_path, summary, matches, [])
    assert len(r.rows["match"]) == 10_000
    assert r.keyed["by-category"]["A"]["matches"] == "3334"
    assert r.keyed["by-hashset"]["police-b"]["matches"] == "5000"
