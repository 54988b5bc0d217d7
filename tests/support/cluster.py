"""Helpers of the cluster tests: `vigil` as a process, matches compared as sets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

VIGIL = [sys.executable, "-m", "vigil.cli"]


def vigil(
    *args: str, home: Path, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """`vigil ARGS` as its own process."""
    full = {**os.environ, "VIGIL_HOME": str(home), **(env or {})}
    return subprocess.run(
        [*VIGIL, *args], capture_output=True, text=True, env=full, timeout=timeout
    )


def match_key(m: dict[str, Any], root: str) -> tuple[Any, ...]:
    """A match as a set element, its path relative to the scanned root."""
    path = m["path"]
    assert path.startswith(root), (path, root)
    return (
        path[len(root) :].lstrip("/"),
        m["member"],
        m["hashset"],
        m["entry"]["id"],
        m["kind"],
        m["distance"],
        m["transform"],
        m["fingerprints"]["sha256"],
    )


def json_matches(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


@dataclass
class Planted:
    root: Path
    home: Path
    # Matches of a local scan of `root` (vigil scan --json), exit status.
    local: list[dict[str, Any]]
    local_status: int
