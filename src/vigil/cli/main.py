"""`vigil`: the command group."""

from __future__ import annotations

import sys

import click

from vigil import __version__
from vigil.cli.context import Context
from vigil.errors import VigilError

EXIT_ERROR = 2


class VigilGroup(click.Group):
    """Turns VigilError into one clear line and exit status 2."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except VigilError as e:
            click.echo(f"vigil: error: {e}", err=True)
            sys.exit(EXIT_ERROR)


@click.group(cls=VigilGroup)
@click.version_option(__version__, prog_name="vigil")
@click.option(
    "--home",
    envvar="VIGIL_HOME",
    metavar="DIR",
    help="State directory (catalog, matcher, cache). Default: $VIGIL_HOME, else the user data dir.",
)
@click.pass_context
def cli(ctx: click.Context, home: str | None) -> None:
    """Find known material by fingerprint: exact (MD5/SHA-1/SHA-256) and near (PDQ)."""
    ctx.obj = Context(home)


def _register() -> None:
    from vigil.cli.demo import demo
    from vigil.cli.hash import hash_cmd
    from vigil.cli.hashset import hashset
    from vigil.cli.scan import scan

    for command in (hash_cmd, hashset, scan, demo):
        cli.add_command(command)
    cli.add_command(__import__("vigil.server.cli", fromlist=["server"]).server)


_register()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="vigil")
