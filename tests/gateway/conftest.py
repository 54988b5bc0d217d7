"""Real `vigil gateway run` processes on loopback ports, in homes whose local catalog holds the
demo list of benign photos (tests/support/planted.py)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.gateway import GatewayProcess, start_gateway
from support.planted import Tree, build
from support.server import Server, listed_server, postgres_schema, run_cli


@pytest.fixture(scope="session")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Tree:
    """Benign photos: the known ones' hash list, exact and altered copies, unrelated photos."""
    return build(tmp_path_factory.mktemp("planted"))


@pytest.fixture(scope="session")
def catalog_home(tmp_path_factory: pytest.TempPathFactory, planted: Tree) -> Path:
    """A home whose catalog holds the demo list (imported once, copied for each gateway)."""
    home = tmp_path_factory.mktemp("gateway-catalog")
    done = run_cli("--home", str(home), "hashset", "import", str(planted.hashlist))
    assert done.returncode == 0, done.stderr
    return home


StartGateway = Callable[..., GatewayProcess]


@pytest.fixture
def gateway(tmp_path: Path, catalog_home: Path) -> Iterator[StartGateway]:
    """Start gateways (each in its own copy of the catalog home); all stopped at the end, and
    each must have exited cleanly (status 0 on SIGTERM)."""
    started: list[GatewayProcess] = []

    def start(*options: str, metrics: bool = False, home: Path | None = None) -> GatewayProcess:
        if home is None:
            home = tmp_path / f"gw{len(started)}"
            shutil.copytree(catalog_home, home)
        g = start_gateway(home, *options, metrics=metrics)
        started.append(g)
        return g

    yield start
    for g in started:
        alive = g.alive()
        status = g.stop()
        assert alive, f"the gateway died during the test: {g.log_text()[-3000:]}"
        assert status == 0, f"the gateway exited with {status}: {g.log_text()[-3000:]}"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, planted: Tree
) -> Iterator[Server]:
    """`vigil server init` and `run` for enrolled gateways (a PostgreSQL schema of the module's
    own), with the demo list in its catalog, published."""
    home = tmp_path_factory.mktemp("gw-server")
    if request.param == "sqlite":
        with listed_server(home, "", planted.hashlist) as server:
            yield server
        return
    module = request.module.__name__.rsplit(".", 1)[-1]
    with (
        postgres_schema(f"vigil_{module}") as db,
        listed_server(home, db, planted.hashlist) as server,
    ):
        yield server
