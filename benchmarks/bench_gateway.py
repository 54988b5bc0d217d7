"""The gateway's cost as a browser sees it: through Squid on loopback, the same downloads with
and without `vigil gateway run` behind it, in one run.

Starts a local origin (tests/gateway/squid_fixture.py: bodies written at once), two Debian
Squids with the same squid.conf except the ICAP lines (one plain, one calling the gateway), and
a gateway whose catalog holds the demo list (tests/support/planted); the photos served are not
in it, as most traffic is not. Prints, for JPEG photos of about 50 KB, 300 KB, 1 MB and 3 MB:
latency p50/p99 through each Squid and the latency the gateway adds (p50/p99 of the paired
differences, plain and gatewayed fetches alternating); then requests per second and images per
second with `--clients` concurrent clients over the whole photo set, and the throughput of
non-media downloads (1 MB HTML and binary) with and without the gateway, as ratios (each Squid's
`--seconds` cut into `--slices` runs, alternating, so that other load on the machine falls on
both alike).

    python -m benchmarks.bench_gateway [--mode monitor|block] [--rounds 40] [--seconds 15]

`--mode block` adds the block-mode squid.conf lines (docs/gateway.md, "Squid") to both Squids
(monitor mode: its `read_ahead_gap` line);
`--line LINE` adds another, `--gateway-option OPT` passes an option to the gateway,
`--skip-type REGEX` keeps responses of that declared type away from the gateway (the optional
lines of docs/gateway.md, "Skipping declared types").
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from gateway.squid_fixture import (  # noqa: E402
    BLOCK_MODE_LINES,
    MONITOR_MODE_LINES,
    SquidProcess,
    icap_lines,
    squid_folder,
    start_origin,
    start_squid,
)
from support.gateway import start_gateway  # noqa: E402
from support.planted import build, encode, photo  # noqa: E402
from support.server import run_cli  # noqa: E402

TARGETS = {"50 KB": 50_000, "300 KB": 300_000, "1 MB": 1_000_000, "3 MB": 3_000_000}
PHOTOS = ["camera", "moon", "coins", "horse", "hubble_deep_field", "motorcycle_left", "brick"]
TIMEOUT = 60


def jpeg_near(name: str, target: int) -> bytes:
    """A JPEG of photo `name`, scaled until its size is near `target` bytes."""
    img = photo(name)
    scale, best = 1.0, b""
    for _ in range(12):
        size = (max(16, int(img.width * scale)), max(16, int(img.height * scale)))
        best = encode(img.resize(size), quality=92)
        ratio = target / len(best)
        if 0.9 < ratio < 1.1:
            break
        scale *= ratio**0.5
    return best


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of values."""
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def timed_get(client: httpx.Client, url: str, expect: int) -> float:
    """Seconds for one GET through the client's proxy (whole body read, checked)."""
    start = time.perf_counter()
    r = client.get(url)
    took = time.perf_counter() - start
    if r.status_code != 200 or len(r.content) != expect:
        raise AssertionError(f"{url}: {r.status_code}, {len(r.content)} bytes of {expect}")
    return took


