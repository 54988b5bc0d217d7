"""`agent.toml`'s keys that every enrolled endpoint shares (the agent's other keys are its own,
in vigil.agent.config): how often to send a heartbeat and to poll the catalog, and when a catalog
without a fresh timestamp is stale. The file is the operator's: read, never written."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vigil.errors import VigilError

CONFIG_FILE = "agent.toml"

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")


class ConfigError(VigilError):
    """agent.toml cannot be used (its path and the key at fault are in the message)."""


def parse_duration(raw: object, key: str = "duration") -> float:
    """'2s', '60s', '15m', '24h', '1d' or a bare number of seconds, as seconds."""
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        value = float(raw)
    elif isinstance(raw, str) and (m := _DURATION.match(raw)):
        value = float(m.group(1)) * _UNITS[m.group(2) or "s"]
    else:
        raise ConfigError(f'{key}: not a duration: {raw!r} (write e.g. "2s", "60s", "24h")')
    if value <= 0:
        raise ConfigError(f"{key}: a duration must be positive: {raw!r}")
    return value


@dataclass(frozen=True)
class Intervals:
    """The shared intervals, in seconds, with the agent's defaults."""

    heartbeat: float = 60.0
    catalog_poll: float = 60.0
    # No fresh catalog timestamp from the server for this long: the catalog is reported stale.
    stale_after: float = 86400.0


def read_toml(home: Path) -> tuple[dict[str, Any], str]:
    """`home/agent.toml` parsed (empty when there is none), and its path for messages."""
    path = home / CONFIG_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, str(path)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    try:
        return tomllib.loads(text), str(path)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None


def intervals(home: Path) -> Intervals:
    """The shared intervals of `home/agent.toml` (the defaults for keys it does not set)."""
    data, where = read_toml(home)
    try:
        return Intervals(
            **{
                key: parse_duration(data[key], key)
                for key in ("heartbeat", "catalog_poll", "stale_after")
                if key in data
            }
        )
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
