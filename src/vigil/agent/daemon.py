"""`vigil agent run`: the daemon in the foreground (what the systemd unit runs).

Threads: the watcher (inotify events → files and dirty roots), the scanner (one at a time:
files that landed first, then trees — catch-up, new folders, rescans after an overflow), the
deliverer (spool → server), the heartbeat (also writes the status file), the catalog sync and
the scheduler (full scans of `[schedule] roots` in a separate low-priority process). The
watches are in place before the catch-up scan starts, so nothing lands unseen in between.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from vigil.agent import enrolment as enrolment_file
from vigil.agent.client import Connection, ServerRefused
from vigil.agent.config import AgentConfig
from vigil.agent.delivery import Deliverer
from vigil.agent.enrolment import agent_dir
from vigil.agent.priority import workers_for
from vigil.agent.scanning import Scanning, SpoolSink, exclusion
from vigil.agent.spool import Spool
from vigil.agent.sync import CatalogSync
from vigil.agent.watch import Watcher
from vigil.engine import Engine

log = logging.getLogger("vigil.agent")

STATUS_FILE = "status.json"
SCHEDULE_FILE = "schedule.json"
# Files that land together are scanned together: events are gathered this long at most.
GATHER_SECONDS = 0.1
# Workers of the realtime scan service (a file that lands is one item; a burst is a few).
REALTIME_WORKERS = 2


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Replace a small state file atomically."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any]:
    """A state file, or {} when there is none (yet)."""
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data
    except (FileNotFoundError, ValueError):
        return {}


class Agent:
    """The daemon: started by run(), stopped by SIGTERM/SIGINT or stop()."""

    def __init__(self, home: Path, cfg: AgentConfig, roots: list[str]) -> None:
        self.home = home
        self.cfg = cfg
        self.roots = roots
        self.enrolment = enrolment_file.load(home)
        self.state_dir = agent_dir(home)
        self.stop_event = threading.Event()
        self.jobs: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.excluded = exclusion(cfg.exclude, always=[str(home)])
        self.started = time.time()
        self.last_heartbeat: float | None = None
        self.heartbeat_error: str | None = None

    # -- start and stop ----------------------------------------------------------------------

    def stop(self) -> None:
        """Ask every thread to end."""
        self.stop_event.set()

    def run(self) -> None:
        """Run until stopped."""
        signal.signal(signal.SIGTERM, lambda *_: self.stop())
        signal.signal(signal.SIGINT, lambda *_: self.stop())
        self.engine = Engine.open(self.home)
        self.engine.prepare()
        self.scanning = Scanning(self.engine, self.home, workers=REALTIME_WORKERS)
        # Decoders and kernels loaded and the pool made before the agent's own threads start
        # (its workers fork from this process).
        self.scanning.service.pool()
        self.conn = Connection(
            self.enrolment.server, self.enrolment.credential, self.enrolment.ca_cert
        )
        self.sync = CatalogSync(
            self.home, self.enrolment, self.engine, stale_after=self.cfg.stale_after
        )
        self.deliverer = Deliverer(Spool(self.home), self.conn, self.stop_event)
        self.watcher = Watcher(self.roots, self.excluded, self._files_landed, self._tree_dirty)
        self.watcher.start()
        for root in self.roots:
            self._tree_dirty(root, "catch-up")
        log.info(
            "agent %s (%s) reporting to %s, watching %s",
            self.enrolment.agent_id,
            self.enrolment.host,
            self.enrolment.server,
            ", ".join(self.roots) or "nothing",
        )
        threads = [
            self._thread("watch", self.watcher.run, self.stop_event),
            self._thread("scan", self._scan_loop),
            self._thread("deliver", self.deliverer.run),
            self._thread("heartbeat", self._heartbeat_loop),
            self._thread("sync", self.sync.run, self.cfg.catalog_poll, self.stop_event),
            self._thread("schedule", self._schedule_loop),
        ]
        try:
            while not self.stop_event.wait(5.0):
                for t in threads:
                    if not t.is_alive():
                        log.error("thread %s ended: stopping", t.name)
                        self.stop()
        finally:
            self.stop()
            self.deliverer.wake.set()
            for t in threads:
                t.join(timeout=30)
            self.watcher.close()
            self.scanning.close()
            self.conn.close()
            self.engine.close()
            log.info("agent stopped")

    def _thread(self, name: str, target: Callable[..., None], *args: Any) -> threading.Thread:
        def body() -> None:
            try:
                target(*args)
            except Exception:
                log.exception("the %s thread failed", name)

        t = threading.Thread(target=body, name=name, daemon=True)
        t.start()
        return t

    # -- scanning ----------------------------------------------------------------------------

    def _files_landed(self, paths: list[str]) -> None:
        self.jobs.put(("files", paths))

    def _tree_dirty(self, root: str, why: str) -> None:
        self.jobs.put(("tree", (root, why)))

    def _scan_loop(self) -> None:
        spool = Spool(self.home)
        sink = SpoolSink(
            spool, "realtime", lambda: self.sync.state.version, self.deliverer.wake.set
        )
        trees: dict[str, str] = {}
        while not self.stop_event.is_set():
            files: list[str] = []
            try:
                kind, value = self.jobs.get(timeout=0.01 if trees else 2.0)
            except queue.Empty:
                if not trees:
                    continue
            else:
                self._take(kind, value, files, trees)
                deadline = time.monotonic() + GATHER_SECONDS
                while (left := deadline - time.monotonic()) > 0:
                    try:
                        self._take(*self.jobs.get(timeout=left), files, trees)
                    except queue.Empty:
                        break
            try:
                if files:
                    self.scanning.files(files, sink)
                elif trees:
                    root, why = trees.popitem()
                    log.info("scanning %s (%s)", root, why)
                    summary = self.scanning.trees([root], sink, self.excluded)
                    log.info(
                        "scanned %s: %d file(s), %d match(es)", root, summary.files, summary.matches
                    )
            except Exception:
                # One scan's failure must not end watching; what it missed is found by the
                # next catch-up or scheduled scan.
                log.exception("a scan failed")
        spool.close()

    @staticmethod
    def _take(kind: str, value: Any, files: list[str], trees: dict[str, str]) -> None:
        if kind == "files":
            files.extend(value)
        else:
            root, why = value
            # A folder inside a tree already waiting is covered by it.
            if not any(root == t or root.startswith(t.rstrip("/") + "/") for t in trees):
                trees[root] = why

    # -- heartbeat and status ----------------------------------------------------------------

    def _heartbeat_loop(self) -> None:
        spool = Spool(self.home)
        try:
            while True:
                self._heartbeat(spool)
                if self.stop_event.wait(self.cfg.heartbeat):
                    break
        finally:
            spool.close()

    def _heartbeat(self, spool: Spool) -> None:
        health = self.watcher.health()
        catalog = self.sync.state
        body: dict[str, Any] = {
            "catalog_version": catalog.version,
            "spool_length": len(spool),
            "watch": health.to_dict(),
            # The server raises `catalog_rejected` and `catalog_stale` incidents from these.
            "catalog_error": catalog.rejected,
        }
        if catalog.source == "server":
            body["catalog_age_seconds"] = max(
                0.0, time.time() - (catalog.last_fresh or self.started)
            )
        try:
            self.conn.heartbeat(body)
            self.last_heartbeat = time.time()
            self.heartbeat_error = None
        except (httpx.HTTPError, ServerRefused) as e:
            self.heartbeat_error = str(e)
            log.warning("heartbeat failed: %s", e)
        write_json(
            self.state_dir / STATUS_FILE,
            {
                "pid": os.getpid(),
                "started": self.started,
                "updated": time.time(),
                "roots": self.roots,
                "watch": health.to_dict(),
                "overflows": self.watcher.overflows,
                "catalog": self.sync.state.to_dict(),
                "last_heartbeat": self.last_heartbeat,
                "heartbeat_error": self.heartbeat_error,
                "delivery_error": self.deliverer.last_error,
            },
        )

    # -- scheduled scans ---------------------------------------------------------------------

    def _schedule_loop(self) -> None:
        roots = self.cfg.schedule_roots
        if not roots:
            self.stop_event.wait()
            return
        path = self.state_dir / SCHEDULE_FILE
        while not self.stop_event.is_set():
            last = read_json(path).get("last_finished") or 0.0
            due = last + self.cfg.schedule_every - time.time()
            if due > 0:
                self.stop_event.wait(min(due, 60.0))
                continue
            started = time.time()
            status = self._scheduled_scan(roots)
            if status is None:
                return  # stopped mid-scan (the loop ends too): it runs again at the next start
            write_json(
                path, {"last_started": started, "last_finished": time.time(), "last_status": status}
            )

    def _scheduled_scan(self, roots: list[str]) -> int | None:
        """One scheduled scan in a child process at low priority; its exit status, or None
        when the agent stopped first."""
        args = [
            sys.executable,
            "-m",
            "vigil.cli",
            "agent",
            "scan",
            "--home",
            str(self.home),
            "--detection",
            "scheduled",
            "--low-priority",
            "--no-deliver",
            "--workers",
            str(workers_for(self.cfg.cpu_share)),
            *[a for r in self.cfg.exclude for a in ("--exclude", r)],
            *roots,
        ]
        log.info("scheduled scan of %s", ", ".join(roots))
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL)
        while proc.poll() is None:
            if self.stop_event.wait(1.0):
                proc.terminate()
                proc.wait()
                return None
        self.deliverer.wake.set()
        log.info("scheduled scan finished (status %d)", proc.returncode)
        return proc.returncode


def journal_logging(verbose: bool = False) -> None:
    """Log to stderr, one line per event: with syslog priority prefixes that journald reads
    when it is the stream's reader, else with a timestamp."""
    level = logging.DEBUG if verbose else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("JOURNAL_STREAM"):
        handler.setFormatter(_JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("vigil")
    root.handlers[:] = [handler]
    root.setLevel(level)


class _JournalFormatter(logging.Formatter):
    """`<N>` sd-daemon priority prefixes (3 error, 4 warning, 6 info, 7 debug)."""

    LEVELS = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6}

    def format(self, record: logging.LogRecord) -> str:
        return f"<{self.LEVELS.get(record.levelno, 7)}>{super().format(record)}"
