"""`agent.toml`: the operator's file (read, never written), with the contract's keys and defaults."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vigil.agent.watch import BACKENDS
from vigil.endpoint.settings import (
    CONFIG_FILE,
    ConfigError,
    Intervals,
    parse_duration,
    read_toml,
)

# Where files land on a workstation when the operator names no folder: users' homes (downloads,
# browser caches and mail attachments live under them) and mounted removable media.
DEFAULT_WATCH = ("/home", "/root", "/media", "/run/media", "/mnt")


@dataclass
class AgentConfig:
    """What the daemon does: folders watched and excluded, intervals, the scheduled scan."""

    watch: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    # The intervals every enrolled endpoint shares, with their defaults (vigil.endpoint.settings).
    heartbeat: float = Intervals.heartbeat
    catalog_poll: float = Intervals.catalog_poll
    stale_after: float = Intervals.stale_after
    schedule_roots: list[str] = field(default_factory=list)
    schedule_every: float = 86400.0
    cpu_share: float = 0.25
    # The scanner process (the engine, its decoders and workers) ends after this long without
    # work, and starts again for the next file (~1-2 s): a quiet machine holds only the daemon.
    scanner_idle: float = 300.0
    # How folders are watched: "auto" (inotify on Linux, watchdog's native observer elsewhere),
    # "inotify", "watchdog" (its native observer) or "polling" (watchdog's, any file system).
    watch_backend: str = "auto"


_TOP = {
    "watch",
    "exclude",
    "heartbeat",
    "catalog_poll",
    "stale_after",
    "scanner_idle",
    "schedule",
    "cpu_share",
    "watch_backend",
}
_SCHEDULE = {"roots", "every"}


def _paths(value: Any, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{key}: expected a list of paths, got {value!r}")
    return [os.path.abspath(os.path.expanduser(v)) for v in value]


def _patterns(value: Any, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{key}: expected a list of paths or glob patterns, got {value!r}")
    return [os.path.expanduser(v) for v in value]


def parse(data: dict[str, Any], where: str = CONFIG_FILE) -> AgentConfig:
    """The configuration of a parsed agent.toml; unknown keys and bad values are errors."""
    unknown = sorted(set(data) - _TOP)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_TOP))})")
    cfg = AgentConfig()
    try:
        if "watch" in data:
            cfg.watch = _paths(data["watch"], "watch")
        if "exclude" in data:
            cfg.exclude = _patterns(data["exclude"], "exclude")
        for key in ("heartbeat", "catalog_poll", "stale_after", "scanner_idle"):
            if key in data:
                setattr(cfg, key, parse_duration(data[key], key))
        if "cpu_share" in data:
            share = data["cpu_share"]
            if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share <= 1:
                raise ConfigError(f"cpu_share: expected a number in (0, 1], got {share!r}")
            cfg.cpu_share = float(share)
        if "watch_backend" in data:
            backend = data["watch_backend"]
            if backend not in BACKENDS:
                raise ConfigError(
                    f"watch_backend: expected one of {', '.join(BACKENDS)}, got {backend!r}"
                )
            cfg.watch_backend = backend
        schedule = data.get("schedule", {})
        if not isinstance(schedule, dict):
            raise ConfigError("schedule: expected a table ([schedule])")
        unknown = sorted(set(schedule) - _SCHEDULE)
        if unknown:
            raise ConfigError(f"schedule: unknown key {unknown[0]!r} (known: roots, every)")
        if "roots" in schedule:
            cfg.schedule_roots = _paths(schedule["roots"], "schedule.roots")
        if "every" in schedule:
            cfg.schedule_every = parse_duration(schedule["every"], "schedule.every")
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    return cfg


def load(home: Path) -> AgentConfig:
    """`home/agent.toml` if there is one, else the defaults."""
    data, where = read_toml(home)
    return parse(data, where)


def watched_roots(cfg: AgentConfig, extra: list[str]) -> list[str]:
    """The folders to watch: `--watch` options, else agent.toml's, else the default folders
    that exist on this machine."""
    if extra:
        return [os.path.abspath(p) for p in extra]
    if cfg.watch:
        return cfg.watch
    return [p for p in DEFAULT_WATCH if os.path.isdir(p)]


def exclusion(patterns: list[str], always: Iterable[str] = ()) -> Callable[[str], bool]:
    """A test of a path against `exclude`: a plain path excludes itself and everything under
    it; a pattern with * ? [ is matched against the whole path and against the name."""
    prefixes = [os.path.abspath(p).rstrip(os.sep) for p in [*patterns, *always] if not _glob(p)]
    globs = [p for p in patterns if _glob(p)]

    def excluded(path: str) -> bool:
        for p in prefixes:
            if path == p or path.startswith(p + os.sep):
                return True
        name = os.path.basename(path)
        return any(fnmatch.fnmatchcase(path, g) or fnmatch.fnmatchcase(name, g) for g in globs)

    return excluded


def _glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")
