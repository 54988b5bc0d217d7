"""The server's incident API at scale: pages of a large incident table, and intake over HTTP.

Makes a server home (`vigil server init`, SQLite or `--db URL`), writes `--incidents` incidents
straight into its database (seeded, spread over `--hosts` agents, statuses and categories), then
starts a real `vigil server run` and measures over HTTP on the loopback:
- `GET /api/v1/incidents` pages of 100: the first page, a page deep in the table (the cursor
  `next` would carry after paging through 99% of it), and the first page under each filter
  (host, status, category, since); median and worst of `--repeat` requests each;
- intake: `POST /api/v1/incidents` batches of 100 new reports from one agent, reports per second.

    python -m benchmarks.bench_server --incidents 1000000 [--db postgresql://postgres@127.0.0.1/test]
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.server import run_cli, serve  # noqa: E402

from vigil.server.accounts import new_api_key  # noqa: E402
from vigil.server.credentials import AGENT_PREFIX, new_secret, secret_sha256  # noqa: E402
from vigil.server.models import Agent, Incident  # noqa: E402
from vigil.server.storage import Storage  # noqa: E402

STATUSES = ["new"] * 90 + ["in_review"] * 5 + ["confirmed"] * 3 + ["false_positive"] * 2
CATEGORIES = ["A", "B", "C", "1", "2"]
BATCH = 10_000


def fill(storage: Storage, n: int, hosts: int) -> tuple[str, float]:
    """Write `n` incidents over `hosts` agents; one agent's credential, and the seconds taken."""
    start = time.perf_counter()
    now = datetime.now(UTC)
    agents = []
    credential = ""
    with storage.session() as s:
        for h in range(hosts):
            credential = new_secret(AGENT_PREFIX)
            agent = Agent(
                id=str(uuid.uuid4()),
                host=f"pc-{h:05d}",
                secret_sha256=secret_sha256(credential),
                enrolled_at=now,
            )
            s.add(agent)
            agents.append(agent)
    table = Incident.__table__
    with storage.engine.begin() as conn:
        for first in range(0, n, BATCH):
            rows = []
            for i in range(first, min(n, first + BATCH)):
                agent = agents[i % hosts]
                seen = now - timedelta(seconds=n - i)
                digest = hashlib.sha256(str(i).encode()).hexdigest()
                rows.append(
                    {
                        "identity": digest,
                        "agent_id": agent.id,
                        "status": STATUSES[i % len(STATUSES)],
                        "host": agent.host,
                        "user": "user",
                        "owner": "user",
                        "path": f"/home/user/Downloads/{i}.jpg",
                        "member": None,
                        "size": 100_000 + i % 1000,
                        "media_type": "image/jpeg",
                        "hashset": "police",
                        "entry_id": str(i % 50_000),
                        "category": CATEGORIES[i % len(CATEGORIES)],
                        "kind": "md5",
                        "kinds": ["md5"],
                        "distance": 0,
                        "transform": None,
                        "segment": None,
                        "detection": "scheduled",
                        "fingerprints": {"md5": digest[:32], "sha256": digest},
                        "catalog_version": "1",
                        "first_seen": seen,
                        "last_seen": seen,
                        "seen_count": 1,
                        "updated_at": seen,
                    }
                )
            conn.execute(insert(table), rows)
    return credential, time.perf_counter() - start


def timed(client: httpx.Client, url: str, params: dict[str, object], repeat: int) -> str:
    """Median and worst milliseconds of `repeat` GETs."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        r = client.get(url, params=params)
        times.append((time.perf_counter() - t) * 1000)
        r.raise_for_status()
    return f"median {statistics.median(times):6.1f} ms, worst {max(times):6.1f} ms"


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=1_000_000)
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--db", help="database URL (default: SQLite under a temporary home)")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--batches", type=int, default=50)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        init = run_cli(
            "server", "init", "--home", str(home), *(["--db", args.db] if args.db else [])
        )
        if init.returncode != 0:
            sys.exit(init.stderr)
        storage = Storage.open(home)
        with storage.session() as s:
            key = new_api_key(s, "admin")
        credential, seconds = fill(storage, args.incidents, args.hosts)
        dialect = storage.engine.dialect.name
        storage.close()
        print(
            f"{dialect}: {args.incidents:,} incidents over {args.hosts:,} hosts written in {seconds:.1f} s"
        )

        with (
            serve(home) as url,
            httpx.Client(
                base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60
            ) as staff,
        ):
            deep = max(1, args.incidents // 100)
            since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
            cases: list[tuple[str, dict[str, object]]] = [
                ("first page", {}),
                ("deep page (99% in)", {"before": deep}),
                ("host filter", {"host": "pc-00007"}),
                ("status=confirmed", {"status": "confirmed"}),
                ("category=B", {"category": "B"}),
                ("since 1 h ago", {"since": since}),
            ]
            for name, params in cases:
                print(
                    f"GET /api/v1/incidents {name:<20} {timed(staff, '/api/v1/incidents', params, args.repeat)}"
                )

            with httpx.Client(
                base_url=url, headers={"Authorization": f"Bearer {credential}"}, timeout=60
            ) as agent:
                t = time.perf_counter()
                for b in range(args.batches):
                    batch = [
                        {
                            "id": f"b{b}-{i}",
                            "path": f"/new/{b}/{i}.jpg",
                            "hashset": "police",
                            "entry": {"id": str(i), "category": "A"},
                            "kind": "sha1",
                            "detection": "realtime",
                            "fingerprints": {"sha1": hashlib.sha1(f"{b}-{i}".encode()).hexdigest()},
                        }
                        for i in range(100)
                    ]
                    agent.post("/api/v1/incidents", json={"incidents": batch}).raise_for_status()
                elapsed = time.perf_counter() - t
                print(
                    f"POST /api/v1/incidents: {args.batches * 100 / elapsed:,.0f} reports/s "
                    f"(batches of 100, one agent, {elapsed / args.batches * 1000:.0f} ms a batch)"
                )


if __name__ == "__main__":
    main()
