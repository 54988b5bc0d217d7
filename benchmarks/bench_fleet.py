"""A fleet against one server: N agents heartbeating each minute, and a burst of incidents.

Makes a server home (`vigil server init`, SQLite or `--db URL`), enrols `--agents` agents
straight in its database (each with its own credential), starts a real `vigil server run`, and
drives it over loopback HTTP from this process for `--seconds` (bounded):
- heartbeats, open loop: every agent sends one per minute at its own offset in the minute, so
  the server sees agents/60 heartbeats a second whatever it answers; a heartbeat's latency is
  counted from the moment it was due (time spent waiting for a connection included), so a
  server that falls behind shows it;
- half-way, a burst: `--burst-agents` agents each send a batch of `--burst-size` new incident
  reports, all due at the same instant;
and prints rates and latency percentiles, the CPU of the server's processes and of PostgreSQL, and
the server's heartbeat batches. The client holds at most `--connections` connections for
heartbeats and as many apart for the burst (a real fleet would hold one each; the server sees the
same request rate). `--workers N` runs `vigil server run --workers N`.

    python -m benchmarks.bench_fleet --agents 30000 --db postgresql://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, insert, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.server import run_cli, serve  # noqa: E402

from vigil.server.credentials import AGENT_PREFIX, new_secret, secret_sha256  # noqa: E402
from vigil.server.models import Agent  # noqa: E402
from vigil.server.storage import Storage  # noqa: E402


def enrol(storage: Storage, n: int) -> list[str]:
    """Enrol `n` agents directly in the database; their credentials."""
    now = datetime.now(UTC)
    credentials = [new_secret(AGENT_PREFIX) for _ in range(n)]
    rows = [
        {
            "id": str(uuid.uuid4()),
            "host": f"pc-{i:05d}",
            "secret_sha256": secret_sha256(c),
            "enrolled_at": now,
        }
        for i, c in enumerate(credentials)
    ]
    with storage.engine.begin() as conn:
        for first in range(0, n, 5000):
            conn.execute(insert(Agent.__table__), rows[first : first + 5000])
    return credentials


def percentiles(ms: list[float]) -> str:
    """p50, p99 and the worst of `ms`."""
    if not ms:
        return "none"
    ordered = sorted(ms)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered):7.1f} ms  p99 {p99:7.1f} ms  max {ordered[-1]:7.1f} ms"


def report_batch(agent: int, size: int) -> dict[str, object]:
    """`size` new incident reports of one agent (distinct files, distinct entries)."""
    items = []
    for k in range(size):
        digest = hashlib.sha1(f"{agent}-{k}".encode()).hexdigest()
        items.append(
            {
                "id": f"burst-{agent}-{k}",
                "path": f"/home/user{agent}/Downloads/{k}.jpg",
                "hashset": "police",
                "entry": {"id": str(k), "category": "A"},
                "kind": "sha1",
                "detection": "realtime",
                "fingerprints": {"sha1": digest},
                "catalog_version": "1",
            }
        )
    return {"incidents": items}


def _stat(pid: str) -> list[str]:
    # The fields after the command's name (which may hold spaces): state, ppid, ...
    return (Path("/proc") / pid / "stat").read_text().rsplit(")", 1)[1].split()


def server_cpu(home: Path) -> float:
    """CPU seconds used so far by the `vigil server run` of `home` and its worker processes
    (every thread of each; the database server's processes are not counted)."""
    parents: set[str] = set()
    ppid: dict[str, str] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            ppid[proc.name] = _stat(proc.name)[1]
        except OSError:
            continue
        if b"run" in cmdline and str(home).encode() in cmdline:
            parents.add(proc.name)
    ours = set(parents)
    # Its workers (spawned: their command line does not name the home) and their children.
    while grown := {p for p, parent in ppid.items() if parent in ours} - ours:
        ours |= grown
    total = 0.0
    for pid in ours:
        try:
            fields = _stat(pid)
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total if ours else float("nan")


def database_cpu() -> float:
    """CPU seconds used so far by every `postgres` process on this host (other users of the
    database server included)."""
    total = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "comm").read_text().strip() != "postgres":
                continue
            fields = _stat(proc.name)
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def batches(url: str) -> str:
    """What the server's /metrics says of its heartbeat batches."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    found: dict[str, float] = {}
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=30).text):
        for sample in family.samples:
            if sample.name.startswith("vigil_server_heartbeat_") and not sample.labels:
                found[sample.name] = sample.value
    count = found.get("vigil_server_heartbeat_batch_count", 0)
    if not count:
        return "heartbeat batches: none"
    return (
        f"heartbeat batches: {count:,.0f} written, {found['vigil_server_heartbeat_batch_sum'] / count:.0f} "
        f"heartbeats each on average, "
        f"{found['vigil_server_heartbeat_write_seconds_sum'] / count * 1000:.1f} ms a write on average"
    )


class Connection:
    """One keep-alive HTTP/1.1 connection to the server (a minimal client: the generator must
    cost far less than the server it drives, which httpx's pool does not at thousands of
    queued requests)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, credential: str, body: bytes) -> int:
        """POST `body` as JSON; the response's status."""
        for attempt in (1, 2):
            fresh = self.writer is None
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            try:
                return await self._exchange(path, credential, body)
            except (OSError, IndexError, ValueError, asyncio.IncompleteReadError):
                self.writer.close()
                self.writer = None
                # The server closes idle keep-alive connections (uvicorn: after 5 s): once
                # on a reused connection, open a new one and send again.
                if fresh or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _exchange(self, path: str, credential: str, body: bytes) -> int:
        assert self.reader is not None and self.writer is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: Bearer {credential}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.writer.write(head + body)
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return status


