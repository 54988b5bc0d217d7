"""The whole system on one machine: a `vigil server` on SQLite, a mail sink, an agent watching a
demo folder; copies of known photos dropped there become incidents and e-mails.

Everything runs as it would in production, over loopback: the server and the agent are child
processes (`vigil server run`, `vigil agent run`) on free ports, configured through their own
files (`server.toml`, `agent.toml`) and commands, and the demo watches what happens through the
server's HTTP API with an API key, as any outside tool would.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import click

from vigil.demo.mailbox import Mailbox
from vigil.demo.photos import LIST_NAME, Planted, originals, system_files, write_list
from vigil.errors import VigilError

VIGIL = [sys.executable, "-m", "vigil.cli"]
HOST = "demo-workstation"
# Bounds on waiting (a busy 2-core machine included): past one, the demo stops with the log.
START_SECONDS = 120.0
FOUND_SECONDS = 180.0
# How long a child may take to stop after SIGTERM before it is killed.
STOP_SECONDS = 30.0
POLL_SECONDS = 0.5

T = TypeVar("T")


def free_port() -> int:
    """A loopback port nobody listens on (just now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Child:
    """A `vigil` process the demo started, in a session of its own (Ctrl-C reaches the demo
    only, which then stops it cleanly)."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        """Still running."""
        return self.proc.poll() is None

    def tail(self, chars: int = 3000) -> str:
        """The end of its log."""
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM, wait, then SIGKILL to whatever is left of its process group."""
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # its workers, if any outlived it
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()


@dataclass
class Demo:
    """One run of the demo: where it lives, what it started, what it saw."""

    root: Path
    as_json: bool
    children: list[Child] = field(default_factory=list)
    mailbox: Mailbox | None = None
    url: str = ""
    api_key: str = ""
    seen: dict[int, dict[str, Any]] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    done: bool = False  # the demo ran through: Ctrl-C from here on is the normal end

    # -- output ------------------------------------------------------------------------------

    def say(self, text: str = "") -> None:
        """One line for the person watching (stderr when stdout carries JSON)."""
        click.echo(text, err=self.as_json)

    # -- processes ---------------------------------------------------------------------------

    def vigil(self, *args: str) -> str:
        """Run a `vigil` command to its end; its standard output (an error says why not)."""
        env = dict(os.environ)
        env.pop("VIGIL_HOME", None)
        done = subprocess.run(
            [*VIGIL, *args], capture_output=True, text=True, env=env, timeout=600, check=False
        )
        if done.returncode != 0:
            raise VigilError(f"`vigil {' '.join(args)}` failed: {done.stderr.strip()[-2000:]}")
        return done.stdout.strip()

    def spawn(self, name: str, *args: str) -> Child:
        """Start a long-running `vigil` command, its output in logs/NAME.log."""
        log = self.root / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.pop("VIGIL_HOME", None)
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [*VIGIL, *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        child = Child(name, proc, log)
        self.children.append(child)
        return child

    def stop(self) -> None:
        """Stop every child (the agent before the server it reports to) and the mail sink."""
        for child in reversed(self.children):
            child.stop()
        if self.mailbox is not None:
            self.mailbox.stop()

    def wait(self, what: str, check: Callable[[], T | None], seconds: float = START_SECONDS) -> T:
        """Poll `check` until it gives something; fail with `what` and the logs after `seconds`
        or when a child exited."""
        deadline = time.monotonic() + seconds
        while True:
            for child in self.children:
                if not child.alive():
                    raise VigilError(
                        f"the {child.name} exited while waiting for {what}:\n{child.tail()}"
                    )
            found = check()
            if found:
                return found
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {c.name} ({c.log}):\n{c.tail()}" for c in self.children)
                raise VigilError(f"timed out waiting for {what}\n{logs}")
            time.sleep(POLL_SECONDS)

    # -- the server's HTTP API ---------------------------------------------------------------

    def get(self, path: str, **params: Any) -> Any:
        """GET from the server's API with the demo's API key; None when it does not answer."""
        import httpx

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:
            r = httpx.get(self.url + path, params=params, headers=headers, timeout=10)
        except httpx.TransportError:
            return None
        if r.status_code != 200:
            return None
        return r.json()

    def incidents(self) -> list[dict[str, Any]]:
        """Every incident of the demo's agent, all pages."""
        out: list[dict[str, Any]] = []
        body = self.get("/api/v1/incidents", host=HOST, limit=1000)
        while body is not None:
            out += body["items"]
            if not body["next"]:
                break
            body = self.get(body["next"].removeprefix(self.url))
        return out

    def agent(self) -> dict[str, Any] | None:
        """The demo agent as the server lists it."""
        body = self.get("/api/v1/agents")
        for item in (body or {}).get("items", []):
            if item["host"] == HOST:
                found: dict[str, Any] = item
                return found
        return None

    # -- showing what arrives ----------------------------------------------------------------

    def show_new_incidents(self, watch: Path) -> None:
        """Print each incident the first time it is seen."""
        for item in sorted(self.incidents(), key=lambda i: i["id"]):
            if item["id"] in self.seen:
                continue
            self.seen[item["id"]] = item
            where = os.path.relpath(item["path"], watch) if item["path"] else "-"
            if item["member"]:
                where += f" -> {item['member']}"
            how = item["kind"]
            if item["kind"] == "pdq":
                how += f" distance {item['distance']}"
                if item["transform"] and item["transform"] != "original":
                    how += f" ({item['transform']})"
            entry = item.get("entry") or {}
            self.say(
                f"  +{time.monotonic() - self.started:.1f}s  incident {item['id']}: {where}"
                f"  [{item['hashset']} entry {entry.get('id')}, category {entry.get('category')},"
                f" {how}]"
            )

    def show_new_mail(self, shown: int) -> int:
        """Print the mail received since `shown`; the number received."""
        assert self.mailbox is not None
        messages = self.mailbox.messages
        for m in messages[shown:]:
            self.say(f"  e-mail to {m['To']}: {str(m['Subject']).strip()}")
        return len(messages)


def _server_toml(url: str, smtp_port: int) -> str:
    return (
        "# The demo's server settings: e-mail alerts to the demo's mail sink.\n"
        f'[server]\npublic_url = "{url}/ui"\n\n'
        '[outbox]\nretry_base = "1s"\nretry_max = "10s"\n\n'
        "[[notify]]\n"
        'name = "demo-mail"\n'
        'type = "email"\n'
        'host = "127.0.0.1"\n'
        f"port = {smtp_port}\n"
        "starttls = false\n"
        'from = "vigil@demo.invalid"\n'
        'to = ["security-team@demo.invalid"]\n'
    )


def _agent_toml(watch: Path) -> str:
    return (
        "# The demo agent: one watched folder, quick heartbeats and catalog polls.\n"
        f"watch = [{json.dumps(str(watch))}]\n"
        'heartbeat = "2s"\n'
        'catalog_poll = "2s"\n'
    )


def run(directory: Path | None, *, once: bool, as_json: bool) -> int:
    """The whole demo; its exit status (0: every planted copy found, nothing else, each
    incident mailed)."""
    root = (directory or Path(tempfile.mkdtemp(prefix="vigil-demo-"))).resolve()
    if root.exists() and any(root.iterdir()):
        raise VigilError(f"{root} is not empty: give the demo a new or empty --dir")
    root.mkdir(parents=True, exist_ok=True)
    demo = Demo(root, as_json)

    def interrupted(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # SIGINT too: a shell starts a background job with it ignored, and Python then leaves it so.
    stops = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, interrupted) for s in stops}
    try:
        status = _run(demo, once=once)
    except KeyboardInterrupt:
        demo.say("\nstopping ...")
        status = 0 if demo.done else 130
    finally:
        # A second Ctrl-C must not leave children behind.
        for s in stops:
            signal.signal(s, signal.SIG_IGN)
        demo.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)
    demo.say(f"stopped: server, agent and mail sink. Everything is kept in {root}")
    return status


