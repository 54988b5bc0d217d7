"""Run fuzz targets in a child process: a crash, an abort, a hang or an exhausted memory limit
is a finding with its input saved, never the death of the process that asked.

    with Runner() as runner:
        outcome = runner.run("archive", data)   # Outcome(kind="ok" | "error" | "crash" | "hang")

The child (`python -m fuzz.isolate`) imports Vigil once and then runs one input after another,
read from a pipe; it is restarted after a crash or a hang. Its address space is capped
(`memory_mb`), so an allocation beyond it is a MemoryError (reported as an error) or an abort.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import select
import signal
import struct
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

ROOT = Path(__file__).resolve().parent.parent
# Where findings are written unless VIGIL_FUZZ_ARTIFACTS names another directory.
ARTIFACTS = Path(os.environ.get("VIGIL_FUZZ_ARTIFACTS", ROOT / "fuzz" / "artifacts"))
# Seconds one input may take before it counts as a hang (the limits in fuzz.targets are 20 s).
TIMEOUT = float(os.environ.get("VIGIL_FUZZ_TIMEOUT", "60"))
# Address space of the child, in MiB (Vigil with its libraries maps ~1.5 GiB before any input).
MEMORY_MB = int(os.environ.get("VIGIL_FUZZ_MEMORY_MB", "6144"))
_LENGTH = struct.Struct("<I")


@dataclass
class Outcome:
    """What one input did: 'ok', 'error' (an exception the contract rules out), 'crash' (the
    child died: a signal or an exit), 'hang' (no answer within the timeout)."""

    kind: str
    detail: str = ""
    saved: Path | None = None

    @property
    def ok(self) -> bool:
        return self.kind == "ok"

    def __str__(self) -> str:
        where = f"\ninput saved to {self.saved}" if self.saved else ""
        return f"{self.kind}: {self.detail}{where}"


def signature(kind: str, detail: str) -> str:
    """A short name for one bug: the kind, and for an exception its type and innermost frame.

    Hypothesis re-runs a failing property many times while it shrinks the input; each run
    overwrites the same file, so what stays is the smallest input of each bug.
    """
    lines = [line.strip() for line in detail.strip().splitlines()]
    frames = [line for line in lines if line.startswith('File "')]
    key = f"{kind}|{frames[-1] if frames else ''}|{lines[-1].split(':')[0] if lines else ''}"
    return f"{kind}-{hashlib.sha1(key.encode()).hexdigest()[:12]}"


def save(target: str, data: bytes, kind: str, detail: str = "") -> Path:
    """Write a finding's input (and what happened, beside it) under ARTIFACTS/target/."""
    folder = ARTIFACTS / target
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / signature(kind, detail)
    path.write_bytes(data)
    if detail:
        path.with_suffix(".txt").write_text(detail)
    return path


