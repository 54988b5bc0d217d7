"""The hand-over report: one self-contained, printable HTML file with no image content at all."""

from __future__ import annotations

import os
import socket
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

import vigil
from vigil.kinds import NAMES
from vigil.report import (
    format_bytes,
    format_duration,
    how_matched,
    matched_items,
    printable,
    verdict,
)
from vigil.scan.results import Match, ScanError, ScanSummary, Skipped

TEMPLATE = "report.html.j2"
# Kinds of match, in the order the report lists them (all shown, zero or not).
MATCH_KINDS: tuple[str, ...] = NAMES
NO_CATEGORY = "(none)"


@cache
def _environment() -> jinja2.Environment:
    # Autoescape on for everything: file names and list metadata are hostile input.
    return jinja2.Environment(
        loader=jinja2.PackageLoader("vigil.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def write_html_report(
    path: Path,
    summary: ScanSummary,
    matches: Sequence[Match],
    errors: Sequence[ScanError],
    hashsets: Sequence[dict[str, Any]],
    *,
    host: str | None = None,
    skipped: Sequence[Skipped] = (),
) -> None:
    """Write the HTML report of one scan to `path` (replaced atomically; never any image data)."""
    context = report_context(summary, matches, errors, hashsets, host=host, skipped=skipped)
    template = _environment().get_template(TEMPLATE)
    path = Path(path)
    # Written next to the target and renamed: a reader never sees half a report.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", errors="backslashreplace", newline="\n") as f:
            f.writelines(template.generate(**context))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def report_context(
    summary: ScanSummary,
    matches: Sequence[Match],
    errors: Sequence[ScanError],
    hashsets: Sequence[dict[str, Any]],
    *,
    host: str | None = None,
    skipped: Sequence[Skipped] = (),
) -> dict[str, Any]:
    """Everything the template shows, already sorted, counted and made printable."""
    ordered = sorted(
        matches, key=lambda m: (m.path, m.member or "", m.hashset, m.kind, m.entry.id or "")
    )
    n_matches = max(summary.matches, len(matches))
    n_errors = max(summary.errors, len(errors))
    set_names = [str(h.get("name", "")) for h in hashsets] or list(summary.hashsets)
    return {
        "version": vigil.__version__,
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "started_at": printable(summary.started_at),
        "duration": format_duration(summary.seconds),
        "seconds": f"{summary.seconds:.3f}",
        "roots": [printable(r) for r in summary.roots],
        "host": printable(host if host is not None else socket.gethostname()),
        "verdict": verdict(summary, matches, errors),
        "has_matches": n_matches > 0,
        "has_errors": n_errors > 0,
        "totals": _totals(summary, matches, n_matches, n_errors),
        "by_hashset": _counts(matches, lambda m: m.hashset, first=set_names),
        "by_category": _counts(matches, lambda m: m.entry.category or NO_CATEGORY),
        "by_kind": _counts(matches, lambda m: m.kind, first=MATCH_KINDS, keep_order=True),
        "matches": [_match_row(i, m) for i, m in enumerate(ordered, 1)],
        "matches_not_listed": max(0, summary.matches - len(matches)),
        "errors": [_error_row(e) for e in sorted(errors, key=lambda e: (e.path, e.member or ""))],
        "errors_not_listed": max(0, summary.errors - len(errors)),
        # What had no content to check: listed, but neither an error nor part of the verdict.
        "skipped": [_error_row(e) for e in sorted(skipped, key=lambda e: e.path)],
        "skipped_not_listed": max(0, summary.skipped - len(skipped)),
        "hashsets": [_hashset_row(h) for h in hashsets],
    }


def _totals(
    summary: ScanSummary, matches: Sequence[Match], n_matches: int, n_errors: int
) -> list[dict[str, str]]:
    def row(key: str, label: str, value: int, shown: str | None = None) -> dict[str, str]:
        return {"key": key, "label": label, "value": str(value), "shown": shown or f"{value:,}"}

    return [
        row("files", "Files", summary.files),
        row("items", "Items (files and archive members)", summary.items),
        row(
            "bytes",
            "Bytes read",
            summary.bytes,
            f"{format_bytes(summary.bytes)} ({summary.bytes:,} bytes)",
        ),
        row("images", "Images", summary.images),
        row("undecoded", "Images hashed but not decoded", summary.undecoded),
        row("videos", "Videos", summary.videos),
        row("matches", "Matches", n_matches),
        row("matched_items", "Matched items", matched_items(matches)),
        row("errors", "Errors", n_errors),
        row("skipped", "Skipped (no content to check)", summary.skipped),
        row("cached", "Fingerprints from cache", summary.cached),
        row("known_good", "Known-good skipped", summary.known_good),
    ]


def _counts(
    matches: Iterable[Match],
    key: Any,
    *,
    first: Iterable[str] = (),
    keep_order: bool = False,
) -> list[dict[str, str]]:
    """Matches and distinct items per key; keys in `first` are listed even with no match."""
    n: Counter[str] = Counter({k: 0 for k in first})
    items: defaultdict[str, set[tuple[str, str | None]]] = defaultdict(set)
    for m in matches:
        k = key(m)
        n[k] += 1
        items[k].add((m.path, m.member))
    keys = list(n) if keep_order else sorted(n, key=lambda k: (-n[k], k))
    return [{"key": printable(k), "matches": str(n[k]), "items": str(len(items[k]))} for k in keys]


def _match_row(number: int, m: Match) -> dict[str, str]:
    fp = m.fingerprints
    return {
        "n": str(number),
        "path": printable(m.path),
        "member": printable(m.member),
        "size": str(m.size),
        "size_shown": f"{m.size:,}",
        "media_type": printable(m.media_type),
        "hashset": printable(m.hashset),
        "entry": printable(m.entry.id),
        "category": printable(m.entry.category),
        "kind": printable(m.kind),
        "distance": str(m.distance),
        "transform": how_matched(m),
        "md5": printable(fp.md5),
        "sha256": printable(fp.sha256),
    }


def _error_row(e: ScanError) -> dict[str, str]:
    return {
        "path": printable(e.path),
        "member": printable(e.member),
        "reason": printable(e.reason),
        "message": printable(e.message),
    }


def _hashset_row(h: dict[str, Any]) -> dict[str, str]:
    entries = h.get("entries")
    return {
        "name": printable(h.get("name")),
        "source": printable(h.get("source")),
        "version": printable(h.get("version")),
        "imported_at": printable(h.get("imported_at")),
        "entries": str(entries) if entries is not None else "",
        "entries_shown": f"{entries:,}" if isinstance(entries, int) else printable(entries),
        "known_good": "yes" if h.get("known_good") else "no",
    }