def _run(demo: Demo, *, once: bool) -> int:
    root = demo.root
    server_home, agent_home, watch = root / "server", root / "agent", root / "watched"
    for d in (server_home, agent_home, watch):
        d.mkdir()
    say = demo.say
    say(f"Vigil demo: the whole system on this machine, in {root}")

    smtp_port = free_port()
    demo.mailbox = Mailbox(smtp_port).start()
    say(f"[1/6] mail sink (aiosmtpd) listening on 127.0.0.1:{smtp_port}")

    port = free_port()
    demo.url = f"http://127.0.0.1:{port}"
    password = demo.vigil("server", "init", "--home", str(server_home))
    (server_home / "server.toml").write_text(_server_toml(demo.url, smtp_port))
    known = originals()
    hashlist = root / "demo-hashlist.vics.json"
    entries = write_list(hashlist, known)
    demo.vigil("--home", str(server_home), "hashset", "import", "--name", LIST_NAME, str(hashlist))
    server = demo.spawn(
        "server", "server", "run", "--home", str(server_home), "--listen", f"127.0.0.1:{port}"
    )
    demo.wait("the server to answer", lambda: demo.get("/healthz"))

    # `init` published catalog version 1 (empty), the import becomes version 2 once it runs.
    def list_published() -> int:
        ready = demo.get("/readyz") or {}
        version = int(ready.get("catalog_version") or 0)
        return version if version >= 2 else 0

    published = demo.wait("the demo list to be published", list_published)
    say(
        f"[2/6] server (pid {server.proc.pid}) on {demo.url}, SQLite in {server_home}; "
        f"hash list '{LIST_NAME}' ({entries} entries from scikit-image photos) imported and "
        f"published as signed catalog version {published}; e-mail alerts to the sink"
    )

    demo.api_key = demo.vigil("server", "apikey", "--user", "admin", "--home", str(server_home))
    token = demo.vigil("server", "token", "--home", str(server_home))
    (agent_home / "agent.toml").write_text(_agent_toml(watch))
    demo.vigil(
        "agent", "enroll", "--home", str(agent_home), "--server", demo.url,
        "--token", token, "--name", HOST,
    )  # fmt: skip
    agent = demo.spawn("agent", "agent", "run", "--home", str(agent_home))

    def on_catalog() -> dict[str, Any] | None:
        a = demo.agent()
        return a if a is not None and int(a["catalog_version"] or 0) >= published else None

    first = demo.wait("the agent to take the catalog", on_catalog)

    def next_heartbeat() -> bool:
        a = demo.agent()
        return a is not None and a["last_heartbeat"] != first["last_heartbeat"]

    # The agent names the new version just before its build is swapped in: one more heartbeat.
    demo.wait("the agent's next heartbeat", next_heartbeat)
    say(
        f"[3/6] agent (pid {agent.proc.pid}) enrolled as '{HOST}' with a single-use token, "
        f"catalog version {published} verified and in use, watching {watch}"
    )

    files = system_files(known)
    copies = [p for p, _ in files if p.of]
    say(f"[4/6] dropping {len(copies)} copies among {len(files)} files into {watch}:")
    demo.started = time.monotonic()
    for planted, data in files:
        path = watch / planted.where
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if planted.of:
            inside = f" ({planted.member})" if planted.member else ""
            say(f"  {planted.where}{inside}: {planted.how} of {planted.of}")

    say("[5/6] incidents arriving (GET /api/v1/incidents, as the admin's API key):")
    want = {(str(watch / p.where), p.member) for p in copies}

    def all_found() -> bool:
        demo.show_new_incidents(watch)
        return want <= {(i["path"], i["member"]) for i in demo.seen.values()}

    demo.wait("every planted copy's incident", all_found, FOUND_SECONDS)
    say("[6/6] e-mails at the sink (one per incident, from server.toml's [[notify]]):")
    shown = 0

    def mailed() -> bool:
        nonlocal shown
        demo.show_new_incidents(watch)
        shown = demo.show_new_mail(shown)
        return shown >= len(demo.seen)

    demo.wait("an e-mail for each incident", mailed, FOUND_SECONDS)
    time.sleep(2 * POLL_SECONDS)  # anything late (an unrelated file wrongly matched) shows too
    demo.show_new_incidents(watch)
    shown = demo.show_new_mail(shown)

    found = {(i["path"], i["member"]) for i in demo.seen.values()}
    extra = sorted(f"{p} {m or ''}".strip() for p, m in found - want)
    say()
    say(
        f"found {len(want & found)} of {len(want)} planted copies; "
        f"unrelated files reported: {', '.join(extra) or 'none'}; e-mails received: {shown}"
    )
    say(f"dashboard: {demo.url}/ui/   user: admin   password: {password}")
    say(f"API: curl -H 'Authorization: Bearer {demo.api_key}' {demo.url}/api/v1/incidents")
    say(f"logs: {root / 'logs'}")
    status = 0 if not extra and shown == len(demo.seen) else 2
    if demo.as_json:
        click.echo(
            json.dumps(
                {
                    "dir": str(root),
                    "dashboard": f"{demo.url}/ui/",
                    "api": f"{demo.url}/api/v1",
                    "admin_password": password,
                    "api_key": demo.api_key,
                    "watch": str(watch),
                    "pids": {c.name: c.proc.pid for c in demo.children},
                    "planted": [_planted(watch, p) for p, _ in files],
                    "incidents": sorted(demo.seen.values(), key=lambda i: i["id"]),
                    "emails": [
                        {"to": str(m["To"]), "subject": str(m["Subject"]).strip()}
                        for m in (demo.mailbox.messages if demo.mailbox else [])
                    ],
                }
            )
        )
        sys.stdout.flush()
    if once:
        return status
    say(f"running until Ctrl-C: drop more files into {watch} and watch them arrive")
    demo.done = True
    while True:
        for child in demo.children:
            if not child.alive():
                raise VigilError(f"the {child.name} exited:\n{child.tail()}")
        demo.show_new_incidents(watch)
        shown = demo.show_new_mail(shown)
        time.sleep(1.0)


def _planted(watch: Path, p: Planted) -> dict[str, Any]:
    return {"path": str(watch / p.where), "member": p.member, "of": p.of or None, "how": p.how}