class Runner:
    """One child process running targets; restarted whenever an input kills or hangs it."""

    def __init__(
        self, timeout: float = TIMEOUT, memory_mb: int = MEMORY_MB, *, warm: bool = True
    ) -> None:
        self.timeout = timeout
        self.memory_mb = memory_mb
        # Import the decoders (and compile PDQ's kernels) before the first input, not during it.
        self.warm = warm
        self._child: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the child."""
        child, self._child = self._child, None
        if child is None:
            return
        try:
            assert child.stdin is not None
            child.stdin.close()
            child.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            child.kill()
            child.wait()

    def _start(self) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        # One thread per library: the fuzzer's throughput comes from processes, not threads.
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
            env.setdefault(name, "1")
        child = subprocess.Popen(
            [sys.executable, "-m", "fuzz.isolate", str(self.memory_mb), str(int(self.warm))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            cwd=str(ROOT),
        )
        assert child.stdout is not None
        # The child says it is ready once its imports are done (not counted in any input's time).
        try:
            ready = _read_message(child.stdout, 300.0)
        except EOFError:
            ready = None
        if ready is None:
            child.kill()
            child.wait()
            raise RuntimeError("the fuzz child process did not start")
        return child

    def run(self, target: str, data: bytes, *, save_findings: bool = True) -> Outcome:
        """Run `target` on `data` in the child; a finding's input is saved unless told not to."""
        outcome = self._run(target, data)
        if not outcome.ok and save_findings:
            outcome.saved = save(target, data, outcome.kind, outcome.detail)
        return outcome

    def check(self, target: str, data: bytes) -> None:
        """Raise AssertionError (naming the saved input) unless `target` handles `data` well."""
        outcome = self.run(target, data)
        if not outcome.ok:
            raise AssertionError(f"{target}: {outcome}")

    def _run(self, target: str, data: bytes) -> Outcome:
        if self._child is None or self._child.poll() is not None:
            self._child = self._start()
        child = self._child
        assert child.stdin is not None and child.stdout is not None
        name = target.encode()
        try:
            child.stdin.write(_LENGTH.pack(len(name)) + name + _LENGTH.pack(len(data)) + data)
            child.stdin.flush()
        except BrokenPipeError:
            return self._died(child)
        try:
            reply = _read_message(child.stdout, self.timeout)
        except EOFError:
            return self._died(child)
        if reply is None:
            child.kill()
            child.wait()
            self._child = None
            return Outcome("hang", f"no answer within {self.timeout:g} seconds")
        answer = json.loads(reply)
        return Outcome(answer["kind"], answer.get("detail", ""))

    def _died(self, child: subprocess.Popen[bytes]) -> Outcome:
        try:
            code = child.wait(timeout=30)
        except subprocess.TimeoutExpired:  # closed its output but lives on: make it stop
            child.kill()
            code = child.wait()
        self._child = None
        if code < 0:
            try:
                what = signal.Signals(-code).name
            except ValueError:
                what = f"signal {-code}"
            return Outcome("crash", f"the child died of {what}")
        return Outcome("crash", f"the child exited with status {code}")


def _read_message(stream: BinaryIO, timeout: float) -> bytes | None:
    """One length-prefixed message, or None when `timeout` passes (EOFError at end of file)."""
    deadline = time.monotonic() + timeout
    out = b""
    need = _LENGTH.size
    header = True
    fd = stream.fileno()
    while True:
        while len(out) < need:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(fd, need - len(out))
            if not chunk:
                raise EOFError("the child closed its output")
            out += chunk
        if not header:
            return out
        (need,) = _LENGTH.unpack(out)
        out = b""
        header = False
        if need == 0:
            return b""


def _write_message(stream: BinaryIO, payload: dict[str, Any]) -> None:
    data = json.dumps(payload).encode()
    stream.write(_LENGTH.pack(len(data)) + data)
    stream.flush()


def _read_exactly(stream: BinaryIO, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def child(memory_mb: int, warm_up: bool = True) -> None:
    """The child's loop: read (target, input) pairs, answer each with its outcome."""
    from fuzz.targets import SELF_TESTS, TARGETS, ContractViolation, warm

    targets = {**TARGETS, **SELF_TESTS}

    # The protocol owns the original standard output; anything a library prints goes to stderr.
    reply = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    requests = sys.stdin.buffer
    if warm_up:
        warm()
    if memory_mb > 0:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    _write_message(reply, {"kind": "ready"})
    while True:
        header = _read_exactly(requests, _LENGTH.size)
        if header is None:
            return
        name = _read_exactly(requests, _LENGTH.unpack(header)[0]) or b""
        size = _read_exactly(requests, _LENGTH.size)
        assert size is not None
        data = _read_exactly(requests, _LENGTH.unpack(size)[0]) or b""
        try:
            targets[name.decode()](data)
        except ContractViolation as exc:
            _write_message(reply, {"kind": "error", "detail": f"contract violated: {exc}"})
        except BaseException:  # noqa: BLE001 - every other exception is the finding itself
            _write_message(reply, {"kind": "error", "detail": traceback.format_exc()})
        else:
            _write_message(reply, {"kind": "ok"})


if __name__ == "__main__":
    child(
        int(sys.argv[1]) if len(sys.argv) > 1 else MEMORY_MB,
        sys.argv[2] != "0" if len(sys.argv) > 2 else True,
    )
