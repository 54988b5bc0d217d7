"""Detection latency of the agent: a file closed in a watched folder → its incident in the
server's API.

Starts a real `vigil server run` (SQLite) and a real `vigil agent run` watching a folder, with
the demo list of tests/support/planted in the agent's catalog; drops `--files` known files (each a
distinct re-encoding of a known photo, a PDQ match) one every `--gap` seconds, and polls
`GET /api/v1/incidents` to note when each one's incident appears. Prints p50, p90, p99 and the
worst latency, the agent's RSS and CPU time at the end, and its CPU use while idle for
`--idle` seconds (agent.toml's defaults: heartbeat and catalog poll every 60 s).

    python -m benchmarks.bench_agent --files 200 [--gap 0.25]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.agent import Fleet, incidents  # noqa: E402
from support.planted import build, encode, photo  # noqa: E402
from support.server import Server, run_cli, serve  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--gap", type=float, default=0.25, help="seconds between two files")
    ap.add_argument("--idle", type=float, default=60, help="seconds of idleness measured after")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "planted").mkdir()
        tree = build(base / "planted")
        catalog = base / "catalog"
        done = run_cli("--home", str(catalog), "hashset", "import", str(tree.hashlist))
        assert done.returncode == 0, done.stderr
        home = base / "server"
        init = run_cli("server", "init", "--home", str(home))
        assert init.returncode == 0, init.stderr
        with serve(home) as url:
            server = Server(home, url, "", init.stdout.strip(), init)
            fleet = Fleet(base, lambda h: shutil.copytree(catalog, h))
            agent = fleet.enrol(server)
            (agent.home / "agent.toml").write_text("")  # the defaults (heartbeat 60 s)
            try:
                agent.start()
                agent.wait_ready()
                key = server.api_key("admin")
                photos = [encode(photo("chelsea"), quality=40 + i % 55) for i in range(args.files)]
                closed: dict[str, float] = {}
                seen: dict[str, float] = {}
                stop = threading.Event()

                def poll() -> None:
                    while not stop.is_set():
                        now = time.monotonic()
                        for i in incidents(server, key, agent.host):
                            seen.setdefault(i["path"], now)
                        time.sleep(0.05)

                poller = threading.Thread(target=poll, daemon=True)
                poller.start()
                for n, data in enumerate(photos):
                    path = agent.watch / f"{n:04d}-{time.time_ns()}.jpg"
                    with open(path, "wb") as f:
                        f.write(data)
                    closed[str(path)] = time.monotonic()
                    time.sleep(args.gap)
                deadline = time.monotonic() + 300
                while (
                    len(seen.keys() & closed.keys()) < len(closed) and time.monotonic() < deadline
                ):
                    time.sleep(0.2)
                stop.set()
                poller.join()
                lat = sorted(seen[p] - closed[p] for p in closed if p in seen)
                missing = len(closed) - len(lat)
                q = statistics.quantiles(lat, n=100)
                print(f"files: {len(closed)}, incidents: {len(lat)}, missing: {missing}")
                print(
                    f"latency file closed -> incident in the API: p50 {q[49]:.2f} s, "
                    f"p90 {q[89]:.2f} s, p99 {q[98]:.2f} s, worst {lat[-1]:.2f} s"
                )
                assert agent.proc is not None
                _, cpu_before = _footprint(agent.proc.pid)
                time.sleep(args.idle)
                _, cpu_after = _footprint(agent.proc.pid)
                print(
                    f"idle: {100 * (cpu_after - cpu_before) / args.idle:.2f}% of a core "
                    f"over {args.idle:g} s"
                )
            finally:
                fleet.stop_all()


def _footprint(pgid: int) -> tuple[float, float]:
    """RSS and CPU time of the agent's process group (the daemon and its scan workers), from
    /proc."""
    import os

    tick = os.sysconf("SC_CLK_TCK")
    rss_main = rss = cpu = 0.0
    count = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) != pgid:  # the process group
            continue
        count += 1
        kib = next((int(ln.split()[1]) for ln in status.splitlines() if ln.startswith("VmRSS:")), 0)
        rss += kib / 1024
        if int(entry) == pgid:
            rss_main = kib / 1024
        cpu += (int(fields[11]) + int(fields[12])) / tick
    print(
        f"agent: {count} process(es), RSS {rss:.0f} MiB in all (main {rss_main:.0f} MiB), "
        f"CPU {cpu:.1f} s"
    )
    return rss, cpu


if __name__ == "__main__":
    main()
