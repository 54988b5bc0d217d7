"""`vigil server init/token/apikey/user add`: what they print, what they write."""

from __future__ import annotations

import re
import ssl
import stat
import subprocess
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, inspect
from support.server import Server, run_cli, serve, unique

from vigil.config import DATABASE_URL_FILE, database_url, sqlalchemy_url
from vigil.server.credentials import verify_password
from vigil.server.models import User
from vigil.server.storage import VERSION_TABLE

# Real processes over loopback: run in the suite's process-parallel group (scripts/test).
pytestmark = pytest.mark.e2e

SECRET = r"[A-Za-z0-9_-]{43}"


def test_init_prints_the_admins_password_once(server: Server) -> None:
    assert re.fullmatch(r"[A-Za-z0-9_-]{16,}", server.admin_password)
    assert server.init.stdout.count("\n") == 1
    storage = server.storage()
    try:
        with storage.session() as s:
            admin = s.query(User).filter_by(name="admin").one()
            assert admin.role == "admin"
            assert admin.password_hash.startswith("$argon2")
            assert verify_password(server.admin_password, admin.password_hash)
    finally:
        storage.close()
    assert (server.home / "keys").is_dir()
    # server.toml is the operator's: never written.
    assert not (server.home / "server.toml").exists()


def test_init_twice_is_refused(server: Server) -> None:
    args = ["server", "init", "--home", str(server.home)]
    if server.db:
        args += ["--db", server.db]
    again = run_cli(*args)
    assert again.returncode == 2
    assert "already" in again.stderr
    assert again.stdout == ""


def test_the_database_is_recorded_in_the_homes_state(server: Server) -> None:
    recorded = server.home / DATABASE_URL_FILE
    if not server.db:
        assert not recorded.exists()
        assert (server.home / "server.sqlite").is_file()
        return
    assert stat.S_IMODE(recorded.stat().st_mode) == 0o600
    assert database_url(server.home) == sqlalchemy_url(server.db)
    assert database_url(server.home).startswith("postgresql+psycopg://")  # type: ignore[union-attr]
    engine = create_engine(sqlalchemy_url(server.db))
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    # The server's tables, its own version table, and the catalog's tables, in one database.
    assert {"users", "agents", "incidents", "audit_log", VERSION_TABLE, "hashsets"} <= tables


def test_hash_sets_imported_into_the_home_land_in_the_servers_catalog(
    server: Server, tmp_path: Path
) -> None:
    listing = tmp_path / "list.md5"
    listing.write_text("0123456789abcdef0123456789abcdef  a.jpg\n")
    name = unique("set")
    done = run_cli("--home", str(server.home), "hashset", "import", str(listing), "--name", name)
    assert done.returncode == 0, done.stderr
    listed = run_cli("hashset", "list", "--json", home=server.home)
    assert listed.returncode == 0, listed.stderr
    assert name in listed.stdout
    from vigil.catalog.store import Catalog

    catalog = Catalog.open(server.home)
    try:
        assert name in {s.name for s in catalog.sets()}
        if server.db:
            assert catalog.engine.dialect.name == "postgresql"
    finally:
        catalog.close()


def test_token_and_apikey_print_only_the_secret(server: Server) -> None:
    token = run_cli("server", "token", "--home", str(server.home))
    assert token.returncode == 0, token.stderr
    assert re.fullmatch(rf"vt_{SECRET}\n", token.stdout)
    key = run_cli("server", "apikey", "--user", "admin", home=server.home)  # from $VIGIL_HOME
    assert key.returncode == 0, key.stderr
    assert re.fullmatch(rf"vk_{SECRET}\n", key.stdout)


def test_user_add_prints_a_password_and_refuses_a_taken_name(server: Server) -> None:
    name = unique("reviewer")
    added = run_cli("--home", str(server.home), "server", "user", "add", name, "--role", "reviewer")
    assert added.returncode == 0, added.stderr
    assert re.fullmatch(r"[A-Za-z0-9_-]{16,}\n", added.stdout)
    again = run_cli("server", "user", "add", name, "--role", "auditor", home=server.home)
    assert again.returncode == 2
    assert "exists" in again.stderr


def test_apikey_for_an_unknown_user_is_refused(server: Server) -> None:
    done = run_cli("server", "apikey", "--user", unique("nobody"), home=server.home)
    assert done.returncode == 2
    assert done.stdout == ""


def test_commands_on_an_uninitialised_home_are_refused(tmp_path: Path) -> None:
    done = run_cli("server", "token", "--home", str(tmp_path))
    assert done.returncode == 2
    assert "vigil server init" in done.stderr


def test_plain_postgresql_urls_mean_psycopg_3() -> None:
    assert sqlalchemy_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert sqlalchemy_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    assert sqlalchemy_url("sqlite:///x.sqlite") == "sqlite:///x.sqlite"


def test_run_serves_https_with_a_certificate(tmp_path: Path) -> None:
    home = tmp_path / "home"
    init = run_cli("server", "init", "--home", str(home))
    assert init.returncode == 0, init.stderr
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        capture_output=True, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    trust = ssl.create_default_context(cafile=str(cert))
    with serve(home, "--tls-cert", str(cert), "--tls-key", str(key), verify=trust) as url:
        assert url.startswith("https://")
        r = httpx.get(f"{url}/readyz", verify=trust)
        assert r.json()["database"] == "ok"


def test_run_refuses_a_bad_listen_address(tmp_path: Path) -> None:
    done = run_cli("server", "run", "--home", str(tmp_path), "--listen", "8765")
    assert done.returncode == 2
    assert "HOST:PORT" in done.stderr
