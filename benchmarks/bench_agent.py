"""Detection latency of the agent: a file closed in a watched folder → its incident in the
server's API.

Starts a real `vigil server run` (SQLite) and a real `vigil agent run` watching a folder, with
the demo list of tests/support/planted in the agent's catalog; drops `--files` known files (each a
distinct re-encoding of a known photo, a PDQ match) one every `--gap` seconds, and polls
`GET /api/v1/incidents` to note when each one's incident appears. Prints p50, p90, p99 and the
worst latency; the agent's footprint (RSS and PSS of its processes: PSS shares the pages the
scanner and its workers have in common among them) busy, at the end of the files, and idle, once
its scanner ended (`--scanner-idle`); its CPU use while idle for `--idle` seconds (agent.toml's
defaults otherwise: heartbeat and catalog poll every 60 s).

`--catalog N` adds a set of N synthetic entries (MD5, SHA-1, SHA-256, PDQ each:
benchmarks/gen_vics.py) to the server's catalog first, which the agent receives signed and
compiles like any other: the footprint with a catalog of that size.

`--update K` (with `--catalog N`) ends with a catalog update: a file of random bytes, which
matches nothing, lies in the watched folder; the next release of the synthetic list, with K of
its N entries replaced and one of the new ones that file's MD5, is imported on the server
(`vigil hashset import`, another process); the time from the import's start (and from its end)
to the server's new version, to the agent having it applied, and to the file's incident in the
API; the bytes the agent downloaded for it (its log). The agent polls the catalog every
`--catalog-poll` (agent.toml's default is 60 s: up to that much more).

    python -m benchmarks.bench_agent --files 200 [--gap 0.25] [--catalog 1000000 [--update 1000]]
        [--watch-backend auto|inotify|watchdog|polling]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.agent import AgentHome, Fleet, incidents  # noqa: E402
from support.planted import build, encode, photo  # noqa: E402
from support.server import VIGIL, Server, run_cli, serve  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--gap", type=float, default=0.25, help="seconds between two files")
    ap.add_argument("--idle", type=float, default=60, help="seconds of idleness measured after")
    ap.add_argument(
        "--scanner-idle", default="30s", help="agent.toml's scanner_idle (the agent's default: 5m)"
    )
    ap.add_argument("--catalog", type=int, default=0, help="synthetic entries added on the server")
    ap.add_argument("--update", type=int, default=0, help="entries replaced by a catalog update")
    ap.add_argument("--catalog-poll", default="5s", help="agent.toml's catalog_poll")
    ap.add_argument(
        "--watch-backend",
        default="auto",
        choices=["auto", "inotify", "watchdog", "polling"],
        help="agent.toml's watch_backend",
    )
    args = ap.parse_args()
    if args.update and not args.catalog:
        ap.error("--update needs --catalog")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        with rig(base, _synthetic(base, args.catalog)) as (server, fleet):
            url = server.url
            agent = fleet.enrol(server)
            # The defaults (heartbeat 60 s) but for the scanner's idle time.
            (agent.home / "agent.toml").write_text(
                f'scanner_idle = "{args.scanner_idle}"\nwatch_backend = "{args.watch_backend}"\n'
                + (f'catalog_poll = "{args.catalog_poll}"\n' if args.update else "")
            )
            try:
                t0 = time.monotonic()
                agent.start()
                agent.wait_ready()
                print(f"daemon started in {time.monotonic() - t0:.2f} s")
                version = _wait_catalog(url, agent)
                print(
                    f"catalog version {version} compiled and in use by the agent's scanner "
                    f"{time.monotonic() - t0:.1f} s after the start (status written every "
                    "heartbeat)"
                )
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
                print("busy (the end of the files):", end=" ")
                _footprint(agent.proc.pid)
                t1 = time.monotonic()
                while _footprint(agent.proc.pid, quiet=True)[2] > 1:
                    time.sleep(1)
                print(f"scanner ended {time.monotonic() - t1:.0f} s after the last incident")
                print("idle:", end=" ")
                _, cpu_before, _ = _footprint(agent.proc.pid)
                time.sleep(args.idle)
                _, cpu_after, _ = _footprint(agent.proc.pid, quiet=True)
                print(
                    f"idle: {100 * (cpu_after - cpu_before) / args.idle:.3f}% of a core "
                    f"over {args.idle:g} s"
                )
                if args.update:
                    _update(base, server, key, agent, args.catalog, args.update)
            finally:
                fleet.stop_all()


def _update(base: Path, server: Server, key: str, agent: AgentHome, count: int, k: int) -> None:
    """A catalog update of `k` of the synthetic list's `count` entries, one of them a file's
    already in the watched folder: how long until the agent reports that file, and what it
    downloaded."""
    import hashlib
    import os

    import httpx

    from benchmarks import gen_vics

    data = os.urandom(1 << 16)
    target = agent.watch / f"update-{time.time_ns()}.bin"
    target.write_bytes(data)
    time.sleep(5)  # scanned, matching nothing
    assert not [i for i in incidents(server, key, agent.host) if i["path"] == str(target)]
    (base / "release").mkdir()
    path = base / "release" / f"synthetic-{count}.json"  # the same set name: a new release
    with open(path, "w") as f:
        gen_vics.write(count, f, replace=k, md5s=(hashlib.md5(data).hexdigest(),))
    before = int(httpx.get(f"{server.url}/readyz", timeout=30).json()["catalog_version"])
    log_at = agent.log.stat().st_size
    t0 = time.monotonic()
    subprocess.run([*VIGIL, "--home", str(server.home), "hashset", "import", str(path)], check=True)
    t1 = time.monotonic()
    published = applied = found = None
    deadline = time.monotonic() + 1800
    while found is None and time.monotonic() < deadline:
        now = time.monotonic()
        if published is None:
            version = httpx.get(f"{server.url}/readyz", timeout=30).json()["catalog_version"]
            if int(version) > before:
                published = now
        log = agent.log.read_bytes()[log_at:].decode(errors="replace")
        if applied is None and "received and applied" in log:
            applied = now
        if any(i["path"] == str(target) for i in incidents(server, key, agent.host)):
            found = now
        time.sleep(0.1)
    if found is None:
        raise SystemExit("the updated entry did not match in 30 minutes")
    lines = [ln for ln in log.splitlines() if "received and applied" in ln or "took build" in ln]
    lines += [ln for ln in log.splitlines() if "scanner started" in ln]
    print(f"catalog update of {k:,} of {count:,} entries:")
    print(f"  import on the server (another process): {t1 - t0:.1f} s")
    for label, at in (("published", published), ("applied by the agent", applied)):
        if at is not None:
            print(
                f"  {label}: {at - t0:.1f} s after the import began, {at - t1:.1f} s after it ended"
            )
    print(
        f"  the file's incident in the API: {found - t0:.1f} s after the import began, "
        f"{found - t1:.1f} s after it ended"
    )
    for ln in lines:
        print(f"  agent: {ln.strip()}")


@contextmanager
def rig(base: Path, lists: Sequence[Path] = ()) -> Iterator[tuple[Server, Fleet]]:
    """A real `vigil server run` (SQLite, in `base`) holding the demo list of tests/support and
    `lists`, and a fleet of agents whose homes start with the demo list in their catalog."""
    (base / "planted").mkdir()
    tree = build(base / "planted")
    catalog = base / "catalog"
    done = run_cli("--home", str(catalog), "hashset", "import", str(tree.hashlist))
    assert done.returncode == 0, done.stderr
    home = base / "server"
    init = run_cli("server", "init", "--home", str(home))
    assert init.returncode == 0, init.stderr
    for source in (tree.hashlist, *lists):
        t = time.monotonic()
        # Not run_cli: its two minutes are too short for a list of a million.
        subprocess.run([*VIGIL, "--home", str(home), "hashset", "import", str(source)], check=True)
        print(f"imported {source.name} on the server in {time.monotonic() - t:.0f} s")
    with serve(home) as url:
        fleet = Fleet(base, lambda h: shutil.copytree(catalog, h))
        try:
            yield Server(home, url, "", init.stdout.strip(), init), fleet
        finally:
            fleet.stop_all()


def _synthetic(base: Path, count: int) -> list[Path]:
    """A VICS list of `count` random entries (none of them a real photo's), or none."""
    if not count:
        return []
    from benchmarks import gen_vics

    path = base / f"synthetic-{count}.json"
    with open(path, "w") as f:
        gen_vics.write(count, f)
    return [path]


def _wait_catalog(url: str, agent: AgentHome) -> str:
    """Until the agent's scanner runs a build of the catalog version the server publishes."""
    import httpx

    def version() -> int:
        return int(httpx.get(f"{url}/readyz", timeout=30).json().get("catalog_version") or 0)

    # The server publishes what was imported before it started: version 1 is `init`'s empty one.
    deadline = time.monotonic() + 1800
    seen = (0, 0)
    while seen[0] <= 1 or seen[0] != seen[1]:
        time.sleep(5)
        seen = (seen[1], version())
        if time.monotonic() > deadline:
            raise SystemExit("the server published nothing in 30 minutes")
    published = str(seen[1])
    while time.monotonic() < deadline:
        scanner = agent.status().get("scanner") or {}
        if scanner.get("catalog_version") == published:
            return published
        time.sleep(0.5)
    raise SystemExit(f"the agent did not take catalog version {published} in 30 minutes")


def _pss_kib(pid: str) -> int:
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    return next((int(ln.split()[1]) for ln in rollup.splitlines() if ln.startswith("Pss:")), 0)


def _footprint(pgid: int, quiet: bool = False) -> tuple[float, float, int]:
    """RSS, CPU time and number of processes of the agent's process group (the daemon, its
    scanner and the scanner's workers), from /proc; PSS printed beside RSS."""
    import os

    tick = os.sysconf("SC_CLK_TCK")
    rss_main = rss = cpu = pss = 0.0
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
        pss += _pss_kib(entry) / 1024
        if int(entry) == pgid:
            rss_main = kib / 1024
        cpu += (int(fields[11]) + int(fields[12])) / tick
    if not quiet:
        print(
            f"agent: {count} process(es), RSS {rss:.0f} MiB in all (daemon {rss_main:.0f} MiB), "
            f"PSS {pss:.0f} MiB in all, CPU {cpu:.1f} s"
        )
    return rss, cpu, count


if __name__ == "__main__":
    main()
