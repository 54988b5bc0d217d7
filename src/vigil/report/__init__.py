"""Human-readable outputs of a scan: the HTML hand-over report and the terminal summary.

Both show text only (paths, fingerprints, counts): never an image, a thumbnail or image data.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from vigil.kinds import VPDQ

if TYPE_CHECKING:
    from vigil.scan.results import Match, ScanError, ScanSummary

__all__ = [
    "how_matched",
    "format_bytes",
    "format_duration",
    "matched_items",
    "printable",
    "render_summary",
    "verdict",
    "write_html_report",
]

# Characters that would hide or disguise what a name really is when shown: C0/C1 controls (ANSI
# escapes, newlines), lone surrogates (undecodable bytes of a file name via surrogateescape),
# invisible format characters and bidirectional overrides ("gpj.exe" shown as "exe.jpg").
_HIDING = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f"
    "\ufeff\ufff9-\ufffb\ud800-\udfff]"
)


def _escape_char(m: re.Match[str]) -> str:
    code = ord(m.group())
    if 0xDC80 <= code <= 0xDCFF:  # a raw byte that os.fsdecode could not decode
        return f"\\x{code - 0xDC00:02x}"
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


def printable(text: object) -> str:
    """Text safe to show as is: hiding characters and undecodable bytes become visible escapes."""
    if text is None:
        return ""
    s = str(text)
    return _HIDING.sub(_escape_char, s) if _HIDING.search(s) else s


_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB")


def format_bytes(n: int) -> str:
    """A byte count in binary units ('1.5 GiB'); exact below 1 KiB."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in _UNITS:
        value /= 1024
        if value < 1024 or unit == _UNITS[-1]:
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def format_duration(seconds: float) -> str:
    """A duration for people: '0.42 s', '12.3 s', '4 min 05 s', '2 h 03 min 04 s'."""
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    total = int(round(seconds))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h} h {m:02d} min {s:02d} s"
    return f"{m} min {s:02d} s"


def matched_items(matches: Sequence[Match]) -> int:
    """How many distinct items (file, archive member) the matches point at."""
    return len({(m.path, m.member) for m in matches})


def verdict(summary: ScanSummary, matches: Sequence[Match], errors: Sequence[ScanError]) -> str:
    """The one-line outcome: 'N known items found', 'nothing found', 'scan incomplete: N errors'."""
    n_errors = max(summary.errors, len(errors))
    n_items = matched_items(matches) if matches else summary.matches
    parts = []
    if n_items:
        parts.append(f"{n_items:,} known item{'s' if n_items != 1 else ''} found")
        if len(matches) > n_items:
            parts[-1] += f" ({len(matches):,} matches)"
    if n_errors:
        parts.append(f"scan incomplete: {n_errors:,} error{'s' if n_errors != 1 else ''}")
    return "; ".join(parts) or "nothing found"


# Imported after the helpers above, which both submodules use.
def _clock(seconds: float) -> str:
    m, s = divmod(max(0.0, seconds), 60)
    return f"{int(m)}:{s:04.1f}"


def how_matched(match: Match) -> str:
    """The transform of an image match, or the matched segments of a video match."""
    seg = match.segment
    if match.kind == VPDQ.name and seg:
        return (
            f"{_clock(seg['query_start'])}-{_clock(seg['query_end'])} ~ known "
            f"{_clock(seg['match_start'])}-{_clock(seg['match_end'])} "
            f"({seg['query_match_percent']:.0f}% of frames)"
        )
    return printable(match.transform)


from vigil.report.html import write_html_report  # noqa: E402
from vigil.report.terminal import render_summary  # noqa: E402
