"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from vigil.catalog import revision, schema
from vigil.catalog.store import Catalog

# Test-data builders (tests/support) are imported as `support.*` from any test folder.
sys.path.insert(0, str(Path(__file__).resolve().parent))

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
POSTGRES_URL = os.environ.get(
    "VIGIL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared beside the repository (conformance vectors, hash-list examples)."""
    if not SHARED.is_dir():
        pytest.fail(f"{SHARED} is missing: the suite needs ../shared beside the repository")
    return SHARED


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A schema of its own on the PostgreSQL server, dropped at the end of the session.

    Several checkouts may run their suites against the same `test` database at once; each
    session works in its own schema (search_path), so their tables never meet.
    """
    schema_name = f"vigil_test_{os.getpid()}"
    admin = create_engine(POSTGRES_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema_name} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {schema_name}"))
    except Exception as e:  # noqa: BLE001
        pytest.fail(
            f"PostgreSQL at {POSTGRES_URL} is not reachable ({e}); the catalog must pass the same "
            "tests on PostgreSQL. Set VIGIL_TEST_POSTGRES_URL to another server."
        )
    sep = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema_name}"
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema_name} CASCADE"))
    admin.dispose()


def _reset_postgres(url: str) -> None:
    engine = create_engine(url)
    try:
        schema.metadata.drop_all(engine)
        with engine.begin() as conn:  # and Alembic's record of them
            conn.execute(text(f"DROP TABLE IF EXISTS {revision.VERSION_TABLE}"))
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Catalog]:
    """An empty catalog on SQLite (the default) and on PostgreSQL (the same tests must pass)."""
    if request.param == "sqlite":
        cat = Catalog(f"sqlite:///{tmp_path / 'catalog.sqlite'}")
    else:
        url = request.getfixturevalue("postgres_url")
        _reset_postgres(url)
        cat = Catalog(url)
    yield cat
    cat.close()


@pytest.fixture
def vigil_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh $VIGIL_HOME."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("VIGIL_HOME", str(home))
    return home
