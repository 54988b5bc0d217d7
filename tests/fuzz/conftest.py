"""The fuzz properties' shared runner: targets run in a child process (`fuzz.isolate`)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # the `fuzz` package at the repository's root
    sys.path.insert(0, str(ROOT))

from fuzz.isolate import Runner  # noqa: E402


@pytest.fixture(scope="session")
def runner() -> Iterator[Runner]:
    """One child process for the whole session (restarted after a crash or a hang)."""
    with Runner() as found:
        yield found
