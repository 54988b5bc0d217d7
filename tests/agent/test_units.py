"""The agent's parts that need no server: agent.toml, the spool, backoff, exclusions."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from vigil.agent import config
from vigil.agent.config import ConfigError, exclusion, parse, parse_duration
from vigil.endpoint import enrolment
from vigil.endpoint.delivery import BACKOFF_MAX, backoff
from vigil.endpoint.spool import Spool


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        ("2s", 2.0),
        ("60s", 60.0),
        ("15m", 900.0),
        ("24h", 86400.0),
        ("1d", 86400.0),
        ("500ms", 0.5),
        (30, 30.0),
        ("1.5h", 5400.0),
    ],
)
def test_durations(raw: object, seconds: float) -> None:
    assert parse_duration(raw) == seconds


@pytest.mark.parametrize("raw", ["", "soon", "-1s", "0s", "5 years", True, [1]])
def test_bad_durations_are_clear_errors(raw: object) -> None:
    with pytest.raises(ConfigError, match="duration"):
        parse_duration(raw, "heartbeat")


def test_agent_toml(tmp_path: Path) -> None:
    (tmp_path / "agent.toml").write_text(
        'watch = ["/srv/a", "~/b"]\nexclude = ["*.part", "/srv/a/tmp"]\nheartbeat = "5s"\n'
        'catalog_poll = "2m"\ncpu_share = 0.5\nscanner_idle = "10m"\n'
        '[schedule]\nroots = ["/srv"]\nevery = "12h"\n'
    )
    cfg = config.load(tmp_path)
    assert cfg.watch == ["/srv/a", os.path.expanduser("~/b")]
    assert cfg.heartbeat == 5 and cfg.catalog_poll == 120 and cfg.cpu_share == 0.5
    assert cfg.schedule_roots == ["/srv"] and cfg.schedule_every == 43200
    assert cfg.scanner_idle == 600
    assert config.watched_roots(cfg, ["/x"]) == ["/x"]
    assert config.watched_roots(cfg, []) == cfg.watch


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("watch = '/home'", "watch: expected a list"),
        ("wacth = ['/home']", "unknown key 'wacth'"),
        ("cpu_share = 2", "cpu_share"),
        ("heartbeat = 'often'", "heartbeat: not a duration"),
        ("scanner_idle = 0", "scanner_idle: a duration must be positive"),
        ("[schedule]\nevery = 'daily'", "schedule.every"),
        ("[schedule]\nroot = ['/']", "schedule: unknown key 'root'"),
        ("watch = [", "not valid TOML"),
    ],
)
def test_bad_agent_toml(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "agent.toml").write_text(text)
    with pytest.raises(ConfigError, match=message) as e:
        config.load(tmp_path)
    assert "agent.toml" in str(e.value)


def test_no_agent_toml_is_the_defaults(tmp_path: Path) -> None:
    assert config.load(tmp_path) == config.AgentConfig()
    assert parse({}) == config.AgentConfig()


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    assert backoff(1, lambda: 0.5) == 1.0
    assert backoff(4, lambda: 0.5) == 8.0
    assert backoff(3, lambda: 0.0) == 2.0 and backoff(3, lambda: 0.999) < 6.0
    assert backoff(100, lambda: 0.5) == BACKOFF_MAX


def test_spool_keeps_until_acknowledged(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    reports = [{"id": f"r-{i}", "path": f"/p/{i}"} for i in range(5)]
    assert spool.add(reports) == 5
    assert spool.add(reports[:2]) == 0  # the same finding again: one row
    assert len(spool) == 5
    # Another connection (another process) sees what was committed.
    other = Spool(tmp_path)
    assert [r["id"] for r in other.batch(3)] == ["r-0", "r-1", "r-2"]
    other.acknowledged(["r-0", "r-1", "r-2"])
    assert len(spool) == 2 and spool.last_delivery() is not None
    assert spool.add(reports[:1]) == 0  # delivered already: not spooled again
    spool.reject(reports[3], "422: bad")
    assert len(spool) == 1 and spool.rejected_count() == 1
    spool.close()
    other.close()
    assert stat.S_IMODE((tmp_path / "agent").stat().st_mode) == 0o700


def test_a_file_version_is_seen_once(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    first = spool.seen_at("/p/a.jpg", 7, 1000, 50.0)
    assert first == 50.0
    assert Spool(tmp_path).seen_at("/p/a.jpg", 7, 1000, 99.0) == 50.0  # after a restart too
    assert spool.seen_at("/p/a.jpg", 7, 2000, 99.0) == 99.0  # rewritten: a new sighting


def test_enrolment_is_owner_only(tmp_path: Path) -> None:
    with pytest.raises(enrolment.NotEnrolled, match="vigil agent enroll"):
        enrolment.load(tmp_path)
    path = enrolment.save(tmp_path, enrolment.Enrolment("http://s", "a1", "secret", "h"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert enrolment.load(tmp_path).credential == "secret"


def test_exclusion() -> None:
    excluded = exclusion(["/srv/tmp", "*.part", "cache-*"], always=["/var/lib/vigil"])
    assert excluded("/srv/tmp") and excluded("/srv/tmp/x.jpg")
    assert not excluded("/srv/tmpfoo/x.jpg")
    assert excluded("/home/a/x.jpg.part") and excluded("/home/a/cache-1")
    assert excluded("/var/lib/vigil/agent/spool.sqlite")
    assert not excluded("/home/a/x.jpg")
