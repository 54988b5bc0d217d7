"""What every command needs: the home directory, the catalog, the compiled matcher."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from vigil.config import vigil_home
from vigil.limits import Limits

if TYPE_CHECKING:
    from rich.console import Console

    from vigil.catalog.store import Catalog
    from vigil.engine import Engine
    from vigil.matching.matcher import Matcher

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Context:
    """Lazily opened state of one invocation."""

    home_override: str | None

    @cached_property
    def home(self) -> Path:
        return vigil_home(self.home_override)

    @cached_property
    def catalog(self) -> Catalog:
        from vigil.catalog.store import Catalog

        return Catalog.open(self.home)

    @cached_property
    def engine(self) -> Engine:
        """The engine on the home's catalog and builds."""
        from vigil.engine import Engine

        return Engine.on_catalog(self.catalog, self.home)

    def matcher(self) -> Matcher:
        """The catalog's current build, compiled first if the catalog changed."""
        return self.engine.matcher()


def parse_limits(values: tuple[str, ...]) -> Limits:
    """`--limit NAME=VALUE` options applied to the default limits."""
    overrides: dict[str, str] = {}
    for v in values:
        name, sep, raw = v.partition("=")
        if not sep:
            raise click.BadParameter(f"expected NAME=VALUE, got {v!r}", param_hint="--limit")
        overrides[name.strip()] = raw
    try:
        return Limits().with_overrides(overrides)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--limit") from None


def limits_help() -> str:
    """The limits table for --help texts."""
    lines = ["\b", "Limits (--limit NAME=VALUE; sizes take K/M/G):"]
    for name, default, unit, meaning in Limits.table():
        lines.append(f"  {name:<20} {default!s:>12} {unit:<8} {meaning}")
    return "\n".join(lines)


def console(*, stderr: bool = False) -> Console:
    """A rich console: the terminal's width on a terminal, a wide fixed width when piped."""
    from rich.console import Console

    c = Console(stderr=stderr, highlight=False)
    if not c.is_terminal:
        c = Console(stderr=stderr, highlight=False, width=160)
    return c


# Options shared by `vigil hash` and `vigil scan`.
limit_option = click.option(
    "--limit", "limit", multiple=True, metavar="NAME=VALUE", help="Change a limit (see below)."
)


def vpdq_seconds_option(default: float) -> Callable[[F], F]:
    """`--vpdq-seconds`: the vPDQ sampling interval."""
    return click.option(
        "--vpdq-seconds",
        type=click.FloatRange(0, 3600),
        default=default,
        show_default=True,
        help="vPDQ: seconds of video between two hashed frames (0: every frame).",
    )
