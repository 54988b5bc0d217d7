"""The dashboard at scale: its pages over a large incident table, as a logged-in browser gets them.

Makes a server home (SQLite or `--db URL`), writes `--incidents` incidents straight into its
database (bench_server's filler: spread over `--hosts` agents, the last `--incidents` seconds,
statuses and categories), starts a real `vigil server run`, logs in through the login form and
times over loopback HTTP, median and worst of `--repeat` requests each:
- `/ui/incidents` (50 a page): first page, a page 99% deep, each filter;
- one incident's page (`/ui/incidents/ID`, with its history);
- the overview (`/ui/`) and its incidents-per-day chart (`/ui/charts/incidents-per-day`, which
  htmx fetches after the page): it groups every incident of the last 30 days, here all of them —
  the worst case — and is reused for a minute, so the worst figure is the one that counts.

    python -m benchmarks.bench_dashboard --incidents 1000000 [--db postgresql://postgres@127.0.0.1/test]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.server import run_cli, serve  # noqa: E402

from benchmarks.bench_server import fill, timed  # noqa: E402
from vigil.server.storage import Storage  # noqa: E402


def log_in(client: httpx.Client, password: str) -> None:
    """The login form, as a browser fills it."""
    page = client.get("/ui/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    r = client.post(
        "/ui/login",
        data={"username": "admin", "password": password, "csrf_token": token.group(1)},
    )
    if r.status_code != 303:
        sys.exit(f"login failed: {r.status_code} {r.text[:200]}")


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=1_000_000)
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--db", help="database URL (default: SQLite under a temporary home)")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        init = run_cli(
            "server", "init", "--home", str(home), *(["--db", args.db] if args.db else [])
        )
        if init.returncode != 0:
            sys.exit(init.stderr)
        password = init.stdout.strip()
        storage = Storage.open(home)
        _credential, seconds = fill(storage, args.incidents, args.hosts)
        dialect = storage.engine.dialect.name
        storage.close()
        print(
            f"{dialect}: {args.incidents:,} incidents over {args.hosts:,} hosts written in "
            f"{seconds:.1f} s"
        )
        with serve(home) as url, httpx.Client(base_url=url, timeout=120) as browser:
            log_in(browser, password)
            deep = max(1, args.incidents // 100)
            since = (datetime.now(UTC) - timedelta(hours=1)).date().isoformat()
            cases: list[tuple[str, str, dict[str, object]]] = [
                ("incidents, first page", "/ui/incidents", {}),
                ("incidents, 99% deep", "/ui/incidents", {"before": deep}),
                ("incidents, host", "/ui/incidents", {"host": "pc-00007"}),
                ("incidents, status=confirmed", "/ui/incidents", {"status": "confirmed"}),
                ("incidents, category=B", "/ui/incidents", {"category": "B"}),
                ("incidents, since today", "/ui/incidents", {"since": since}),
                ("one incident", f"/ui/incidents/{args.incidents // 2}", {}),
                ("overview", "/ui/", {}),
                # Drawn at most once a minute: the first request pays, the rest reuse it.
                ("incidents-per-day chart", "/ui/charts/incidents-per-day", {}),
            ]
            for name, path, params in cases:
                print(f"GET {name:<30} {timed(browser, path, params, args.repeat)}")


if __name__ == "__main__":
    main()
