"""Signed catalog updates end to end: a real `vigil server run`, agents that enrol and update
their catalog with CatalogUpdater, a list imported by another process reaching them as a delta,
and tampered, rolled-back and expired metadata each refused with the local catalog unchanged."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from support.server import Server, run_cli, serve, unique

from vigil.catalog.store import Catalog
from vigil.server.enrolment import revoke
from vigil.server.publish import CatalogSettings, Repository
from vigil.updates import bundle as B
from vigil.updates.client import CatalogUpdater, UpdateRejected, UpdateUnavailable, save_root

# Real processes over loopback: run in the suite's process-parallel group (scripts/test).
pytestmark = pytest.mark.e2e

POSTGRES_URL = os.environ.get(
    "VIGIL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
# How long a catalog change may take to be published (the publisher looks every 2 s; 2 shared
# cores): a bound on waiting, not a performance threshold.
PUBLISH_SECONDS = 90
FORMATS = Path(__file__).resolve().parents[2].parent / "shared" / "formats"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def tuf_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server of this module's own (its repository files get tampered with)."""
    home = tmp_path_factory.mktemp("tuf-server")
    init_args = ["server", "init", "--home", str(home)]
    db = ""
    admin = None
    schema = f"vigil_tuf_test_{os.getpid()}"
    if request.param == "postgresql":
        admin = create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1))
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        db = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
        init_args += ["--db", db]
    init = run_cli(*init_args)
    assert init.returncode == 0, init.stderr
    assert "version 1 published" in init.stderr
    try:
        with serve(home) as url:
            yield Server(home, url, db, init.stdout.strip(), init)
    finally:
        if admin is not None:
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            admin.dispose()


