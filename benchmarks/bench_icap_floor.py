"""What an ICAP exchange costs Squid itself: non-media downloads through plain Squid, through
Squid calling a do-nothing ICAP responder, and through Squid calling `vigil gateway run`.

The responder (`--responder`, run as its own process) reads each request with its preview and
answers 204 at once: no parsing beyond the framing, no sniffing. Whatever a Squid calling it
loses against plain Squid is the price of the ICAP round trip in Squid (building the request,
the preview, parsing the answer) plus the responder's own few microseconds: the floor under any
ICAP service's non-media figure on this Squid. The gateway's figure beside it shows how much of
its own cost is left above that floor. Three Squids with the same squid.conf (monitor mode's
lines) besides the ICAP lines, fetched in turn in `--slices` rounds of `--seconds` each
(plain, responder, gateway; then rotated), so that other load falls on all alike; 1 MB HTML and
binary bodies, `--clients` clients; prints requests per second, the ratio to plain Squid and each
process's CPU a request.

    python -m benchmarks.bench_icap_floor [--seconds 30] [--slices 6] [--clients 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from gateway.squid_fixture import (  # noqa: E402
    MONITOR_MODE_LINES,
    icap_lines,
    squid_folder,
    start_origin,
    start_squid,
)
from support.gateway import start_gateway  # noqa: E402

from benchmarks.bench_gateway import listed_home, throughput, tree_cpu  # noqa: E402

_OPTIONS = (
    b'ICAP/1.0 200 OK\r\nMethods: %s\r\nISTag: "floor-1"\r\nMax-Connections: 1000\r\n'
    b"Options-TTL: 300\r\nAllow: 204\r\nPreview: 4096\r\nTransfer-Preview: *\r\n"
    b"Encapsulated: null-body=0\r\n\r\n"
)
_NO_CONTENT = b'ICAP/1.0 204 No Content\r\nISTag: "floor-1"\r\nEncapsulated: null-body=0\r\n\r\n'


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """OPTIONS as the gateway's (a preview of 4096 bytes, 204 allowed), 204 for the rest once
    its preview (or its whole body) is read."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            line = head.split(b"\r\n", 1)[0]
            if line.startswith(b"OPTIONS"):
                writer.write(_OPTIONS % (b"REQMOD" if b"/reqmod" in line else b"RESPMOD"))
                continue
            encapsulated = next(
                v for v in head.split(b"\r\n") if v.lower().startswith(b"encapsulated:")
            )
            name, _, offset = encapsulated.split(b",")[-1].split(b":")[-1].strip().partition(b"=")
            await reader.readexactly(int(offset))  # the HTTP heads
            if name != b"null-body":
                while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                    await reader.readexactly(size + 2)
                await reader.readuntil(b"\r\n")
            writer.write(_NO_CONTENT)
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


def responder(port: int) -> None:
    """Serve the do-nothing responder on 127.0.0.1:port until killed."""

    async def serve() -> None:
        server = await asyncio.start_server(_answer, "127.0.0.1", port)
        print("listening", flush=True)
        await server.serve_forever()

    asyncio.run(serve())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30, help="seconds of fetching per Squid")
    ap.add_argument("--slices", type=int, default=6, help="rounds, each Squid in turn")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--responder", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.responder:
        responder(args.responder)
        return
    with tempfile.TemporaryDirectory() as tmp:
        home = listed_home(Path(tmp))
        port = _free_port()
        floor = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.bench_icap_floor", "--responder", str(port)],
            stdout=subprocess.PIPE,
            cwd=Path(__file__).resolve().parents[1],
        )
        assert floor.stdout is not None and floor.stdout.readline().strip() == b"listening"
        origin = start_origin()
        gateway = start_gateway(home, "--mode", "monitor")
        squids = {
            "plain Squid": start_squid(squid_folder(), list(MONITOR_MODE_LINES)),
            "Squid + do-nothing responder": start_squid(
                squid_folder(), [*icap_lines(port), *MONITOR_MODE_LINES]
            ),
            "Squid + Vigil gateway": start_squid(
                squid_folder(), [*icap_lines(gateway.port), *MONITOR_MODE_LINES]
            ),
        }
        services = {
            "Squid + do-nothing responder": floor.pid,
            "Squid + Vigil gateway": gateway.proc.pid,
        }
        try:
            page = b"<p>plain text, nothing to see</p>" * 32_000
            blob = os.urandom(1_000_000)
            urls = [
                (origin.add("/other/page.html", page, "text/html"), len(page)),
                (origin.add("/other/blob.bin", blob, "application/octet-stream"), len(blob)),
            ]
            for squid in squids.values():  # warm up
                throughput(squid, urls, args.clients, 1.0)
            names = list(squids)
            totals = {name: [0, 0.0, 0.0, 0.0] for name in names}  # requests, s, Squid, service
            failures = 0
            load = [os.getloadavg()[0]]
            for k in range(args.slices):
                for name in names[k % 3 :] + names[: k % 3]:
                    squid, service = squids[name], services.get(name)
                    before = (tree_cpu(squid.proc.pid), tree_cpu(service) if service else 0.0)
                    n, _, took, errors = throughput(
                        squid, urls, args.clients, args.seconds / args.slices
                    )
                    t = totals[name]
                    t[0] += n
                    t[1] += took
                    t[2] += tree_cpu(squid.proc.pid) - before[0]
                    t[3] += (tree_cpu(service) - before[1]) if service else 0.0
                    failures += len(errors)
                    time.sleep(0.5)
            load.append(os.getloadavg()[0])
            plain_rate = totals[names[0]][0] / totals[names[0]][1]
            print(
                f"squid 5.7 (Debian), {args.clients} clients, {args.seconds:g} s a Squid in "
                f"{args.slices} rotated slices, 1 MB HTML and binary bodies; load {load[0]:.1f} "
                f"at the start, {load[1]:.1f} at the end; {failures} failed fetches"
            )
            print(
                f"  {'':30} {'req/s':>7} {'ratio':>6} {'Squid CPU ms/req':>17} "
                f"{'ICAP service ms/req':>20}"
            )
            for name in names:
                n, took, squid_cpu, service_cpu = totals[name]
                print(
                    f"  {name:30} {n / took:7.1f} {n / took / plain_rate:6.3f} "
                    f"{squid_cpu / n * 1e3:17.3f} "
                    f"{(service_cpu / n * 1e3) if name in services else 0.0:20.3f}"
                )
        finally:
            origin.stop()
            gateway.stop()
            floor.kill()
            floor.wait()
            for squid in squids.values():
                squid.stop()
                shutil.rmtree(squid.folder, ignore_errors=True)


if __name__ == "__main__":
    main()
