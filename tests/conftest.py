"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from vigil.catalog import schema
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


def _reset_postgres(url: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("SELECT 1"))
        schema.metadata.drop_all(engine)
    except Exception as e:  # noqa: BLE001
        pytest.fail(
            f"PostgreSQL at {url} is not reachable ({e}); the catalog must pass the same tests "
            "on PostgreSQL. Set VIGIL_TEST_POSTGRES_URL to another server."
        )
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Catalog]:
    """An empty catalog on SQLite (the default) and on PostgreSQL (the same tests must pass)."""
    if request.param == "sqlite":
        cat = Catalog(f"sqlite:///{tmp_path / 'catalog.sqlite'}")
    else:
        _reset_postgres(POSTGRES_URL)
        cat = Catalog(POSTGRES_URL)
    yield cat
    cat.close()


@pytest.fixture
def vigil_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh $VIGIL_HOME."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("VIGIL_HOME", str(home))
    return home