def enroll(server: Server, home: Path) -> tuple[str, str]:
    """Enrol an agent whose home is `home`: its id and credential; root.json saved."""
    token = server.secret("token")
    r = httpx.post(f"{server.url}/api/v1/enroll", json={"token": token, "host": unique("h")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["root"]["signed"]["_type"] == "root"
    home.mkdir(parents=True, exist_ok=True)
    save_root(home, body["root"])
    return body["agent_id"], body["credential"]


def agent(server: Server, tmp_path: Path, name: str = "agent") -> CatalogUpdater:
    home = tmp_path / name
    _, credential = enroll(server, home)
    return CatalogUpdater(home, server.url, credential)


def published(server: Server) -> int:
    r = httpx.get(f"{server.url}/readyz", timeout=30)
    assert r.status_code == 200, r.text
    return int(r.json()["catalog_version"])


def wait_for_version(server: Server, above: int) -> int:
    deadline = time.monotonic() + PUBLISH_SECONDS
    while time.monotonic() < deadline:
        version = published(server)
        if version > above:
            return version
        time.sleep(0.5)
    raise AssertionError(
        f"no catalog version above {above} published: {(server.home / 'server.log').read_text()[-3000:]}"
    )


def import_list(server: Server, path: Path, name: str | None = None) -> int:
    """`vigil --home DIR hashset import FILE` in a process of its own; the version published."""
    before = published(server)
    args = ["--home", str(server.home), "hashset", "import", str(path)]
    if name:
        args += ["--name", name]
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr
    return wait_for_version(server, before)


def contents(home: Path) -> dict[str, tuple[dict[str, object], list[bytes]]]:
    catalog = Catalog.open(home)
    try:
        with catalog.snapshot() as snap:
            return {n: (c.info, sorted(c.entries)) for n, c in B.read_catalog(snap.conn).items()}
    finally:
        catalog.close()


def repository(server: Server) -> Repository:
    return Repository(server.home)


def test_agent_downloads_verifies_and_holds_the_servers_catalog(
    tuf_server: Server, tmp_path: Path
) -> None:
    version = import_list(tuf_server, FORMATS / "vics-2.0-cases.json", unique("vics"))
    updater = agent(tuf_server, tmp_path)
    assert updater.version() is None
    result = updater.update()
    assert result.changed and result.version >= version
    assert updater.version() == result.version
    assert contents(updater.home) == contents(tuf_server.home)
    again = updater.update()
    assert not again.changed and again.version == result.version


def test_a_list_imported_by_another_process_reaches_the_agent_as_a_delta(
    tuf_server: Server, tmp_path: Path
) -> None:
    # The catalog holds a list of its own first, whichever tests ran before on this server (the
    # worker that runs this one may have run none), so the whole is more than the delta.
    import_list(tuf_server, FORMATS / "vics-2.0-cases.json", unique("vics"))
    updater = agent(tuf_server, tmp_path)
    first = updater.update()
    version = import_list(tuf_server, FORMATS / "example.md5sum.txt", unique("md5"))
    catalog = Catalog.open(tuf_server.home)
    try:
        with catalog.snapshot() as snap:
            full = len(B.full_bundle(version, B.read_catalog(snap.conn)))
    finally:
        catalog.close()
    assert version == first.version + 1
    updater.downloads.clear()
    result = updater.update()
    assert result.changed and result.version == version
    assert contents(updater.home) == contents(tuf_server.home)
    # The delta only: metadata plus a bundle smaller than the whole catalog.
    delta = (
        repository(tuf_server)
        ._read("targets")
        .signed.targets[f"catalog-delta-{version - 1}-{version}.bundle"]
    )
    assert delta.length < full
    targets = [url.rsplit("/", 1)[1] for url, _ in updater.downloads if "/tuf/targets/" in url]
    assert targets == [f"{delta.hashes['sha256']}.catalog-delta-{version - 1}-{version}.bundle"]


def test_an_agent_two_versions_behind_takes_the_smaller_of_chain_and_whole(
    tuf_server: Server, tmp_path: Path
) -> None:
    updater = agent(tuf_server, tmp_path)
    start = updater.update().version
    import_list(tuf_server, FORMATS / "ncmec-entries-example.xml", unique("ncmec"))
    version = import_list(tuf_server, FORMATS / "vics-1.3-media.json", unique("vics13"))
    assert version == start + 2
    updater.downloads.clear()
    assert updater.update().version == version
    assert contents(updater.home) == contents(tuf_server.home)
    targets = repository(tuf_server)._read("targets").signed.targets
    chain = [targets[f"catalog-delta-{v}-{v + 1}.bundle"] for v in range(start, version)]
    # The whole bundle may hold an older version (it is made in the background): it comes
    # with the deltas from its version on.
    whole = targets["catalog.bundle"]
    assert whole.custom["latest"] == version
    from_whole = [whole] + [
        targets[f"catalog-delta-{v}-{v + 1}.bundle"]
        for v in range(whole.custom["version"], version)
    ]
    expected = min([chain, from_whole], key=lambda p: sum(t.length for t in p))
    got = [url.rsplit("/", 1)[1] for url, _ in updater.downloads if "/tuf/targets/" in url]
    assert got == [f"{t.hashes['sha256']}.{t.path}" for t in expected]


def test_a_tampered_target_is_rejected(tuf_server: Server, tmp_path: Path) -> None:
    repo = repository(tuf_server)
    info = repo._read("targets").signed.targets["catalog.bundle"]
    path = repo.targets / f"{info.hashes['sha256']}.catalog.bundle"
    original = path.read_bytes()
    tampered = bytearray(original)
    tampered[-5] ^= 0x01
    path.write_bytes(bytes(tampered))
    try:
        updater = agent(tuf_server, tmp_path)
        with pytest.raises(UpdateRejected, match="verification"):
            updater.update()
        assert updater.version() is None and contents(updater.home) == {}
    finally:
        path.write_bytes(original)
    assert updater.update().changed  # the genuine file is taken


def test_rolled_back_metadata_is_rejected(tuf_server: Server, tmp_path: Path) -> None:
    meta = repository(tuf_server).metadata
    old_timestamp = (meta / "timestamp.json").read_bytes()
    version = import_list(tuf_server, FORMATS / "example.pdq.txt", unique("pdq"))
    updater = agent(tuf_server, tmp_path)
    assert updater.update().version == version
    held = contents(updater.home)
    new_timestamp = (meta / "timestamp.json").read_bytes()
    (meta / "timestamp.json").write_bytes(old_timestamp)  # validly signed, but older
    try:
        with pytest.raises(UpdateRejected, match="rolled back"):
            updater.update()
    finally:
        (meta / "timestamp.json").write_bytes(new_timestamp)
    assert updater.version() == version and contents(updater.home) == held


def test_expired_timestamp_is_rejected(tuf_server: Server, tmp_path: Path) -> None:
    updater = agent(tuf_server, tmp_path)
    version = updater.update().version
    held = contents(updater.home)
    # The server stopped re-signing (a frozen feed): its last timestamp has expired. Signed
    # with the real timestamp key, so only the expiry is wrong.
    meta = repository(tuf_server).metadata
    saved = (meta / "timestamp.json").read_bytes()
    snapshot_version = json.loads(saved)["signed"]["meta"]["snapshot.json"]["version"]
    frozen = Repository(tuf_server.home, CatalogSettings(timestamp_expiry=timedelta(hours=-1)))
    # Written beside the running server (which holds the publisher's lock).
    frozen._write_timestamp(snapshot_version, datetime.now(UTC))
    assert (
        json.loads((meta / "timestamp.json").read_bytes())["signed"]["expires"]
        < json.loads(saved)["signed"]["expires"]
    )
    try:
        with pytest.raises(UpdateRejected, match="expired"):
            updater.update()
    finally:
        Repository(tuf_server.home)._write_timestamp(snapshot_version, datetime.now(UTC))
    assert updater.version() == version and contents(updater.home) == held


def test_tuf_files_need_a_live_agent_credential(tuf_server: Server, tmp_path: Path) -> None:
    agent_id, credential = enroll(tuf_server, tmp_path / "a")
    headers = {"Authorization": f"Bearer {credential}"}
    with httpx.Client(base_url=tuf_server.url, timeout=30) as c:
        assert c.get("/tuf/metadata/timestamp.json", headers=headers).status_code == 200
        assert c.get("/tuf/metadata/timestamp.json").status_code == 401
        assert (
            c.get(
                "/tuf/metadata/timestamp.json", headers={"Authorization": "Bearer va_nope"}
            ).status_code
            == 401
        )
        for bad in ("..%2Fstate.json", "%2E%2E", "../../keys/root.pem", "..", ".publish.lock"):
            assert c.get(f"/tuf/metadata/{bad}", headers=headers).status_code == 404, bad
            assert c.get(f"/tuf/targets/{bad}", headers=headers).status_code == 404, bad
        storage = tuf_server.storage()
        try:
            with storage.session() as s:
                assert revoke(s, agent_id, "test")
        finally:
            storage.close()
        assert c.get("/tuf/metadata/timestamp.json", headers=headers).status_code == 401
    # Refused by the server: the update is unavailable (nothing rejected, the agent asks again).
    with pytest.raises(UpdateUnavailable, match="401"):
        CatalogUpdater(tmp_path / "a", tuf_server.url, credential).update()


def test_keys_are_private_and_the_root_key_can_go_offline(
    tuf_server: Server, tmp_path: Path
) -> None:
    keys = tuf_server.home / "keys"
    assert oct(keys.stat().st_mode & 0o777) == "0o700"
    for role in ("root", "targets", "snapshot", "timestamp"):
        assert oct((keys / f"{role}.pem").stat().st_mode & 0o777) == "0o600"
    offline = tmp_path / "offline-root.pem"
    shutil.move(keys / "root.pem", offline)
    try:
        version = import_list(tuf_server, FORMATS / "example.sha1sum.txt", unique("sha1"))
        updater = agent(tuf_server, tmp_path)
        assert updater.update().version == version
    finally:
        shutil.move(offline, keys / "root.pem")
