"""The end-of-scan terminal summary, rendered as plain text."""

from __future__ import annotations

import io

from rich.console import Console

from vigil.fingerprint.fingerprints import Fingerprints
from vigil.report.terminal import render_summary
from vigil.scan.results import Match, MatchedEntry, ScanError, ScanSummary


def match(
    path: str,
    member: str | None = None,
    *,
    hashset: str = "police-a",
    category: str | None = "A",
    kind: str = "md5",
    distance: int = 0,
    transform: str | None = None,
) -> Match:
    fp = Fingerprints(size=10, md5="0" * 32, sha1="0" * 40, sha256="0" * 64, media_type="image/png")
    return Match(path, member, hashset, MatchedEntry("e1", category), kind, distance, transform, fp)


def render(summary: ScanSummary, matches, errors, no_color: bool = False, **kw) -> str:
    console = Console(file=io.StringIO(), width=120, force_terminal=False, no_color=no_color)
    render_summary(console, summary, matches, errors, **kw)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert "\x1b" not in out  # plain text: no ANSI codes
    return out


def lines(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.splitlines() if line.strip()]


def test_matches_totals_and_verdict() -> None:
    matches = [
        match("/data/b.jpg", kind="pdq", distance=12, transform="rotate90", hashset="police-b"),
        match("/data/a.zip", "x/y.jpg", category="B", kind="sha256"),
        match("/data/b.jpg", kind="md5"),
    ]
    errors = [ScanError("/data/c.jpg", None, "truncated", "ends at byte 9")]
    summary = ScanSummary(
        files=10,
        items=12,
        bytes=3 * 1024 * 1024,
        images=8,
        cached=2,
        known_good=1,
        matches=3,
        errors=1,
        seconds=4.5,
    )
    out = lines(render(summary, matches, errors))
    assert out[0] == (
        "Scanned 10 files (12 items, 3.0 MiB, 8 images) in 4.50 s: 3 matches, 1 error; "
        "2 from cache, 1 known-good skipped"
    )
    assert "Item Set Category Kind Distance Transform / segment" in out
    rows = [line for line in out if line.startswith("/data/")]
    assert rows == [
        "/data/a.zip/x/y.jpg police-a B sha256 0",
        "/data/b.jpg police-a A md5 0",
        "/data/b.jpg police-b A pdq 12 rotate90",
        "/data/c.jpg: truncated: ends at byte 9",
    ]
    assert out[-1] == "2 known items found (3 matches); scan incomplete: 1 error"


def test_nothing_found() -> None:
    out = lines(render(ScanSummary(files=1, items=1, bytes=5, seconds=0.1), [], []))
    assert out[0].startswith(
        "Scanned 1 file (1 item, 5 B, 0 images) in 0.10 s: 0 matches, 0 errors"
    )
    assert out[-1] == "nothing found"
    assert not any("Matches" in line or "Errors" in line for line in out)


def test_skipped_and_undecoded_are_counted_and_clean() -> None:
    summary = ScanSummary(files=4, items=4, bytes=100, images=1, undecoded=2, skipped=3)
    out = lines(render(summary, [], []))
    assert " ".join(out[:2]) == (  # folded at the console's width
        "Scanned 4 files (4 items, 100 B, 1 image, 2 undecoded) in 0.00 s: 0 matches, 0 errors, "
        "3 skipped (no content to check); 0 from cache, 0 known-good skipped"
    )
    assert out[-1] == "nothing found"
    assert not any("Errors" in line for line in out)


def test_errors_only_is_incomplete() -> None:
    errors = [ScanError("/d/x.zip", "in/y.7z", "encrypted", "password protected")]
    out = lines(render(ScanSummary(errors=1), [], errors))
    assert "Errors (1)" in out
    assert "/d/x.zip/in/y.7z: encrypted: password protected" in out
    assert out[-1] == "scan incomplete: 1 error"


def test_truncated_to_max_rows() -> None:
    matches = [match(f"/data/f{i:02d}.jpg") for i in range(10)]
    errors = [ScanError(f"/data/e{i:02d}.jpg", None, "unreadable", "EIO") for i in range(7)]
    out = lines(render(ScanSummary(matches=10, errors=7), matches, errors, max_rows=3))
    shown = [line.split()[0] for line in out if line.startswith("/data/f")]
    assert shown == ["/data/f00.jpg", "/data/f01.jpg", "/data/f02.jpg"]
    assert "... and 7 more matches" in out
    assert len([line for line in out if line.startswith("/data/e")]) == 3
    assert "... and 4 more errors" in out
    assert out[-1] == "10 known items found; scan incomplete: 7 errors"


def test_errors_counted_beyond_the_list() -> None:
    errors = [ScanError("/data/e.jpg", None, "unreadable", "EIO")]
    out = lines(render(ScanSummary(errors=5), [], errors))
    assert "Errors (5)" in out
    assert "... and 4 more errors" in out
    assert out[-1] == "scan incomplete: 5 errors"


def test_hostile_names_shown_literally() -> None:
    matches = [
        match("/data/[bold red]x[/bold red].jpg", "\x1b[2Jclear\u202egpj.exe", hashset="[link]")
    ]
    errors = [ScanError("/data/bad\udcffname.jpg", None, "unreadable", "[i]no[/i]\nsecond line")]
    out = render(ScanSummary(matches=1, errors=1), matches, errors)
    assert "/data/[bold red]x[/bold red].jpg/\\x1b[2Jclear\\u202egpj.exe" in out
    assert "[link]" in out
    assert "/data/bad\\xffname.jpg: unreadable: [i]no[/i]\\x0asecond line" in out
    assert "\u202e" not in out


def test_no_color_console_gets_the_same_plain_text() -> None:
    matches = [match("/data/a.jpg")]
    errors = [ScanError("/data/b.jpg", None, "vanished", "gone")]
    summary = ScanSummary(matches=1, errors=1)
    assert render(summary, matches, errors, no_color=True) == render(summary, matches, errors)


def test_colours_on_a_terminal() -> None:
    console = Console(file=io.StringIO(), width=120, force_terminal=True, color_system="standard")
    render_summary(console, ScanSummary(matches=1), [match("/data/a.jpg")], [])
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert "\x1b[" in out and "1 known item found" in out


def test_video_match_shows_the_matched_segments() -> None:
    from vigil.fingerprint.fingerprints import Fingerprints
    from vigil.scan.results import Match, MatchedEntry, ScanSummary

    fp = Fingerprints(size=10, md5="a" * 32, sha1="b" * 40, sha256="c" * 64, media_type="video/mp4")
    m = Match(
        path="/d/clip.mp4",
        member=None,
        hashset="police",
        entry=MatchedEntry("v1", "1"),
        kind="vpdq",
        distance=4,
        transform=None,
        fingerprints=fp,
        segment={
            "query_start": 0.0,
            "query_end": 9.0,
            "match_start": 5.0,
            "match_end": 14.0,
            "query_match_percent": 100.0,
            "compared_match_percent": 45.0,
        },
    )
    out = io.StringIO()
    render_summary(
        Console(file=out, width=160, force_terminal=False),
        ScanSummary(files=1, items=1, matches=1),
        [m],
        [],
    )
    assert "0:00.0-0:09.0 ~ known 0:05.0-0:14.0 (100% of frames)" in out.getvalue()
