"""`vigil demo`: the whole system on one machine (server, mail sink, agent) finding copies of
known benign photos; `vigil demo --engine`: the engine alone, offline, in under a minute.

The engine demo builds a hash list (VICS 2.0) from photos shipped inside scikit-image, plants
exact and altered copies of them among unrelated photos, imports the list, scans, and reports.
The whole-system demo is `vigil.demo.system`.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import click

from vigil.cli.context import console as _console


@click.command("demo")
@click.option(
    "--engine",
    "engine_only",
    is_flag=True,
    help="The engine alone: build the list, plant copies, scan them, write an HTML report.",
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to build the demo (default: a new temporary directory, kept).",
)
@click.option(
    "--once",
    is_flag=True,
    help="Stop (server, agent, mail sink) after the demo instead of running until Ctrl-C.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="JSON on stdout: the matches (--engine), else one object with what the demo saw.",
)
def demo(engine_only: bool, directory: Path | None, once: bool, as_json: bool) -> None:
    """Start a server, a mail sink and an agent; drop copies of known photos; show the alerts."""
    if engine_only:
        _engine_demo(directory, as_json)
        return
    from vigil.demo import system

    status = system.run(directory, once=once, as_json=as_json)
    if status:
        raise SystemExit(status)


def _engine_demo(directory: Path | None, as_json: bool) -> None:
    """Build a demo hash list from benign photos, plant altered copies, scan, and report."""
    from vigil.demo.photos import LIST_NAME, engine_tree
    from vigil.engine import Engine
    from vigil.report.html import write_html_report
    from vigil.report.terminal import render_summary
    from vigil.scan.cache import FingerprintCache
    from vigil.scan.scanner import CollectingSink, Scanner, ScanOptions

    root = directory or Path(tempfile.mkdtemp(prefix="vigil-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    console = _console()
    list_file, tree, planted = engine_tree(root)
    home = root / "home"
    home.mkdir(exist_ok=True)
    engine = Engine.open(home)
    catalog = engine.catalog
    assert catalog is not None
    result = catalog.import_file(list_file, name=LIST_NAME)
    console.print(
        f"demo hash list: {list_file} ({result.hashset.entries} entries, VICS 2.0)", markup=False
    )
    console.print(
        f"planted {len(planted)} copies among {sum(1 for _ in tree.rglob('*') if _.is_file())} files in {tree}:",
        markup=False,
    )
    for p in planted:
        console.print(f"  {p.where:<42} {p.how} of {p.of}", markup=False)
    matcher = engine.matcher()
    sink = CollectingSink()
    cache = FingerprintCache(home / "cache.sqlite", engine_version="demo")
    summary = Scanner([matcher], ScanOptions(), cache).run([str(tree)], sink)
    cache.close()
    report = root / "report.html"
    write_html_report(
        report,
        summary,
        sink.matches,
        sink.errors,
        [s.to_dict() for s in catalog.sets()],
        skipped=sink.skipped_items,
    )
    if as_json:
        for m in sink.matches:
            click.echo(json.dumps(m.to_dict()))
    render_summary(console, summary, sink.matches, sink.errors)
    found = {(m.path, m.member) for m in sink.matches}
    found_paths = {os.path.relpath(p, tree) for p, _ in found}
    missed = [p for p in planted if p.where not in found_paths]
    console.print(
        f"found {len(found_paths)} of {len(planted)} planted copies; missed: {', '.join(p.where for p in missed) or 'none'}",
        markup=False,
    )
    console.print(f"HTML report: {report}", markup=False)
    if missed or sink.errors:
        raise SystemExit(2)
