"""The agent's scanner process: the engine (decoders, compiled kernels, the matcher and the scan
service's workers) lives here, not in the daemon, and ends when it has been idle for
`scanner_idle`, so a quiet workstation holds only the light daemon (watches, spool, delivery,
heartbeat, catalog sync). The daemon starts it again for the next file that lands.

The two talk over the scanner's stdin and stdout, one JSON object a line:

    daemon → scanner   {"op": "files", "paths": [...], "catalog_version": V}
                       {"op": "tree", "root": R, "catalog_version": V}
                       {"op": "refresh"}
    scanner → daemon   {"ready": BUILD}                  once started, the build in use
                       {"spooled": 1}                    a match is in the spool: deliver now
                       {"done": {...}} | {"failed": MSG}  the end of each request

Every match is written to the spool by the scanner itself, before anything else is said about
it; the daemon only wakes its deliverer. The scanner ends at the end of its stdin: when the daemon
closes it, and when the daemon dies.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

log = logging.getLogger("vigil.agent.scanner")

# Workers of the realtime scan service (a file that lands is one item; a burst is a few).
REALTIME_WORKERS = 2
# How long a scanner may take to start (imports, decoders, the build compiled if the catalog
# changed: a 1M-entry catalog compiles in ~15 s on a loaded 2-core machine).
START_SECONDS = 600.0


class ScannerFailed(Exception):
    """The scanner process ended or failed before it answered."""


class ScannerProcess:
    """The daemon's side: starts the scanner when there is work, stops it when idle."""

    def __init__(
        self,
        home: Path,
        idle_seconds: float,
        on_spooled: Callable[[], None],
        *,
        verbose: bool = False,
    ) -> None:
        self.home = home
        self.idle_seconds = idle_seconds
        self.on_spooled = on_spooled
        self.verbose = verbose
        self.build: str | None = None
        self.starts = 0
        self._proc: subprocess.Popen[str] | None = None
        self._last_used = time.monotonic()
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.running and self._proc is not None else None

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send one request (starting the scanner if it is not running) and wait for its end:
        the `done` object. ScannerFailed when the scanner died or the request failed in it."""
        with self._lock:
            proc = self._ensure()
            self._last_used = time.monotonic()
            try:
                assert proc.stdin is not None
                proc.stdin.write(json.dumps(message) + "\n")
                proc.stdin.flush()
            except OSError as e:
                self._reap()
                raise ScannerFailed(f"the scanner process is gone ({e})") from None
            try:
                while True:
                    reply = self._read(proc)
                    if "spooled" in reply:
                        self.on_spooled()
                    elif "done" in reply:
                        done: dict[str, Any] = reply["done"]
                        self.build = done.get("build") or self.build
                        return done
                    elif "failed" in reply:
                        raise ScannerFailed(str(reply["failed"]))
            finally:
                self._last_used = time.monotonic()

    def refresh(self) -> bool:
        """Have a running scanner take the newest build; True when it changed. A scanner that
        is not running takes the newest when it starts."""
        if not self.running:
            return False
        t0 = time.monotonic()
        reply = self.request({"op": "refresh"})
        if reply.get("changed"):
            log.info("scanner took build %s in %.2f s", reply.get("build"), time.monotonic() - t0)
        return bool(reply.get("changed"))

    def stop_if_idle(self) -> bool:
        """Stop the scanner when it has had nothing to do for `idle_seconds`; True if stopped."""
        with self._lock:
            if self.running and time.monotonic() - self._last_used >= self.idle_seconds:
                log.info("scanner idle for %.0f s: stopped", self.idle_seconds)
                self._close()
                return True
        return False

    def stop(self) -> None:
        """Stop the scanner now (a request in flight fails with ScannerFailed)."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()  # it closes its workers and ends; the lock holder sees the end
        with self._lock:
            self._close()

    # -- the process ---------------------------------------------------------------------------

    def _ensure(self) -> subprocess.Popen[str]:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        self._reap()
        args = [sys.executable, "-m", "vigil.agent.scanner", str(self.home)]
        if self.verbose:
            args.append("--verbose")
        t0 = time.monotonic()
        proc = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            bufsize=1,
        )
        self._proc = proc
        self.starts += 1
        reply = self._read(proc)
        if "ready" not in reply:
            self._close()
            raise ScannerFailed(f"the scanner process did not start: {reply.get('failed')}")
        self.build = reply["ready"]
        log.info(
            "scanner started (pid %d, build %s) in %.2f s",
            proc.pid,
            self.build,
            time.monotonic() - t0,
        )
        return proc

    def _read(self, proc: subprocess.Popen[str]) -> dict[str, Any]:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            status = proc.wait()
            self._reap()
            raise ScannerFailed(f"the scanner process ended (exit status {status})")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def _close(self) -> None:
        proc = self._proc
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        self._reap()

    def _reap(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            for stream in (proc.stdin, proc.stdout):
                try:
                    if stream is not None:
                        stream.close()
                except OSError:
                    pass


# -- the scanner's side ------------------------------------------------------------------------


def serve(home: Path, requests: IO[str], replies: IO[str]) -> None:
    """Answer the daemon's requests until the end of `requests`."""
    from vigil.agent import config
    from vigil.agent.config import exclusion
    from vigil.agent.scanning import Scanning, SpoolSink
    from vigil.endpoint.spool import Spool
    from vigil.engine import Engine

    def say(message: dict[str, Any]) -> None:
        replies.write(json.dumps(message) + "\n")
        replies.flush()

    engine = Engine.open(home)
    scanning = None
    spool = Spool(home)
    try:
        excluded = exclusion(config.load(home).exclude, always=[str(home)])
        engine.prepare()
        scanning = Scanning(engine, home, workers=REALTIME_WORKERS)
        scanning.service.pool()  # the workers fork now, from a process with one thread
        catalog_version: list[str | None] = [None]
        sink = SpoolSink(spool, "realtime", lambda: catalog_version[0], lambda: say({"spooled": 1}))
        say({"ready": engine.matcher().build_id})
        for line in requests:
            request = json.loads(line)
            op = request.get("op")
            catalog_version[0] = request.get("catalog_version")
            try:
                if op == "refresh":
                    changed = engine.refresh()
                    say({"done": {"changed": changed, "build": engine.matcher().build_id}})
                    continue
                engine.refresh()  # a build compiled since the last request (a local import)
                if op == "files":
                    summary = scanning.files(request["paths"], sink)
                elif op == "tree":
                    summary = scanning.trees([request["root"]], sink, excluded)
                else:
                    say({"failed": f"unknown request {op!r}"})
                    continue
            except Exception as e:
                # One scan's failure is the daemon's to log; the scanner goes on serving.
                log.exception("a scan failed")
                say({"failed": f"{type(e).__name__}: {e}"})
                continue
            say(
                {
                    "done": {
                        "files": summary.files,
                        "matches": summary.matches,
                        "errors": summary.errors,
                        "build": engine.matcher().build_id,
                    }
                }
            )
    finally:
        if scanning is not None:
            scanning.close()
        spool.close()
        engine.close()


def main(argv: list[str]) -> int:
    from vigil.endpoint.logs import journal_logging

    journal_logging("--verbose" in argv)
    home = Path(argv[0])
    # Replies go to the daemon on the real stdout; anything a library prints goes to stderr.
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    # SIGTERM (the daemon stopping) ends the scan in flight and closes the workers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        serve(home, sys.stdin, replies)
    except Exception as e:
        log.exception("the scanner failed")
        try:
            replies.write(json.dumps({"failed": f"{type(e).__name__}: {e}"}) + "\n")
            replies.flush()
        except OSError:
            pass
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
