"""The end-of-scan summary for a terminal (plain text when the console is not one)."""

from __future__ import annotations

from collections.abc import Sequence

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from vigil.report import format_bytes, format_duration, how_matched, printable, verdict
from vigil.scan.results import Match, ScanError, ScanSummary

MAX_ROWS = 50


def render_summary(
    console: Console,
    summary: ScanSummary,
    matches: Sequence[Match],
    errors: Sequence[ScanError],
    *,
    max_rows: int = MAX_ROWS,
) -> None:
    """Print totals, the first `max_rows` matches and errors, and the verdict line."""
    max_rows = max(0, max_rows)
    console.print(_totals_line(summary, matches, errors))
    if matches:
        console.print()
        console.print(Text(f"Matches ({len(matches):,})", style="bold"))
        console.print(_matches_table(matches, max_rows))
        if len(matches) > max_rows:
            console.print(Text(f"... and {len(matches) - max_rows:,} more matches", style="dim"))
    if errors or summary.errors:
        console.print()
        n_errors = max(summary.errors, len(errors))
        console.print(Text(f"Errors ({n_errors:,})", style="bold"))
        shown = sorted(errors, key=lambda e: (e.path, e.member or ""))[:max_rows]
        for e in shown:
            line = Text(overflow="fold")
            line.append(_where(e.path, e.member))
            line.append(f": {printable(e.reason)}", style="yellow")
            line.append(f": {printable(e.message)}")
            console.print(line)
        if n_errors > len(shown):
            console.print(Text(f"... and {n_errors - len(shown):,} more errors", style="dim"))
    console.print()
    console.print(_verdict_line(summary, matches, errors))


def _where(path: str, member: str | None) -> str:
    """`path/member` (`outer.zip/inner.tar/x.jpg`) for an archive member, `path` for a file."""
    return f"{printable(path)}/{printable(member)}" if member else printable(path)


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def _totals_line(
    summary: ScanSummary, matches: Sequence[Match], errors: Sequence[ScanError]
) -> Text:
    n_matches = max(summary.matches, len(matches))
    n_errors = max(summary.errors, len(errors))
    videos = f", {_count(summary.videos, 'video')}" if summary.videos else ""
    # Images hashed exactly but not decoded (no PDQ): not among the images, so said apart.
    undecoded = f", {summary.undecoded:,} undecoded" if summary.undecoded else ""
    text = Text(overflow="fold")
    text.append(
        f"Scanned {_count(summary.files, 'file')} ({_count(summary.items, 'item')}, "
        f"{format_bytes(summary.bytes)}, {_count(summary.images, 'image')}{undecoded}{videos}) "
        f"in {format_duration(summary.seconds)}: "
    )
    text.append(_count(n_matches, "match", "matches"), style="bold red" if n_matches else "")
    text.append(", ")
    text.append(_count(n_errors, "error"), style="bold yellow" if n_errors else "")
    if summary.skipped:
        text.append(f", {summary.skipped:,} skipped (no content to check)")
    text.append(f"; {summary.cached:,} from cache, {summary.known_good:,} known-good skipped")
    return text


def _matches_table(matches: Sequence[Match], max_rows: int) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("Item", overflow="fold")
    for name in ("Set", "Category", "Kind"):
        table.add_column(name, overflow="fold")
    table.add_column("Distance", justify="right")
    table.add_column("Transform / segment", overflow="fold")
    ordered = sorted(
        matches, key=lambda m: (m.path, m.member or "", m.hashset, m.kind, m.entry.id or "")
    )
    for m in ordered[:max_rows]:
        table.add_row(
            Text(_where(m.path, m.member)),
            Text(printable(m.hashset)),
            Text(printable(m.entry.category)),
            Text(printable(m.kind)),
            Text(str(m.distance)),
            Text(how_matched(m)),
        )
    return table


def _verdict_line(
    summary: ScanSummary, matches: Sequence[Match], errors: Sequence[ScanError]
) -> Text:
    line = verdict(summary, matches, errors)
    if matches or summary.matches:
        style = "bold red"
    elif errors or summary.errors:
        style = "bold yellow"
    else:
        style = "bold green"
    return Text(line, style=style)
