"""`vigil agent ...`: enrol this machine, run the daemon, show its status, scan by hand.

Heavy imports (the engine, httpx) wait inside the commands, so `vigil --help` stays fast.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from vigil.agent.config import AgentConfig

home_option = click.option(
    "--home",
    metavar="DIR",
    default=None,
    help="The agent's home. Default: `vigil --home`, $VIGIL_HOME, else the user data dir.",
)


def _home(ctx: click.Context, home: str | None) -> Path:
    from vigil.config import vigil_home

    parent = ctx.find_root().params.get("home")
    return vigil_home(home or parent)


def _require_packages(cfg: AgentConfig) -> None:
    """The packages the daemon will need are installed (else a clear error, before anything):
    the watch backend's, and psutil for scheduled scans (held to cpu_share)."""
    import importlib.util

    from vigil.agent.watch import choose
    from vigil.errors import VigilError

    chosen = choose(cfg.watch_backend)
    needs = {"inotify_simple" if chosen == "inotify" else "watchdog": f"the {chosen} watch backend"}
    if cfg.schedule_roots:
        needs["psutil"] = "a scheduled scan"
    for package, what in needs.items():
        if importlib.util.find_spec(package) is None:
            raise VigilError(f"{what} needs {package}: pip install 'vigil[agent]'")


@click.group()
def agent() -> None:
    """The endpoint agent: enrol, watch folders, report matches to the server."""


@agent.command()
@home_option
@click.option("--server", "server_url", required=True, metavar="URL", help="The server's URL.")
@click.option("--token", required=True, help="A single-use enrolment token (`vigil server token`).")
@click.option("--name", "host", metavar="HOST", help="This machine's name. Default: its hostname.")
@click.option(
    "--ca-cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The CA certificate that signed the server's TLS certificate (else the system's).",
)
@click.pass_context
def enroll(
    ctx: click.Context,
    home: str | None,
    server_url: str,
    token: str,
    host: str | None,
    ca_cert: Path | None,
) -> None:
    """Enrol this machine with a server: trade a single-use token for its own credential."""
    from vigil.endpoint import client, enrolment

    root = _home(ctx, home)
    name = host or socket.gethostname()
    ca = str(ca_cert.resolve()) if ca_cert else None
    body = client.enroll(server_url, token, name, ca)
    path = enrolment.save(
        root,
        enrolment.Enrolment(
            server=server_url.rstrip("/"),
            agent_id=body["agent_id"],
            credential=body["credential"],
            host=name,
            ca_cert=ca,
        ),
    )
    if body.get("root"):
        _save_root(root, body["root"])
    click.echo(f"enrolled as agent {body['agent_id']} ({name}) with {server_url}", err=True)
    click.echo(f"credential kept in {path} (owner-only)", err=True)


def _save_root(home: Path, root: dict[str, Any]) -> None:
    """The server's TUF root metadata: trusted from now on to verify catalog updates."""
    from vigil.updates.client import save_root

    save_root(home, root)


@agent.command()
@home_option
@click.option(
    "--watch", "watch", multiple=True, metavar="DIR", help="Watch DIR (instead of agent.toml's)."
)
@click.option("--verbose", "-v", is_flag=True, help="Log every file checked.")
@click.pass_context
def run(ctx: click.Context, home: str | None, watch: tuple[str, ...], verbose: bool) -> None:
    """Run the agent in the foreground until SIGTERM or Ctrl-C (what the systemd unit runs)."""
    from vigil.agent import config
    from vigil.agent.daemon import Agent
    from vigil.endpoint.logs import journal_logging

    root = _home(ctx, home)
    cfg = config.load(root)
    _require_packages(cfg)
    journal_logging(verbose)
    Agent(root, cfg, config.watched_roots(cfg, list(watch)), verbose=verbose).run()