async def drive(url: str, home: Path, credentials: list[str], args: argparse.Namespace) -> None:
    """Send the heartbeats and the burst; print what the server did."""
    load_before = "/".join(f"{x:.1f}" for x in os.getloadavg())
    rng = random.Random(7)
    n = len(credentials)
    host, port = url.removeprefix("http://").rsplit(":", 1)
    failures: dict[str, int] = {}
    beats: list[float] = []
    burst: list[float] = []
    # (due time, path, credential, body, where its latency goes), sorted by due time.
    plan: list[tuple[float, str, str, bytes, list[float]]] = []
    for i, credential in enumerate(credentials):
        # Every agent once a minute, at its own offset: agents/60 a second, for `seconds`.
        t = (i + rng.random()) / n * 60
        while t < args.seconds:
            body = {"catalog_version": "1", "spool_length": 0, "watch": {"healthy": True}}
            plan.append((t, "/api/v1/heartbeat", credential, json.dumps(body).encode(), beats))
            t += 60
    burst_agents = rng.sample(range(n), min(n, args.burst_agents))
    for a in burst_agents:
        body = json.dumps(report_batch(a, args.burst_size)).encode()
        plan.append((args.seconds / 2, "/api/v1/incidents", credentials[a], body, burst))
    plan.sort(key=lambda p: p[0])

    # Heartbeats and the burst on connections of their own: a burst that fills every
    # connection of a shared pool would hold heartbeats back in this client, not in the server
    # (a real fleet holds a connection per agent).
    Item = tuple[float, str, str, bytes, list[float]]
    beat_queue: asyncio.Queue[Item | None] = asyncio.Queue()
    burst_queue: asyncio.Queue[Item | None] = asyncio.Queue()

    async def connection(queue: asyncio.Queue[Item | None]) -> None:
        conn = Connection(host, int(port))
        while (item := await queue.get()) is not None:
            due, path, credential, body, into = item
            try:
                status = await conn.post(path, credential, body)
                reason = str(status)
            except (OSError, IndexError, ValueError, asyncio.IncompleteReadError) as e:
                status, reason = 0, type(e).__name__
            if status == 200:
                into.append((time.perf_counter() - due) * 1000)
            else:
                failures[reason] = failures.get(reason, 0) + 1

    workers = [asyncio.create_task(connection(beat_queue)) for _ in range(args.connections)]
    bursting = min(len(burst_agents), args.connections)
    workers += [asyncio.create_task(connection(burst_queue)) for _ in range(bursting)]
    start = time.perf_counter() + 1.0
    cpu0 = os.times()
    server0 = server_cpu(home)
    database0 = database_cpu()
    for offset, path, credential, body, into in plan:
        due = start + offset
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        (burst_queue if into is burst else beat_queue).put_nowait(
            (due, path, credential, body, into)
        )
    for _ in range(args.connections):
        beat_queue.put_nowait(None)
    for _ in range(bursting):
        burst_queue.put_nowait(None)
    await asyncio.gather(*workers)
    wall = time.perf_counter() - start
    cpu1 = os.times()
    server_seconds = server_cpu(home) - server0
    database_seconds = database_cpu() - database0

    minutes = args.seconds / 60
    reports = len(burst) * args.burst_size
    burst_seconds = max(burst) / 1000 if burst else float("nan")
    print(
        f"{n:,} agents, {minutes:.1f} min of heartbeats ({n / 60:,.0f}/s due), "
        f"{len(burst_agents):,} agents bursting {args.burst_size} reports each; "
        f"{args.connections} client connections for heartbeats, as many for the burst; {args.workers} server process(es); "
        f"load average before: {load_before}"
    )
    print(f"heartbeats answered: {len(beats):,} in {wall:.1f} s ({len(beats) / wall:,.0f}/s)")
    print(f"  latency from due time: {percentiles(beats)}")
    print(
        f"burst: {reports:,} reports accepted in {burst_seconds:.2f} s "
        f"({reports / burst_seconds:,.0f} reports/s, heartbeats still flowing)"
    )
    print(f"  batch latency from due time: {percentiles(burst)}")
    print(f"failures: {failures or 'none'}")
    requests = len(beats) + len(burst)
    print(
        f"server CPU: {server_seconds:.1f} s, {server_seconds / wall:.0%} of a core; "
        f"{server_seconds / max(1, len(beats)) * 1000:.2f} ms a heartbeat "
        "(burst included)" + f" over {requests:,} requests"
    )
    if args.db:
        print(
            f"PostgreSQL CPU (every postgres process on the host): {database_seconds:.1f} s, "
            f"{database_seconds / wall:.0%} of a core; "
            f"{database_seconds / max(1, len(beats)) * 1000:.2f} ms a heartbeat"
        )
    print(batches(url))
    print(
        f"load generator CPU: {(cpu1.user + cpu1.system - cpu0.user - cpu0.system) / wall:.0%} "
        "of a core (same machine as the server)"
    )


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=30_000)
    parser.add_argument("--seconds", type=float, default=120, help="how long heartbeats flow")
    parser.add_argument("--burst-agents", type=int, default=1000)
    parser.add_argument("--burst-size", type=int, default=10)
    parser.add_argument(
        "--connections", type=int, default=200, help="client connections for heartbeats"
    )
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    parser.add_argument(
        "--access-log", action="store_true", help="the server logs a line per request"
    )
    parser.add_argument("--db", help="database URL (default: SQLite under a temporary home)")
    parser.add_argument("--server-log", metavar="FILE", help="keep the server's log here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        schema = f"vigil_fleet_{os.getpid()}"
        db = args.db
        admin = None
        if db and db.startswith("postgresql"):
            # A schema of its own, dropped at the end.
            admin = create_engine(db.replace("postgresql://", "postgresql+psycopg://", 1))
            with admin.begin() as conn:
                conn.execute(text(f"CREATE SCHEMA {schema}"))
            db += ("&" if "?" in db else "?") + f"options=-csearch_path%3D{schema}"
        try:
            init = run_cli("server", "init", "--home", str(home), *(["--db", db] if db else []))
            if init.returncode != 0:
                sys.exit(init.stderr)
            storage = Storage.open(home)
            t = time.perf_counter()
            credentials = enrol(storage, args.agents)
            print(
                f"{storage.engine.dialect.name}: {args.agents:,} agents enrolled in "
                f"{time.perf_counter() - t:.1f} s"
            )
            storage.close()
            try:
                options = ["--workers", str(args.workers)]
                if args.access_log:
                    options.append("--access-log")
                with serve(home, *options) as url:
                    asyncio.run(drive(url, home, credentials, args))
            finally:
                if args.server_log:
                    Path(args.server_log).write_bytes((home / "server.log").read_bytes())
        finally:
            if admin is not None:
                with admin.begin() as conn:
                    conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
                admin.dispose()


if __name__ == "__main__":
    main()
