"""Signing keys of the catalog: a new root signed with the offline root key, every key rotated,
and agents enrolled before the rotation follow it at their next update (the repository is files
under the home, whatever the database: SQLite here)."""

from __future__ import annotations

import json
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from support.server import run_cli, serve, unique

from vigil.server.publish import PublishError, Repository
from vigil.updates.client import CatalogUpdater, UpdateRejected, save_root

# Real processes over loopback: run in the suite's process-parallel group (scripts/test).
pytestmark = pytest.mark.e2e

FORMATS = Path(__file__).resolve().parents[2].parent / "shared" / "formats"


def _enroll(url: str, home: Path, agent_home: Path) -> CatalogUpdater:
    token = run_cli("server", "token", home=home).stdout.strip()
    body = httpx.post(f"{url}/api/v1/enroll", json={"token": token, "host": unique("h")}).json()
    save_root(agent_home, body["root"])
    return CatalogUpdater(agent_home, url, body["credential"])


def test_rotating_every_key_with_the_offline_root_key(tmp_path: Path) -> None:
    home = tmp_path / "server"
    assert run_cli("server", "init", "--home", str(home)).returncode == 0
    offline = tmp_path / "usb" / "root.pem"
    offline.parent.mkdir()
    shutil.move(home / "keys" / "root.pem", offline)
    with serve(home) as url:
        updater = _enroll(url, home, tmp_path / "agent")
        first = updater.update().version
        # The server holds the publisher's lock: no signing beside it.
        with pytest.raises(PublishError, match="another process"):
            Repository(home).sign_root(offline)
    missing = run_cli("server", "sign-root", "--home", str(home))
    assert missing.returncode != 0 and "root.pem is missing" in missing.stderr
    old_keys = {r: (home / "keys" / f"{r}.pem").read_bytes() for r in ("targets", "timestamp")}
    old_root = offline.read_bytes()
    args = ["server", "sign-root", "--home", str(home), "--root-key", str(offline)]
    for role in ("root", "targets", "snapshot", "timestamp"):
        args += ["--rotate", role]
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr
    assert offline.read_bytes() != old_root
    assert all((home / "keys" / f"{r}.pem").read_bytes() != k for r, k in old_keys.items())
    root = json.loads((home / "tuf" / "metadata" / "root.json").read_text())
    assert root["signed"]["version"] == 2 and len(root["signatures"]) == 2
    with serve(home) as url:
        imported = run_cli("--home", str(home), "hashset", "import", str(FORMATS / "example.hsh"))
        assert imported.returncode == 0, imported.stderr
        # The agent enrolled under root 1 follows the chain to root 2 and the new keys.
        updater = CatalogUpdater(tmp_path / "agent", url, updater.credential)
        for _ in range(300):
            result = updater.update()
            if result.version > first:
                break
            time.sleep(0.3)
        assert result.version > first
        trusted = json.loads((tmp_path / "agent" / "tuf" / "metadata" / "root.json").read_text())
        assert trusted["signed"]["version"] == 2
    # A repository signed with an old key only is refused: the timestamp key put back.
    (home / "keys" / "timestamp.pem").write_bytes(old_keys["timestamp"])
    repo = Repository(home)
    snapshot = json.loads((home / "tuf" / "metadata" / "timestamp.json").read_text())
    repo._write_timestamp(snapshot["signed"]["meta"]["snapshot.json"]["version"], datetime.now(UTC))
    with serve(home) as url:
        agent = CatalogUpdater(tmp_path / "agent", url, updater.credential)
        with pytest.raises(UpdateRejected):
            agent.update()
