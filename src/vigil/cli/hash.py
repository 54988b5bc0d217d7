"""`vigil hash FILE...`: the fingerprints of files and archive members, one JSON object each."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from vigil.cli.context import limit_option, limits_help, parse_limits, vpdq_seconds_option
from vigil.fingerprint.video import VPDQ_SECONDS_PER_FRAME

if TYPE_CHECKING:
    from vigil.scan.results import ScannedItem

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@click.command("hash", epilog=limits_help())
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("--rotations", is_flag=True, help="Also print the 8 rotation/flip variants of PDQ.")
@vpdq_seconds_option(VPDQ_SECONDS_PER_FRAME)
@click.option(
    "--frames", is_flag=True, help="Also print each video's vPDQ frames in the JSON ('vpdq')."
)
@click.option(
    "--vpdq-out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write each video's vPDQ to DIR/<name>.txt as `frame,quality,pdq,timestamp` lines "
    "(the reference tool's format: `vigil hashset import` reads it, one file per video).",
)
@limit_option
def hash_cmd(
    files: tuple[str, ...],
    rotations: bool,
    vpdq_seconds: float,
    frames: bool,
    vpdq_out: Path | None,
    limit: tuple[str, ...],
) -> None:
    """Print the fingerprints of each FILE (directories recursively; archive members too)."""
    from vigil.scan.results import Skipped
    from vigil.scan.walk import walk
    from vigil.scan.worker import fingerprint_file

    limits = parse_limits(limit)
    failed = False
    if vpdq_out is not None:
        vpdq_out.mkdir(parents=True, exist_ok=True)
    for found in walk(files):
        if isinstance(found, Skipped):  # no content to hash (a fifo, a broken link): not a failure
            click.echo(f"vigil: skipped: {found}", err=True)
            continue
        if not isinstance(found, tuple):
            failed = True
            click.echo(f"vigil: {found}", err=True)
            continue
        path = found[0]
        result = fingerprint_file(path, limits, vpdq_seconds)
        for item in result.items:
            out = {
                "path": item.path,
                "member": item.member,
                **item.fingerprints.to_dict(dihedral=rotations, frames=frames),
            }
            if vpdq_out is not None and item.fingerprints.vpdq is not None:
                out["vpdq_file"] = str(_write_vpdq(vpdq_out, item))
            click.echo(json.dumps(out))
        for err in result.errors:
            failed = True
            click.echo(f"vigil: {err}", err=True)
    sys.exit(2 if failed else 0)


def _write_vpdq(directory: Path, item: ScannedItem) -> Path:
    """DIR/<file name>[_<member>].txt, not overwriting a file written by this run's others."""
    from vigil.fingerprint.video import reference_lines

    name = Path(item.path).name + (f"_{item.member}" if item.member else "")
    stem = _UNSAFE.sub("_", name.rsplit(".", 1)[0] if "." in name else name).strip("._") or "video"
    target = directory / f"{stem}.txt"
    number = 1
    while target in _written:
        number += 1
        target = directory / f"{stem}-{number}.txt"
    _written.add(target)
    assert item.fingerprints.vpdq is not None
    target.write_text("".join(f"{line}\n" for line in reference_lines(item.fingerprints.vpdq)))
    return target


# Files written by this run: two videos of the same name get name.txt and name-2.txt.
_written: set[Path] = set()
