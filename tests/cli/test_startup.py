"""Start-up: `vigil --help` imports no command, `vigil hashset list` none of the heavy libraries.

No wall-clock thresholds (the machines are shared): what a command imports is what its start-up
costs, and that is checked exactly, in a fresh interpreter each time.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import click
import pytest

from vigil.catalog.store import Catalog
from vigil.cli.main import COMMANDS
from vigil.hashsets.entry import Entry, ParseReport

# What a command that does not hash, match or scan must not pay for.
HEAVY = (
    "numpy",
    "numba",
    "PIL",
    "av",
    "magic",
    "libarchive",
    "alembic",
    "vigil.matching.matcher",
    "vigil.fingerprint.pdq",
    "vigil.scan.scanner",
)

# Runs `vigil ARGS...` in this interpreter, then reports which modules were loaded.
RUN_AND_REPORT = textwrap.dedent(
    """
    import json, os, sys
    import click
    from vigil.cli.main import cli, main
    if os.environ.get("LOAD_EVERY_COMMAND"):  # the group as it was before it loaded lazily
        for name in cli.list_commands(click.Context(cli)):
            cli.get_command(click.Context(cli), name)
    sys.argv = ["vigil", *sys.argv[1:]]
    try:
        main()
    except SystemExit as e:
        code = e.code or 0
    else:
        code = 0
    print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
    """
)


def run(*args: str, home: Path, load_every_command: bool = False) -> tuple[str, set[str]]:
    """Standard output and the modules loaded by `vigil ARGS...` in a fresh interpreter."""
    env = {**os.environ, "VIGIL_HOME": str(home)}
    if load_every_command:
        env["LOAD_EVERY_COMMAND"] = "1"
    proc = subprocess.run(
        [sys.executable, "-c", RUN_AND_REPORT, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    assert report["code"] == 0, proc.stderr
    return proc.stdout, set(report["modules"])


def test_every_command_is_listed_with_its_own_one_line_help() -> None:
    for name, (module, attribute, short) in COMMANDS.items():
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command)
        assert command.name == name
        assert command.get_short_help_str(limit=1000) == short, name


def test_help_lists_every_command_and_imports_none(tmp_path: Path) -> None:
    out, modules = run("--help", home=tmp_path)
    listed = out.split("Commands:", 1)[1].split()
    for name in COMMANDS:
        assert name in listed
    assert not [m for m in modules if m.startswith("vigil.cli.") and m != "vigil.cli.main"]
    assert not modules & {*HEAVY, "sqlalchemy", "rich"}


def test_help_reads_as_with_every_command_loaded(tmp_path: Path) -> None:
    lazy, _ = run("--help", home=tmp_path)
    eager, modules = run("--help", home=tmp_path, load_every_command=True)
    assert "vigil.cli.scan" in modules
    assert lazy == eager


def test_a_mistyped_command_gets_the_error_it_got_with_every_command_loaded(
    tmp_path: Path,
) -> None:
    def stderr(load_every_command: bool) -> str:
        env = {**os.environ, "VIGIL_HOME": str(tmp_path)}
        if load_every_command:
            env["LOAD_EVERY_COMMAND"] = "1"
        proc = subprocess.run(
            [sys.executable, "-c", RUN_AND_REPORT, "hashsett", "list"],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        return proc.stderr.strip().rsplit("\n", 1)[0]  # without the report line

    lazy = stderr(load_every_command=False)
    assert "No such command 'hashsett'" in lazy
    assert lazy == stderr(load_every_command=True)


def test_hashset_list_loads_neither_sqlalchemy_nor_the_engine(tmp_path: Path) -> None:
    catalog = Catalog.open(tmp_path)
    catalog.import_entries(
        "police",
        [Entry(hashes={"md5": "ab" * 16}, id="1", category="1")],
        ParseReport(format="csv"),
        source="police.csv",
        version="v1",
    )
    catalog.close()
    out, modules = run("hashset", "list", "--json", home=tmp_path)
    assert json.loads(out)["name"] == "police"
    assert not modules & {*HEAVY, "sqlalchemy", "rich"}


@pytest.mark.parametrize("args", [("hashset", "list"), ("hashset", "list", "--json")])
def test_hashset_list_on_a_new_home_makes_the_catalog(tmp_path: Path, args: tuple[str]) -> None:
    out, modules = run(*args, home=tmp_path)
    assert out.strip() in ("", "no hash sets imported (vigil hashset import FILE)")
    assert "sqlalchemy" in modules  # Catalog made it ...
    assert not modules & set(HEAVY)  # ... and nothing of the engine was needed
    _, again = run(*args, home=tmp_path)
    assert "sqlalchemy" not in again
