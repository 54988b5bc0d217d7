"""`vigil agent run`: the daemon in the foreground (what the systemd unit runs).

Threads: the watcher (inotify events → files and dirty roots), the scan loop (one request at a
time to the scanner process: files that landed first, then trees — catch-up, new folders,
rescans after an overflow), the deliverer (spool → server), the heartbeat (also writes the
status file), the catalog sync and the scheduler (full scans of `[schedule] roots` in a separate
low-priority process). The watches are in place before the catch-up scan starts, so nothing
lands unseen in between.

The engine (decoders, compiled kernels, the matcher, the scan workers) is not loaded here: it
lives in the scanner process (vigil.agent.scanner), which ends after `scanner_idle` without work.
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

from vigil.agent.config import AgentConfig, exclusion
from vigil.agent.priority import CpuGovernor, stretch_for, workers_for
from vigil.agent.scanner import ScannerFailed, ScannerProcess
from vigil.agent.watch import choose, open_watcher
from vigil.endpoint import enrolment as enrolment_file
from vigil.endpoint.client import Connection, ServerRefused
from vigil.endpoint.delivery import Deliverer, backoff
from vigil.endpoint.enrolment import agent_dir
from vigil.endpoint.spool import Spool
from vigil.endpoint.sync import CatalogSync

log = logging.getLogger("vigil.agent")

STATUS_FILE = "status.json"
SCHEDULE_FILE = "schedule.json"
# Files that land together are scanned together: events are gathered this long at most.
GATHER_SECONDS = 0.1
# A file or tree whose scan the scanner process failed (it died: the OOM killer, a crash, a
# kill) is tried again, after a backoff, in a new scanner, up to this many times in all.
SCAN_ATTEMPTS = 5


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

    def __init__(
        self, home: Path, cfg: AgentConfig, roots: list[str], *, verbose: bool = False
    ) -> None:
        self.home = home
        self.verbose = verbose
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
        self.abandoned = 0  # files and trees given up after SCAN_ATTEMPTS failed scans
        # The catalog version the scanner's build was made from (a version received is in use
        # once the scanner compiled it: every request takes the newest build first).
        self.in_use: str | None = None

    # -- start and stop ----------------------------------------------------------------------

    def stop(self) -> None:
        """Ask every thread to end."""
        self.stop_event.set()

    def run(self) -> None:
        """Run until stopped."""
        signal.signal(signal.SIGTERM, lambda *_: self.stop())
        signal.signal(signal.SIGINT, lambda *_: self.stop())
        self.conn = Connection(
            self.enrolment.server, self.enrolment.credential, self.enrolment.ca_cert
        )
        self.deliverer = Deliverer(Spool(self.home), self.conn, self.stop_event)
        self.scanner = ScannerProcess(
            self.home, self.cfg.scanner_idle, self.deliverer.wake.set, verbose=self.verbose
        )
        self.sync = CatalogSync(
            self.home, self.enrolment, self._catalog_changed, stale_after=self.cfg.stale_after
        )
        self.watch_backend = choose(self.cfg.watch_backend)
        self.watcher = open_watcher(
            self.watch_backend, self.roots, self.excluded, self._files_landed, self._tree_dirty
        )
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
            self.scanner.stop()  # a scan in flight ends; the scan loop sees the stop
            for t in threads:
                t.join(timeout=30)
            self.watcher.close()
            self.conn.close()
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

    def _catalog_changed(self) -> None:
        """A new catalog version arrived: the scanner compiles and takes its build now (started
        for it if it was not running), so the first file after it is not kept waiting."""
        self.jobs.put(("refresh", None))

    def _scan_loop(self) -> None:
        trees: dict[str, str] = {}
        # Requests the scanner failed (it died under them), waiting to be made again:
        # (when, kind, value). A file or tree is abandoned only after SCAN_ATTEMPTS failures.
        retries: list[tuple[float, str, Any]] = []
        failures: dict[str, int] = {}
        while not self.stop_event.is_set():
            files: list[str] = []
            refresh = False
            now = time.monotonic()
            for due in [r for r in retries if r[0] <= now]:
                retries.remove(due)
                refresh |= self._take(due[1], due[2], files, trees)
            wait = max(0.01, min([2.0, *(r[0] - now for r in retries)]))
            try:
                kind, value = self.jobs.get(timeout=0.01 if trees or files or refresh else wait)
            except queue.Empty:
                if not (trees or files or refresh):
                    if not retries:
                        self.scanner.stop_if_idle()
                    continue
            else:
                refresh |= self._take(kind, value, files, trees)
                deadline = time.monotonic() + GATHER_SECONDS
                while (left := deadline - time.monotonic()) > 0:
                    try:
                        refresh |= self._take(*self.jobs.get(timeout=left), files, trees)
                    except queue.Empty:
                        break
            version = self.sync.state.version
            if refresh:
                # The build before (a scanner started for this request takes the newest itself).
                before = self.scanner.build
                done = self._request({"op": "refresh"}, "the new catalog")
                if done is None:
                    retries.append((time.monotonic() + 1.0, "refresh", None))
                elif self.scanner.build != before:
                    # What is already on the machine is matched against the new catalog: the
                    # watched roots rescanned through the fingerprint cache, so an unchanged
                    # file costs a stat and its cached fingerprints are matched, not read again.
                    for root in self.roots:
                        self._take("tree", (root, "catalog changed"), files, trees)
            if files:
                request = {"op": "files", "paths": files, "catalog_version": version}
                if self._request(request, f"{len(files)} file(s) landed") is not None:
                    for f in files:
                        failures.pop(f, None)
                else:
                    for f in self._again(files, failures):
                        retries.append((time.monotonic() + backoff(failures[f]), "files", [f]))
            elif trees:
                root, why = trees.popitem()
                log.info("scanning %s (%s)", root, why)
                request = {"op": "tree", "root": root, "catalog_version": version}
                done = self._request(request, f"{root} ({why})")
                if done is not None:
                    failures.pop(root, None)
                    log.info(
                        "scanned %s: %d file(s), %d match(es)", root, done["files"], done["matches"]
                    )
                elif self._again([root], failures):
                    retries.append(
                        (time.monotonic() + backoff(failures[root]), "tree", (root, why))
                    )

    def _request(self, request: dict[str, Any], what: str) -> dict[str, Any] | None:
        """One request to the scanner; None when it failed (the scanner died under it, or the
        agent is stopping)."""
        if self.stop_event.is_set():
            return None
        version = self.sync.state.version
        try:
            done = self.scanner.request(request)
        except ScannerFailed as e:
            if not self.stop_event.is_set():
                log.error("scan of %s failed: %s", what, e)
            return None
        if self.sync.state.source == "local":
            self.sync.state.version = self.scanner.build
        self.in_use = self.sync.state.version if self.sync.state.source == "local" else version
        return done

    def _again(self, keys: list[str], failures: dict[str, int]) -> list[str]:
        """Of the files or trees a failed request held, those to try again (each at most
        SCAN_ATTEMPTS times: one the scanner cannot get through is given up, and said so)."""
        again = []
        for key in keys:
            failures[key] = failures.get(key, 0) + 1
            if failures[key] < SCAN_ATTEMPTS:
                again.append(key)
            else:
                del failures[key]
                self.abandoned += 1
                log.error("%s not checked: the scanner failed %d times on it", key, SCAN_ATTEMPTS)
        return again

    @staticmethod
    def _take(kind: str, value: Any, files: list[str], trees: dict[str, str]) -> bool:
        """Add a job to what is waiting; True for a catalog refresh."""
        if kind == "refresh":
            return True
        if kind == "files":
            files.extend(value)
        else:
            root, why = value
            # A folder inside a tree already waiting is covered by it.
            if not any(root == t or root.startswith(t.rstrip(os.sep) + os.sep) for t in trees):
                trees[root] = why
        return False

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
                "watch_backend": self.watch_backend,
                "watch": health.to_dict(),
                "overflows": self.watcher.overflows,
                "scanner": {
                    "pid": self.scanner.pid,
                    "starts": self.scanner.starts,
                    "build": self.scanner.build,
                    "abandoned": self.abandoned,
                    "catalog_version": self.in_use,
                },
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
            done = self._scheduled_scan(roots)
            if done is None:
                return  # stopped mid-scan (the loop ends too): it runs again at the next start
            status, pauses = done
            write_json(
                path,
                {
                    "last_started": started,
                    "last_finished": time.time(),
                    "last_status": status,
                    "last_pauses": pauses,
                },
            )

    def _scheduled_scan(self, roots: list[str]) -> tuple[int, int] | None:
        """One scheduled scan in a child process at low priority, held to cpu_share; its exit
        status and how many times it was paused for its share, or None when the agent stopped
        first."""
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
            "--item-stretch",
            f"{stretch_for(self.cfg.cpu_share):g}",
            *[a for r in self.cfg.exclude for a in ("--exclude", r)],
            *roots,
        ]
        log.info("scheduled scan of %s (cpu_share %g)", ", ".join(roots), self.cfg.cpu_share)
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL)
        governor = CpuGovernor(proc.pid, self.cfg.cpu_share)
        try:
            while proc.poll() is None:
                if self.stop_event.wait(governor.step()):
                    governor.release()
                    proc.terminate()
                    proc.wait()
                    return None
        finally:
            governor.release()
        self.deliverer.wake.set()
        log.info(
            "scheduled scan finished (status %d, paused %d times for cpu_share)",
            proc.returncode,
            governor.pauses,
        )
        return proc.returncode, governor.pauses
