"""`vigil server ...`: initialise, run, and hand out credentials (on the server's machine).

Secrets go to standard output alone (scripts capture them); what they are goes to standard
error. Heavy imports wait inside the commands, so `vigil --help` stays fast.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

DEFAULT_LISTEN = "127.0.0.1:8765"
KEYS_DIR = "keys"

home_option = click.option(
    "--home",
    metavar="DIR",
    default=None,
    help="The server's home. Default: `vigil --home`, $VIGIL_HOME, else the user data dir.",
)


def _require_extra() -> None:
    """A clear message instead of an ImportError when the `server` extra is not installed."""
    import importlib.util

    from vigil.errors import VigilError

    missing = [
        name
        for name in ("fastapi", "uvicorn", "pwdlib", "prometheus_client")
        if importlib.util.find_spec(name) is None
    ]
    if missing:
        raise VigilError(f"the server needs {', '.join(missing)}: pip install 'vigil[server]'")


def _home(ctx: click.Context, home: str | None) -> Path:
    from vigil.config import vigil_home

    parent = ctx.find_root().params.get("home")
    return vigil_home(home or parent)


@click.group()
def server() -> None:
    """The server: agents enrol and report incidents; staff review them over the API."""
    _require_extra()


@server.command()
@home_option
@click.option(
    "--db",
    "db_url",
    metavar="URL",
    help="Database URL (SQLAlchemy's form; a plain postgresql:// is psycopg 3). Default: SQLite files under the home.",
)
@click.pass_context
def init(ctx: click.Context, home: str | None, db_url: str | None) -> None:
    """Create the server's database, its keys directory and the first admin (`admin`).

    Prints the admin's generated password once.
    """
    from vigil.catalog.store import Catalog
    from vigil.config import record_database_url, sqlalchemy_url
    from vigil.server.accounts import FIRST_ADMIN, Role, add_user
    from vigil.server.models import User
    from vigil.server.storage import ServerError, Storage, current_revision, server_url, upgrade

    root = _home(ctx, home)
    if db_url:
        url = sqlalchemy_url(db_url)
        probe = Storage(url)
        try:
            made = current_revision(probe.engine) is not None
        finally:
            probe.close()
        if made:
            raise ServerError(f"the database at {db_url} already holds a Vigil server")
        record_database_url(root, url)
    storage = Storage(server_url(root))
    try:
        upgrade(storage.engine)
        with storage.session() as s:
            if s.query(User).count():
                raise ServerError(f"the server in {root} is initialised already")
            password = add_user(s, FIRST_ADMIN, Role.ADMIN)
    finally:
        storage.close()
    # The hash sets agents are given: the engine's catalog under the same home (same database).
    catalog = Catalog.open(root)
    keys = root / KEYS_DIR
    keys.mkdir(mode=0o700, exist_ok=True)
    os.chmod(keys, 0o700)
    try:
        _init_repository(root, catalog)
    finally:
        catalog.close()
    click.echo(
        f"server initialised in {root}; the first admin is {FIRST_ADMIN!r}, its password (shown once):",
        err=True,
    )
    click.echo(password)


@server.command()
@home_option
@click.option("--listen", default=DEFAULT_LISTEN, show_default=True, metavar="HOST:PORT")
@click.option(
    "--tls-cert",
    type=click.Path(exists=True, dir_okay=False),
    help="Serve HTTPS with this certificate (PEM).",
)
@click.option(
    "--tls-key",
    type=click.Path(exists=True, dir_okay=False),
    help="The certificate's private key (PEM).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Server processes sharing the port (one of them runs the background work).",
)
@click.option(
    "--access-log/--no-access-log",
    default=False,
    show_default=True,
    help="Log a line per request (off: at hundreds of heartbeats a second it costs more CPU "
    "than the heartbeat; /metrics counts and times requests by route).",
)
@click.pass_context
def run(
    ctx: click.Context,
    home: str | None,
    listen: str,
    tls_cert: str | None,
    tls_key: str | None,
    workers: int,
    access_log: bool,
) -> None:
    """Serve the API until stopped."""
    import tempfile

    import uvicorn

    from vigil.server.api.app import create_app
    from vigil.server.api.metrics import MULTIPROCESS_ENV

    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise click.BadParameter(f"expected HOST:PORT, got {listen!r}", param_hint="--listen")
    if bool(tls_cert) != bool(tls_key):
        raise click.UsageError("--tls-cert and --tls-key go together")
    root = _home(ctx, home)
    options: dict[str, object] = {
        "host": host.strip("[]") or "127.0.0.1",
        "port": int(port),
        "ssl_certfile": tls_cert,
        "ssl_keyfile": tls_key,
        "log_level": "info",
        "access_log": access_log,
    }
    if workers == 1:
        uvicorn.run(create_app(root), **options)  # type: ignore[arg-type]
        return
    from vigil.server import settings
    from vigil.server.storage import Storage

    # Checked here, once, so a mistake stops the start with one clear message (each process
    # reads them again when it starts).
    settings.read(root)
    Storage.open(root).close()
    # The processes are started afresh (spawned) and find the home and the metrics' directory
    # in their environment; the directory must be new for each run (prometheus_client).
    with tempfile.TemporaryDirectory(prefix="vigil-metrics-") as metrics_dir:
        os.environ["VIGIL_HOME"] = str(root)
        os.environ[MULTIPROCESS_ENV] = metrics_dir
        uvicorn.run(
            "vigil.server.api.app:from_environment",
            factory=True,
            workers=workers,
            **options,  # type: ignore[arg-type]
        )


@server.command(name="upgrade")
@home_option
@click.pass_context
def upgrade_command(ctx: click.Context, home: str | None) -> None:
    """Bring the server's database to this Vigil's revision (after installing a newer Vigil).

    Stop every `vigil server run` of the home first, and back the database up: there is no
    way back but the backup.
    """
    from vigil.server.storage import (
        ServerError,
        Storage,
        current_revision,
        head_revision,
        server_url,
        upgrade,
    )

    root = _home(ctx, home)
    storage = Storage(server_url(root))
    try:
        found = current_revision(storage.engine)
        head = head_revision()
        if found is None:
            raise ServerError(f"no server in {root}: run `vigil server init` first")
        if found == head:
            click.echo(f"the server's database is at revision {head} already", err=True)
            return
        upgrade(storage.engine)
        click.echo(f"the server's database upgraded from revision {found} to {head}", err=True)
    finally:
        storage.close()


@server.command()
@home_option
@click.pass_context
def token(ctx: click.Context, home: str | None) -> None:
    """Print a new single-use enrolment token (valid for 24 hours)."""
    from vigil.server.accounts import new_enrolment_token
    from vigil.server.storage import Storage

    storage = Storage.open(_home(ctx, home))
    try:
        with storage.session() as s:
            secret = new_enrolment_token(s)
    finally:
        storage.close()
    click.echo(secret)


@server.command()
@home_option
@click.option(
    "--user", "user_name", required=True, metavar="NAME", help="The user the key acts for."
)
@click.pass_context
def apikey(ctx: click.Context, home: str | None, user_name: str) -> None:
    """Print a new API key acting as a user (sent as `Authorization: Bearer KEY`)."""
    from vigil.server.accounts import new_api_key
    from vigil.server.storage import Storage

    storage = Storage.open(_home(ctx, home))
    try:
        with storage.session() as s:
            secret = new_api_key(s, user_name)
    finally:
        storage.close()
    click.echo(secret)


@server.group()
def user() -> None:
    """Staff accounts."""


@user.command("add")
@home_option
@click.argument("name")
@click.option("--role", type=click.Choice(["admin", "reviewer", "auditor"]), required=True)
@click.pass_context
def user_add(ctx: click.Context, home: str | None, name: str, role: str) -> None:
    """Add a user; prints its generated password once."""
    from vigil.server.accounts import Role, add_user
    from vigil.server.storage import Storage

    storage = Storage.open(_home(ctx, home))
    try:
        with storage.session() as s:
            password = add_user(s, name, Role(role))
    finally:
        storage.close()
    click.echo(f"user {name!r} ({role}) added; its password (shown once):", err=True)
    click.echo(password)


def _init_repository(root: Path, catalog: object) -> None:
    """The signed catalog: Ed25519 keys under HOME/keys, root metadata and a first published
    version under HOME/tuf (see vigil.server.publish)."""
    from vigil.catalog.store import Catalog
    from vigil.server.publish import Repository, catalog_settings

    assert isinstance(catalog, Catalog)
    repository = Repository(root, catalog_settings(root))
    if not repository.exists():
        repository.create()
    version = repository.publish(catalog, force=not repository.published_version())
    click.echo(
        f"signed catalog: keys in {root / KEYS_DIR} (keys/root.pem can be moved offline), "
        f"version {version or repository.published_version()} published",
        err=True,
    )


@server.command("sign-root")
@home_option
@click.option(
    "--root-key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The root key (default: HOME/keys/root.pem; give its offline copy's path if moved).",
)
@click.option(
    "--rotate",
    "roles",
    multiple=True,
    type=click.Choice(["root", "targets", "snapshot", "timestamp"]),
    help="Give this role a new key (repeatable). A new root key replaces the --root-key file.",
)
@click.pass_context
def sign_root(
    ctx: click.Context, home: str | None, root_key: Path | None, roles: tuple[str, ...]
) -> None:
    """Sign a new root version of the signed catalog: renews its expiry (a year), and rotates
    keys with --rotate. Run it with the server stopped (the server holds the publisher's lock)."""
    from vigil.server.publish import Repository, catalog_settings

    root = _home(ctx, home)
    repository = Repository(root, catalog_settings(root))
    version = repository.sign_root(root_key or root / KEYS_DIR / "root.pem", roles)
    click.echo(
        f"root metadata version {version} signed; agents take it at their next update", err=True
    )
