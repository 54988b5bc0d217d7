"""The fuzz runner turns each way a target can fail into a finding with its input saved."""

from __future__ import annotations

from pathlib import Path

import pytest

from fuzz import isolate
from fuzz.isolate import Runner


@pytest.fixture
def artifacts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(isolate, "ARTIFACTS", tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("target", "kind", "detail"),
    [
        ("selftest-crash", "crash", "SIGSEGV"),
        ("selftest-abort", "crash", "SIGABRT"),
        ("selftest-memory", "error", "MemoryError"),
        ("selftest-hang", "hang", "no answer"),
    ],
)
def test_each_failure_is_a_finding_with_its_input_saved(
    artifacts: Path, target: str, kind: str, detail: str
) -> None:
    with Runner(timeout=3.0, warm=False) as runner:
        outcome = runner.run(target, b"the input")
        # The runner carries on with a fresh child.
        assert runner.run("hashlist", b"\x00md5\n").ok
    assert outcome.kind == kind
    assert detail in outcome.detail
    assert outcome.saved is not None and outcome.saved.parent == artifacts / target
    assert outcome.saved.read_bytes() == b"the input"
