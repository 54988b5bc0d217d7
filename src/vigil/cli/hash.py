"""`vigil hash FILE...`: the fingerprints of files and archive members, one JSON object each."""

from __future__ import annotations

import json
import sys

import click

from vigil.cli.context import limits_help, parse_limits
from vigil.scan.walk import walk
from vigil.scan.worker import fingerprint_file


@click.command("hash", epilog=limits_help())
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("--rotations", is_flag=True, help="Also print the 8 rotation/flip variants of PDQ.")
@click.option("--limit", "limit", multiple=True, metavar="NAME=VALUE", help="Change a limit.")
def hash_cmd(files: tuple[str, ...], rotations: bool, limit: tuple[str, ...]) -> None:
    """Print the fingerprints of each FILE (directories recursively; archive members too)."""
    limits = parse_limits(limit)
    failed = False
    for found in walk(files):
        if not isinstance(found, tuple):
            failed = True
            click.echo(f"vigil: {found}", err=True)
            continue
        path = found[0]
        result = fingerprint_file(path, limits)
        for item in result.items:
            out = {
                "path": item.path,
                "member": item.member,
                **item.fingerprints.to_dict(dihedral=rotations),
            }
            click.echo(json.dumps(out))
        for err in result.errors:
            failed = True
            click.echo(f"vigil: {err}", err=True)
    sys.exit(2 if failed else 0)
