"""`vigil`: the command group.

Start-up is part of every command's cost: the group knows its commands by name and one-line help,
and imports a command's module only when that command runs (`vigil --help` imports none). What a
command needs (SQLAlchemy, NumPy, the matcher, PIL) is imported by the command, where it is used.
"""

from __future__ import annotations

import importlib
import sys

import click

from vigil import __version__
from vigil.errors import VigilError

EXIT_ERROR = 2

# name -> (module, attribute, one-line help as `vigil --help` lists it). The help must be the
# command's own first docstring line (a test compares them).
COMMANDS: dict[str, tuple[str, str, str]] = {
    "demo": (
        "vigil.cli.demo",
        "demo",
        "Start a server, a mail sink and an agent; drop copies of known photos; show the alerts.",
    ),
    "hash": (
        "vigil.cli.hash",
        "hash_cmd",
        "Print the fingerprints of each FILE (directories recursively; archive members too).",
    ),
    "hashset": ("vigil.cli.hashset", "hashset", "Import, list, remove and export hash sets."),
    "scan": ("vigil.cli.scan", "scan", "Scan files, directories and archives for known items."),
    "server": (
        "vigil.server.cli",
        "server",
        "The server: agents enrol and report incidents; staff review them over the API.",
    ),
    "agent": (
        "vigil.agent.cli",
        "agent",
        "The endpoint agent: enrol, watch folders, report matches to the server.",
    ),
    "gateway": (
        "vigil.gateway.cli",
        "gateway",
        "The ICAP service: the web proxy hands it images and videos to check.",
    ),
}


class VigilGroup(click.Group):
    """Loads commands on use, and turns VigilError into one clear line and exit status 2."""

    def __init__(self, *args: object, lazy: dict[str, tuple[str, str, str]], **kwargs: object):
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command, loaded or not."""
        return sorted(set(self.commands) | set(self.lazy))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command, its module imported now if it was not yet."""
        if cmd_name not in self.commands and cmd_name in self.lazy:
            module, attribute, _ = self.lazy[cmd_name]
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return self.commands.get(cmd_name)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """The command named by args[0]; for a name that is none, click's error as usual."""
        if args and args[0] not in self.list_commands(ctx):
            # Load them all, so that click's error (and its suggestion) knows every command.
            for name in self.lazy:
                self.get_command(ctx, name)
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The commands and their one-line help, as click lists them, without importing any."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(n) for n in names)
        rows = []
        for name in names:
            # Not loaded yet: a stand-in with the same help, shortened by click the same way.
            cmd = self.commands.get(name) or click.Command(name, help=self.lazy[name][2])
            if not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except VigilError as e:
            click.echo(f"vigil: error: {e}", err=True)
            sys.exit(EXIT_ERROR)


@click.group(cls=VigilGroup, lazy=COMMANDS)
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
    from vigil.cli.context import Context

    ctx.obj = Context(home)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="vigil")
