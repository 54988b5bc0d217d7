"""`vigil hashset import|list|remove|export`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from vigil.cli.context import Context
from vigil.hashsets.registry import CHOICES, EXPORT_NAMES

SHOWN_PROBLEMS = 20


@click.group()
def hashset() -> None:
    """Import, list, remove and export hash sets."""


@hashset.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", help="Name of the set (default: the file name without extension).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", *CHOICES]),
    default="auto",
    show_default=True,
    help="Format of the file; 'auto' detects it from the content.",
)
@click.option("--version", "version", help="Version label (default: from the file, else its date).")
@click.option(
    "--known-good", is_flag=True, help="A list of known-good files: skip them, never alert."
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@click.pass_obj
def import_cmd(
    ctx: Context,
    file: Path,
    name: str | None,
    fmt: str,
    version: str | None,
    known_good: bool,
    as_json: bool,
) -> None:
    """Import FILE as a hash set (atomic: a file that cannot be parsed changes nothing)."""
    result = ctx.catalog.import_file(
        file, name=name, format=fmt, version=version, known_good=known_good
    )
    info = result.hashset
    if as_json:
        out = {
            "hashset": info.to_dict(),
            "unchanged": result.unchanged,
            "replaced": result.replaced.to_dict() if result.replaced else None,
            "malformed": result.report.malformed,
            "problems": result.problems,
            "withdrawn": result.withdrawn,
        }
        click.echo(json.dumps(out))
        return
    if result.unchanged:
        click.echo(
            f"{info.name}: already imported from identical content ({info.entries} entries); nothing changed"
        )
        return
    kind = "known-good (skip list)" if info.known_good else "alerting"
    click.echo(
        f"imported {info.name!r}: {info.entries} entries, {info.format} format, {kind}, version {info.version}"
    )
    by_kind = ", ".join(f"{k} {v}" for k, v in sorted(info.counts.get("by_kind", {}).items()))
    by_cat = ", ".join(f"{k}: {v}" for k, v in sorted(info.counts.get("by_category", {}).items()))
    click.echo(f"  hashes: {by_kind or 'none'}")
    click.echo(f"  categories: {by_cat or 'none'}")
    if result.replaced:
        r = result.replaced
        click.echo(f"  replaced version {r.version} imported {r.imported_at} ({r.entries} entries)")
    if result.withdrawn:
        click.echo(f"  withdrawn by the list: {result.withdrawn} entries")
    if result.report.malformed:
        click.echo(f"  malformed records skipped: {result.report.malformed}", err=True)
        for p in result.problems[:SHOWN_PROBLEMS]:
            click.echo(f"    {file}: {p}", err=True)
        if result.report.malformed > SHOWN_PROBLEMS:
            click.echo(f"    ... and {result.report.malformed - SHOWN_PROBLEMS} more", err=True)


@hashset.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per set.")
@click.pass_obj
def list_cmd(ctx: Context, as_json: bool) -> None:
    """List imported hash sets."""
    from vigil.catalog.listing import read_sets

    # Without SQLAlchemy when the catalog is up to date; else Catalog makes or upgrades it.
    sets = read_sets(ctx.home)
    if sets is None:
        sets = ctx.catalog.sets()
    if as_json:
        for s in sets:
            click.echo(json.dumps(s.to_dict()))
        return
    if not sets:
        click.echo("no hash sets imported (vigil hashset import FILE)")
        return
    click.echo(f"{'NAME':<24} {'ENTRIES':>10} {'FORMAT':<10} {'KIND':<10} {'VERSION':<22} IMPORTED")
    for s in sets:
        kind = "known-good" if s.known_good else "alert"
        click.echo(
            f"{s.name:<24} {s.entries:>10} {s.format:<10} {kind:<10} {s.version:<22} {s.imported_at}"
        )


@hashset.command("remove")
@click.argument("name")
@click.pass_obj
def remove_cmd(ctx: Context, name: str) -> None:
    """Remove the set NAME."""
    info = ctx.catalog.remove(name)
    click.echo(f"removed {info.name!r} ({info.entries} entries)")


@hashset.command("export")
@click.argument("name")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(EXPORT_NAMES),
    default="vics",
    show_default=True,
    help="vpdq-csv: the videos' frames, one row each (video_id,frame,quality,pdq,timestamp,...).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File (default: stdout).",
)
@click.pass_obj
def export_cmd(ctx: Context, name: str, fmt: str, output: Path | None) -> None:
    """Export the set NAME as VICS 2.0 JSON, CSV or vPDQ CSV."""
    from vigil.hashsets.export import write

    entries = ctx.catalog.iter_entries(name)
    if output is None:
        n = write(fmt, entries, sys.stdout)
    else:
        with open(output, "w", encoding="utf-8", newline="") as f:
            n = write(fmt, entries, f)
    click.echo(f"exported {n} entries of {name!r}", err=True)