def throughput(
    squid: SquidProcess, urls: list[tuple[str, int]], clients: int, seconds: float
) -> tuple[int, int, float, list[str]]:
    """(requests, bytes, seconds, failures) fetched by `clients` threads cycling through
    `urls`."""
    stop = threading.Event()
    counts = [0] * clients
    sizes = [0] * clients
    errors: list[str] = []

    def run(i: int) -> None:
        with httpx.Client(proxy=squid.proxy, timeout=TIMEOUT) as c:
            n = i
            while not stop.is_set():
                url, size = urls[n % len(urls)]
                try:
                    timed_get(c, url, size)
                except Exception as e:  # noqa: BLE001 — counted and reported
                    errors.append(f"{url}: {e}")
                    n += 1
                    continue
                counts[i] += 1
                sizes[i] += size
                n += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(TIMEOUT)
    took = time.perf_counter() - start
    return sum(counts), sum(sizes), took, errors


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and every process under it (the gateway's workers)."""
    import psutil

    total = 0.0
    proc = psutil.Process(pid)
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system
    return total


def wait_idle(pid: int, limit: float = 300) -> float:
    """Wait until the process uses under 5% of a core (monitor mode fingerprints streamed
    bodies after answering: a backlog would be measured with the next test); seconds waited."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        before = cpu_seconds(pid)
        time.sleep(0.5)
        if cpu_seconds(pid) - before < 0.025:
            break
    return time.monotonic() - start


def listed_home(base: Path) -> Path:
    """A gateway home under `base` whose local catalog holds the demo list (tests/support/
    planted; the photos and pages the benchmarks fetch are not in it)."""
    (base / "planted").mkdir()
    tree = build(base / "planted")
    home = base / "gateway"
    done = run_cli("--home", str(home), "hashset", "import", str(tree.hashlist))
    assert done.returncode == 0, done.stderr
    return home


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=["monitor", "block"], default="monitor")
    ap.add_argument("--rounds", type=int, default=40, help="fetches per photo size and Squid")
    ap.add_argument("--clients", type=int, default=4, help="concurrent clients for throughput")
    ap.add_argument(
        "--seconds", type=float, default=15, help="seconds of throughput runs per Squid"
    )
    ap.add_argument(
        "--slices",
        type=int,
        default=6,
        help="throughput runs per Squid, alternating (load that changes hits both alike)",
    )
    ap.add_argument(
        "--line", action="append", default=[], help="another squid.conf line for both Squids"
    )
    ap.add_argument(
        "--gateway-option", action="append", default=[], help="another `vigil gateway run` option"
    )
    ap.add_argument(
        "--skip-type",
        action="append",
        default=[],
        metavar="REGEX",
        help="a rep_mime_type pattern the gatewayed Squid does not send to the gateway",
    )
    args = ap.parse_args()
    extra = [
        *(BLOCK_MODE_LINES if args.mode == "block" else MONITOR_MODE_LINES),
        *args.line,
    ]
    with tempfile.TemporaryDirectory() as tmp:
        home = listed_home(Path(tmp))
        origin = start_origin()
        gateway = start_gateway(home, "--mode", args.mode, *args.gateway_option)
        plain = start_squid(squid_folder(), list(extra))
        gated = start_squid(
            squid_folder(), [*icap_lines(gateway.port, skip_types=args.skip_type), *extra]
        )
        cleanup: list[Callable[[], object]] = [
            origin.stop,
            gateway.stop,
            plain.stop,
            gated.stop,
            lambda: shutil.rmtree(plain.folder, ignore_errors=True),
            lambda: shutil.rmtree(gated.folder, ignore_errors=True),
        ]
        try:
            print(f"squid 5.7 (Debian), gateway mode {args.mode}, {os.cpu_count()} cores")
            print("squid.conf besides the ICAP lines:", extra or "none")
            if args.skip_type:
                print("types not sent to the gateway:", " ".join(args.skip_type))
            sets: dict[str, list[tuple[str, int]]] = {}
            for label, target in TARGETS.items():
                sets[label] = []
                for name in PHOTOS[:3]:
                    body = jpeg_near(name, target)
                    url = origin.add(f"/{label.replace(' ', '')}/{name}.jpg", body, "image/jpeg")
                    sets[label].append((url, len(body)))
            page = b"<p>plain text, nothing to see</p>" * 32_000
            blob = os.urandom(1_000_000)
            other = [
                (origin.add("/other/page.html", page, "text/html"), len(page)),
                (origin.add("/other/blob.bin", blob, "application/octet-stream"), len(blob)),
            ]

            print(
                "\nlatency, one client (ms)         plain p50/p99   gateway p50/p99   added p50/p99"
            )
            with (
                httpx.Client(proxy=plain.proxy, timeout=TIMEOUT) as pc,
                httpx.Client(proxy=gated.proxy, timeout=TIMEOUT) as gc,
            ):
                for url, size in [*sets["50 KB"], *other]:  # warm both paths up
                    timed_get(pc, url, size)
                    timed_get(gc, url, size)
                for label, items in sets.items():
                    p: list[float] = []
                    g: list[float] = []
                    for n in range(args.rounds):
                        url, size = items[n % len(items)]
                        p.append(timed_get(pc, url, size) * 1000)
                        g.append(timed_get(gc, url, size) * 1000)
                    added = [b - a for a, b in zip(p, g, strict=True)]
                    mean_size = statistics.mean(s for _, s in items) / 1000
                    print(
                        f"  JPEG {label:6} (~{mean_size:5.0f} KB)       "
                        f"{pct(p, 50):6.1f} /{pct(p, 99):6.1f}   "
                        f"{pct(g, 50):7.1f} /{pct(g, 99):7.1f}   "
                        f"{pct(added, 50):6.1f} /{pct(added, 99):7.1f}"
                    )

            images = [item for items in sets.values() for item in items]
            print(
                f"\nthroughput, {args.clients} clients, {args.seconds:g} s each Squid, in "
                f"{args.slices} slices alternating (plain, gateway, gateway, plain, ...)"
            )
            rows = []
            for label, urls in (("non-media 1 MB", other), ("images 50 KB-3 MB", images)):
                waited = wait_idle(gateway.proc.pid)
                totals = {"plain": [0, 0, 0.0], "gateway": [0, 0, 0.0]}
                failures: dict[str, list[str]] = {"plain": [], "gateway": []}
                ratios: list[float] = []
                backlog = 0.0
                # CPU per request of each process, while each Squid is fetched from (the
                # gateway's monitor backlog after a slice not included).
                cpu_of = [plain.proc.pid, gated.proc.pid, gateway.proc.pid]
                cpu: dict[tuple[str, int], float] = {}
                for k in range(args.slices):
                    rate = {}
                    order = ("plain", "gateway") if k % 2 == 0 else ("gateway", "plain")
                    for name in order:
                        squid = gated if name == "gateway" else plain
                        before = {pid: tree_cpu(pid) for pid in cpu_of}
                        n, b, t, e = throughput(
                            squid, urls, args.clients, args.seconds / args.slices
                        )
                        for pid in cpu_of:
                            cpu[(name, pid)] = (
                                cpu.get((name, pid), 0.0) + tree_cpu(pid) - before[pid]
                            )
                        # Monitor mode fingerprints after answering: the next slice starts
                        # with the gateway idle, its backlog counted to the gateway's time.
                        after = wait_idle(gateway.proc.pid)
                        if name == "gateway":
                            backlog += after
                        totals[name][0] += n
                        totals[name][1] += b
                        totals[name][2] += t
                        failures[name] += e
                        rate[name] = n / t
                    ratios.append(rate["gateway"] / rate["plain"])
                n_p, b_p, t_p = totals["plain"]
                n_g, b_g, t_g = totals["gateway"]
                print(
                    f"  {label}: the gateway was busy {waited:.1f} s before, {backlog:.1f} s "
                    f"after its slices (fingerprinting what it had answered); ratio by slice "
                    f"{min(ratios):.2f}-{max(ratios):.2f}, median {statistics.median(ratios):.2f}"
                )
                print(
                    "  CPU a request (ms): plain Squid "
                    f"{cpu[('plain', plain.proc.pid)] / n_p * 1e3:.2f}; through the gateway: "
                    f"Squid {cpu[('gateway', gated.proc.pid)] / n_g * 1e3:.2f}, gateway "
                    f"{cpu[('gateway', gateway.proc.pid)] / n_g * 1e3:.2f}"
                )
                if urls is images:
                    print(
                        f"  images fingerprinted per second (until the gateway was idle again): "
                        f"{n_g / (t_g + backlog):.1f}"
                    )
                rows.append((label, n_p / t_p, n_g / t_g, b_p / t_p / 1e6, b_g / t_g / 1e6))
                for name, squid in (("plain", plain), ("gateway", gated)):
                    if failures[name]:
                        odd = [line for line in squid.access_log() if "/200 " not in line]
                        print(f"  {name} Squid's access.log, not 200 (last 3):", *odd[-3:])
                        print(
                            f"  {label}, {name}: {len(failures[name])} failed fetches, first: "
                            f"{failures[name][0]}"
                        )
            print(
                "                      plain req/s  gateway req/s  ratio   plain MB/s  gateway MB/s"
            )
            for label, rp, rg, mp, mg in rows:
                print(
                    f"  {label:18} {rp:11.1f}  {rg:13.1f}  {rg / rp:5.2f}   {mp:10.1f}  {mg:12.1f}"
                )
            print(f"\ngateway RSS at the end: {gateway.rss_kib() / 1024:.0f} MiB")
            notes = [
                line
                for line in gated.cache_log().splitlines()
                if "WARNING" in line or "ERROR" in line or "FATAL" in line
            ]
            if notes:
                print("the gatewayed Squid's warnings (last 5):", *notes[-5:], sep="\n  ")
        finally:
            for step in cleanup:
                step()


if __name__ == "__main__":
    main()