@agent.command()
@home_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@click.pass_context
def status(ctx: click.Context, home: str | None, as_json: bool) -> None:
    """Enrolment, catalog version and age, watched folders, spool length, last delivery and scan."""
    from vigil.agent.daemon import SCHEDULE_FILE, STATUS_FILE, read_json
    from vigil.endpoint import enrolment
    from vigil.endpoint.spool import Spool

    root = _home(ctx, home)
    out: dict[str, Any] = {"home": str(root)}
    try:
        e = enrolment.load(root)
        out["enrolled"] = True
        out.update(server=e.server, agent_id=e.agent_id, host=e.host)
    except enrolment.NotEnrolled:
        out["enrolled"] = False
    spool = Spool(root)
    try:
        out["spool_length"] = len(spool)
        out["rejected_reports"] = spool.rejected_count()
        out["last_delivery"] = _iso(spool.last_delivery())
    finally:
        spool.close()
    daemon = read_json(root / enrolment.AGENT_DIR / STATUS_FILE)
    out["running"] = _alive(daemon.get("pid"))
    out["status_updated"] = _iso(daemon.get("updated"))
    out["watched"] = daemon.get("roots", [])
    out["watch_backend"] = daemon.get("watch_backend")
    out["watch"] = daemon.get("watch")
    catalog = daemon.get("catalog") or {}
    out["catalog"] = catalog
    if catalog.get("last_fresh"):
        out["catalog_age_seconds"] = round(time.time() - catalog["last_fresh"])
    out["last_heartbeat"] = _iso(daemon.get("last_heartbeat"))
    out["scanner"] = daemon.get("scanner")
    schedule = read_json(root / enrolment.AGENT_DIR / SCHEDULE_FILE)
    out["last_scheduled_scan"] = _iso(schedule.get("last_finished"))
    out["last_scheduled_status"] = schedule.get("last_status")
    # Times the last scheduled scan was paused to keep it to cpu_share.
    out["last_scheduled_pauses"] = schedule.get("last_pauses")
    if as_json:
        click.echo(json.dumps(out, indent=1))
        return
    for key, value in out.items():
        if isinstance(value, dict | list):
            value = json.dumps(value)
        click.echo(f"{key}: {value if value is not None else '-'}")


def _iso(t: float | None) -> str | None:
    if not t:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _alive(pid: object) -> bool:
    import os

    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@agent.command()
@home_option
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--exclude", multiple=True, metavar="PATTERN", help="Leave out a path or glob.")
@click.option(
    "--detection",
    type=click.Choice(["manual", "scheduled"]),
    default="manual",
    hidden=True,
)
@click.option("--low-priority", is_flag=True, hidden=True)
@click.option("--no-deliver", is_flag=True, hidden=True)
@click.option("--workers", type=int, default=0, hidden=True)
@click.option("--item-stretch", type=float, default=1.0, hidden=True)
@click.pass_context
def scan(
    ctx: click.Context,
    home: str | None,
    paths: tuple[str, ...],
    exclude: tuple[str, ...],
    detection: str,
    low_priority: bool,
    no_deliver: bool,
    workers: int,
    item_stretch: float,
) -> None:
    """Scan PATHS now and report matches through the agent (spooled, then delivered)."""
    import logging
    import os

    import httpx

    from vigil.agent import priority
    from vigil.agent.config import exclusion, load
    from vigil.agent.scanning import Scanning, SpoolSink
    from vigil.endpoint import enrolment
    from vigil.endpoint.client import Connection, ServerRefused
    from vigil.endpoint.delivery import deliver_once
    from vigil.endpoint.logs import journal_logging
    from vigil.endpoint.spool import Spool
    from vigil.engine import Engine

    root = _home(ctx, home)
    e = enrolment.load(root)
    journal_logging()
    if low_priority:
        priority.lower()
    cfg = load(root)
    excluded = exclusion([*cfg.exclude, *exclude], always=[str(root)])
    with Engine.open(root) as engine:
        version = engine.matcher().build_id
        spool = Spool(root)
        scanning = Scanning(engine, root, workers=workers, stretch=item_stretch)
        try:
            sink = SpoolSink(spool, detection, lambda: version)
            summary = scanning.trees([os.path.abspath(p) for p in paths], sink, excluded)
        finally:
            scanning.close()
        click.echo(
            f"{summary.files} file(s) checked, {sink.matches} match(es), "
            f"{summary.errors} not checked",
            err=True,
        )
        if not no_deliver:
            conn = Connection(e.server, e.credential, e.ca_cert)
            try:
                deliver_once(spool, conn)
            except (httpx.HTTPError, ServerRefused) as err:
                logging.getLogger("vigil.agent").warning(
                    "not delivered now (%s): the running agent delivers the spool", err
                )
            finally:
                conn.close()
        click.echo(f"spool: {len(spool)} report(s) waiting", err=True)
        spool.close()
