"""Helpers of the cluster tests: `vigil` as a process, matches compared as sets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distributed import WorkerPlugin

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


def faulty_fingerprint_item(path: str, source: Any, limits: Any, *args: Any) -> Any:
    """`fingerprint_item` with two bad files: `*-hang*` holds the GIL inside C code for far
    beyond any limit (a regular expression that backtracks 2^60 times), `*-crash*` reads address
    0 (a real SIGSEGV). Others are fingerprinted as usual."""
    import ctypes
    import re

    from vigil.scan.worker import fingerprint_item

    name = os.path.basename(path)
    if "-hang" in name:
        re.fullmatch(r"(a+)+b", "a" * 60)
    if "-crash" in name:
        ctypes.string_at(0)
    return fingerprint_item(path, source, limits, *args)


class FaultyFiles(WorkerPlugin):
    """A Dask worker plugin: on every worker, a replacement too, the scan reads files with
    `faulty_fingerprint_item` (in the worker process and in scanning processes it forks);
    teardown puts the real one back."""

    name = "vigil-test-faulty-files"

    def setup(self, worker: Any) -> None:
        import vigil.scan.scanner as scanner

        scanner.fingerprint_item = faulty_fingerprint_item  # type: ignore[assignment]

    def teardown(self, worker: Any) -> None:
        import vigil.scan.scanner as scanner
        from vigil.scan.worker import fingerprint_item

        scanner.fingerprint_item = fingerprint_item
