"""`vigil scan PATH...`: find every known item under the given paths."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from vigil.catalog.store import Catalog
from vigil.cli.context import (
    Context,
    limit_option,
    limits_help,
    parse_limits,
    vpdq_seconds_option,
)
from vigil.cli.context import console as _console
from vigil.errors import VigilError
from vigil.fingerprint.video import VPDQ_SECONDS_PER_FRAME
from vigil.matching.matcher import Matcher, MatchSettings
from vigil.scan import export as results_export
from vigil.scan.cache import FingerprintCache
from vigil.scan.results import Match, ScanError, ScanSummary, Skipped
from vigil.scan.scanner import Scanner, ScanOptions

EXIT_CLEAN, EXIT_FOUND, EXIT_ERROR = 0, 1, 2


class CliSink:
    """Prints matches (JSON lines or not), lists errors (and with `verbose` what was skipped) on
    stderr, shows progress on a terminal."""

    def __init__(self, *, as_json: bool, quiet: bool, verbose: bool = False) -> None:
        self.as_json = as_json
        self.quiet = quiet
        self.verbose = verbose
        self.matches: list[Match] = []
        self.errors: list[ScanError] = []
        self.skipped_items: list[Skipped] = []
        self.err = Console(stderr=True, highlight=False)
        self._progress: Progress | None = None
        if not quiet and self.err.is_terminal:
            self._progress = Progress(
                TextColumn("[bold]scanning[/]"),
                BarColumn(bar_width=None, pulse_style="cyan"),
                TextColumn("{task.fields[files]} files"),
                TextColumn("{task.fields[mb]:.0f} MB"),
                TextColumn("{task.fields[found]} found"),
                TextColumn("{task.fields[errors]} errors"),
                TextColumn("{task.fields[rate]:.0f} files/s"),
                TimeElapsedColumn(),
                console=self.err,
                transient=True,
            )
            self._task = self._progress.add_task(
                "scan", total=None, files=0, mb=0.0, found=0, errors=0, rate=0.0
            )
            self._progress.start()

    def match(self, match: Match) -> None:
        self.matches.append(match)
        if self.as_json:
            sys.stdout.write(json.dumps(match.to_dict()) + "\n")
            sys.stdout.flush()

    def error(self, error: ScanError) -> None:
        self.errors.append(error)
        self._say(f"vigil: error: {error}")

    def skipped(self, item: Skipped) -> None:
        self.skipped_items.append(item)
        if self.verbose:
            self._say(f"vigil: skipped: {item}")

    def _say(self, line: str) -> None:
        """One line on stderr (above the progress bar when there is one)."""
        if self._progress is not None:
            self._progress.console.print(line, markup=False, highlight=False)
        else:
            print(line, file=sys.stderr, flush=True)

    def progress(self, summary: ScanSummary) -> None:
        if self._progress is not None:
            rate = summary.files / summary.seconds if summary.seconds else 0.0
            self._progress.update(
                self._task,
                files=summary.files,
                mb=summary.bytes / 1e6,
                found=summary.matches,
                errors=summary.errors,
                rate=rate,
            )

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()


def _matchers(ctx: Context, hashsets: tuple[str, ...]) -> list[Matcher]:
    """Resolve --hashset values: names of imported sets (a view of the current build), or
    hash-list files read on the fly (compiled in memory)."""
    names = [h for h in hashsets if not Path(h).is_file()]
    files = [Path(h) for h in hashsets if Path(h).is_file()]
    matchers: list[Matcher] = []
    if names or not files:
        matcher = ctx.matcher()
        # The sets of that build, not of the catalog now: the catalog may change meanwhile.
        sets = {name: set_id for set_id, name in matcher.set_names.items()}
        missing = [n for n in names if n not in sets]
        if missing:
            raise VigilError(
                f"no hash set or file named {', '.join(map(repr, missing))} "
                f"(imported sets: {', '.join(sorted(sets)) or 'none'})"
            )
        if not sets and not files:
            raise VigilError(
                "no hash sets imported: run 'vigil hashset import FILE' or pass --hashset FILE"
            )
        if names:
            matcher = matcher.view({sets[n] for n in names} | matcher.known_good_sets)
        matchers.append(matcher)
    if files:
        mem = Catalog.in_memory()
        for f in files:
            mem.import_file(f)
        matchers.append(Matcher.compile(mem, build_id=_lists_build_id(files)))
        mem.close()
    return matchers


@click.command("scan", epilog=limits_help())
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option(
    "--hashset",
    "hashsets",
    multiple=True,
    metavar="NAME_OR_FILE",
    help="Match against this imported set or hash-list file (repeatable; default: all sets).",
)
@click.option(
    "--json", "as_json", is_flag=True, help="One JSON object per match on stdout, nothing else."
)
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write a self-contained HTML report.",
)
@click.option(
    "--export-vics",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the matches as VICS 2.0 JSON.",
)
@click.option(
    "--export-csv",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the matches as CSV.",
)
@click.option(
    "--workers", type=click.IntRange(min=0), default=0, help="Processes (default: every core)."
)
@click.option(
    "--pdq-distance",
    type=click.IntRange(0, 128),
    default=MatchSettings.pdq_distance,
    show_default=True,
    help="Largest PDQ Hamming distance that is a match.",
)
@click.option(
    "--pdq-quality",
    type=click.IntRange(0, 100),
    default=MatchSettings.pdq_quality,
    show_default=True,
    help="Smallest PDQ quality of a scanned image that is matched.",
)
@click.option(
    "--no-rotations", is_flag=True, help="Match PDQ as is, without the 8 rotations/flips."
)
@click.option(
    "--no-pdq-variants",
    is_flag=True,
    help="Match only the picture as it is (and its rotations), not its scanned-side variants "
    "(borders trimmed, re-padded: README, Robustness).",
)
@click.option(
    "--pdq-variant-distance",
    type=click.IntRange(0, 128),
    default=MatchSettings.pdq_variant_distance,
    show_default=True,
    help="Largest PDQ distance of a scanned-side variant that is a match.",
)
@click.option(
    "--pdq-agree-masks",
    is_flag=True,
    help="Also match a PDQ hash a few bits past --pdq-distance when a masked variant (a corner "
    "or band filled) agrees (README, Robustness: off by default, weak evidence).",
)
@click.option(
    "--vpdq-match-percent",
    "vpdq_query",
    type=click.FloatRange(0, 100),
    default=MatchSettings.vpdq_query_percent,
    show_default=True,
    help="vPDQ: share of the scanned video's frames (quality >= --pdq-quality) that must match "
    "a known video (P).",
)
@click.option(
    "--vpdq-compared-percent",
    "vpdq_compared",
    type=click.FloatRange(0, 100),
    default=MatchSettings.vpdq_compared_percent,
    show_default=True,
    help="vPDQ: share of the known video's frames that must be matched (Q); above 0, a short "
    "clip of a long known video no longer matches.",
)
@vpdq_seconds_option(VPDQ_SECONDS_PER_FRAME)
@limit_option
@click.option(
    "--no-cache", is_flag=True, help="Read every file even if its fingerprints are cached."
)
@click.option("--no-follow-symlinks", is_flag=True, help="Do not follow symbolic links.")
@click.option(
    "--fast-pdq",
    is_flag=True,
    help="Decode large JPEGs at half size for PDQ: faster, a little less faithful (README).",
)
@click.option(
    "--cluster",
    metavar="local:N|tcp://HOST:PORT",
    help="Scan on a Dask cluster: N local worker processes, or a scheduler's address; PATHS may "
    "then be fsspec URLs too (s3://bucket/prefix ...). See docs/cluster.md.",
)
@click.option(
    "--checkpoint",
    type=click.Path(file_okay=False, path_type=Path),
    help="With --cluster: keep finished shards here, so the same scan run again resumes.",
)
@click.option(
    "--shard-files",
    type=click.IntRange(min=1),
    default=2000,
    show_default=True,
    help="With --cluster: files per shard (a shard is one task; also cut at 4 GiB).",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary.")
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="Also list on stderr what was skipped because it has no content to check (devices, "
    "fifos, sockets, broken or looping symlinks, directories already walked).",
)
@click.pass_obj
def scan(
    ctx: Context,
    paths: tuple[str, ...],
    hashsets: tuple[str, ...],
    as_json: bool,
    report: Path | None,
    export_vics: Path | None,
    export_csv: Path | None,
    workers: int,
    pdq_distance: int,
    pdq_quality: int,
    no_rotations: bool,
    no_pdq_variants: bool,
    pdq_variant_distance: int,
    pdq_agree_masks: bool,
    vpdq_query: float,
    vpdq_compared: float,
    vpdq_seconds: float,
    limit: tuple[str, ...],
    no_cache: bool,
    no_follow_symlinks: bool,
    fast_pdq: bool,
    cluster: str | None,
    checkpoint: Path | None,
    shard_files: int,
    quiet: bool,
    verbose: bool,
) -> None:
    """Scan files, directories and archives for known items.

    Exit status: 0 nothing found, 1 at least one match, 2 an error prevented a complete scan
    (matches found are still reported). What has no content to check (a device, a fifo, a
    broken or looping symlink) is skipped, counted, listed with --verbose, and no error.
    """
    options = ScanOptions(
        limits=parse_limits(limit),
        workers=workers,
        match=MatchSettings(
            pdq_distance=pdq_distance,
            pdq_quality=pdq_quality,
            rotations=not no_rotations,
            pdq_variants=not no_pdq_variants,
            pdq_variant_distance=pdq_variant_distance,
            pdq_agree_masks=pdq_agree_masks,
            vpdq_query_percent=vpdq_query,
            vpdq_compared_percent=vpdq_compared,
        ),
        follow_symlinks=not no_follow_symlinks,
        fast_pdq=fast_pdq,
        vpdq_seconds=vpdq_seconds,
    )
    if checkpoint is not None and cluster is None:
        raise VigilError("--checkpoint is for cluster scans: give --cluster too")
    matchers = _matchers(ctx, hashsets)
    cache = (
        None
        if no_cache or cluster is not None
        # The sampling and the decode mode are part of the fingerprints: another one empties the cache.
        else FingerprintCache(
            ctx.home / "cache.sqlite",
            engine_version=f"{_engine_version()}/vpdq{vpdq_seconds:g}"
            + ("+fast-pdq" if fast_pdq else ""),
        )
    )
    sink = CliSink(as_json=as_json, quiet=quiet, verbose=verbose)
    try:
        if cluster is not None:
            summary = _cluster_scan(
                ctx,
                cluster,
                checkpoint,
                matchers,
                options,
                list(paths),
                sink,
                no_cache,
                shard_files,
            )
        else:
            summary = Scanner(matchers, options, cache).run(list(paths), sink)
    finally:
        sink.close()
        if cache is not None:
            cache.close()
    if report is not None:
        from vigil.report.html import write_html_report

        used = [d for m in matchers for d in m.reported_sets()]
        write_html_report(
            report, summary, sink.matches, sink.errors, used, skipped=sink.skipped_items
        )
    if export_vics is not None:
        with open(export_vics, "w", encoding="utf-8") as f:
            results_export.export_vics(sink.matches, f)
    if export_csv is not None:
        with open(export_csv, "w", encoding="utf-8", newline="") as f:
            results_export.export_csv(sink.matches, f)
    if not quiet:
        from vigil.report.terminal import render_summary

        console = _console(stderr=as_json)
        render_summary(console, summary, sink.matches, sink.errors)
        for label, path in (
            ("report", report),
            ("VICS export", export_vics),
            ("CSV export", export_csv),
        ):
            if path is not None:
                console.print(f"{label}: {path}", markup=False, highlight=False)
    sys.exit(EXIT_ERROR if summary.errors else EXIT_FOUND if summary.matches else EXIT_CLEAN)


def _cluster_scan(
    ctx: Context,
    spec: str,
    checkpoint: Path | None,
    matchers: list[Matcher],
    options: ScanOptions,
    paths: list[str],
    sink: CliSink,
    no_cache: bool,
    shard_files: int,
) -> ScanSummary:
    """The same scan on a Dask cluster (vigil.cluster), into the same sink."""
    try:
        from vigil.cluster import ClusterScan, connect
        from vigil.cluster.cache import ObjectCache
    except ImportError as exc:
        raise VigilError(
            f"--cluster needs the cluster extra: pip install 'vigil[cluster]' ({exc})"
        ) from exc
    cache = (
        None
        if no_cache
        else ObjectCache(
            ctx.home / "cluster-cache.sqlite",
            engine_version=f"{_engine_version()}/vpdq{options.vpdq_seconds:g}"
            + ("+fast-pdq" if options.fast_pdq else ""),
        )
    )
    try:
        with connect(spec) as client:
            scan = ClusterScan(
                client,
                matchers,
                options,
                checkpoint=checkpoint,
                cache=cache,
                shard_files=shard_files,
            )
            return scan.run(paths, sink)
    finally:
        if cache is not None:
            cache.close()


def _lists_build_id(files: list[Path]) -> str:
    """The same hash-list contents, read by the same Vigil, compile to the same matcher: their
    SHA-256 makes its build id, so verdicts cached with them stay valid for the next scan with
    them (the files are read whole for the import anyway; their dates are not trusted: a list
    rewritten within one clock tick at the same size would look unchanged)."""
    digest = hashlib.sha256(_engine_version().encode())
    for f in files:
        with open(f, "rb") as stream:
            digest.update(hashlib.file_digest(stream, "sha256").digest())
    return "lists-" + digest.hexdigest()[:32]


def _engine_version() -> str:
    from vigil import __version__

    return __version__
