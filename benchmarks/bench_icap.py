"""The ICAP service alone (no proxy): what fingerprinting adds per request, against c-icap.

Starts a real `vigil gateway run` (block mode: the answer waits for the verdict, so its latency
is the whole cost; and monitor mode) on a home with the demo list, and Debian's c-icap server with
its `echo` service (the reference ICAP server: protocol cost only, no inspection) on loopback.
Sends the same RESPMOD requests to each as Squid does (a 4096-byte preview, `Allow: 204`, the rest
after 100 Continue): unknown JPEGs of about 50 KB, 300 KB, 1 MB and 3 MB, and a 300 KB HTML page.
Prints p50/p99 latency per size and service, the latency the gateway adds over c-icap, and
images per second with `--clients` connections at once.

    python -m benchmarks.bench_icap [--requests 60] [--clients 4] [--seconds 20]
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from PIL import Image  # noqa: E402
from support.gateway import Conn, http_response_head, respmod, start_gateway  # noqa: E402
from support.planted import build, photo  # noqa: E402
from support.server import free_port, run_cli  # noqa: E402


def jpeg_of_size(name: str, target: int) -> bytes:
    """A JPEG of one of the unrelated photos, scaled until it is about `target` bytes."""
    img = photo(name)
    lo, hi = 0.1, 12.0
    best = b""
    for _ in range(14):
        scale = (lo + hi) / 2
        size = (max(16, int(img.width * scale)), max(16, int(img.height * scale)))
        buf = io.BytesIO()
        img.resize(size, Image.Resampling.BILINEAR).save(buf, "JPEG", quality=90)
        best = buf.getvalue()
        if len(best) > target:
            hi = scale
        else:
            lo = scale
    return best


def start_cicap(base: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Debian's c-icap with its echo service on a loopback port."""
    port = free_port()
    conf = base / "c-icap.conf"
    conf.write_text(
        f"""PidFile {base}/c-icap.pid
CommandsSocket {base}/c-icap.ctl
Timeout 300
KeepAliveTimeout 600
MaxKeepAliveRequests 0
StartServers 1
MaxServers 1
ThreadsPerChild 16
MinSpareThreads 4
MaxSpareThreads 16
Port 127.0.0.1:{port}
TmpDir {base}
MaxMemObject 4194304
ModulesDir /usr/lib/x86_64-linux-gnu/c_icap
ServicesDir /usr/lib/x86_64-linux-gnu/c_icap
ServerLog {base}/c-icap-server.log
AccessLog {base}/c-icap-access.log
Service echo srv_echo.so
"""
    )
    proc = subprocess.Popen(["c-icap", "-N", "-f", str(conf)], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with Conn(port, timeout=5) as c:
                c.send(
                    b"OPTIONS icap://127.0.0.1/echo ICAP/1.0\r\nEncapsulated: null-body=0\r\n\r\n"
                )
                if c.reply().status == 200:
                    return proc, port
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("c-icap did not start")


def latencies(port: int, service: str, body: bytes, ctype: str, n: int) -> list[float]:
    """Milliseconds per RESPMOD, one connection, one request at a time."""
    out = []
    head = http_response_head(len(body), ctype)
    with Conn(port) as c:
        for i in range(n):
            t = time.perf_counter()
            r = _respmod(c, port, service, body, head, i)
            out.append((time.perf_counter() - t) * 1000)
            assert r.status in (200, 204), r.status
    return out


def _respmod(c: Conn, port: int, service: str, body: bytes, head: bytes, i: int):  # type: ignore[no-untyped-def]
    if service == "respmod":
        return respmod(c, port, body, url=f"http://bench.test/{i}", res_head=head)
    # c-icap's echo service: the same request to its own service name.
    import support.gateway as g

    return g._modify(
        c, port, "RESPMOD", service,
        [("req-hdr", g.http_request_head(f"http://bench.test/{i}")), ("res-hdr", head)],
        "res-body", body, 4096, True, "",
    )  # fmt: skip


def throughput(port: int, service: str, bodies: list[bytes], clients: int, seconds: float) -> float:
    """Requests per second with `clients` connections sending the bodies in turn."""
    done = [0] * clients
    stop = time.monotonic() + seconds

    def run(k: int) -> None:
        i = k
        while time.monotonic() < stop:
            with Conn(port) as c:
                try:
                    while time.monotonic() < stop:
                        body = bodies[i % len(bodies)]
                        _respmod(c, port, service, body, http_response_head(len(body)), i)
                        done[k] += 1
                        i += 1
                except ConnectionError:
                    continue  # the server closed a kept-alive connection: open another

    threads = [threading.Thread(target=run, args=(k,)) for k in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.monotonic() - t0)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=60, help="requests per size and service")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=20, help="per throughput run")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "planted").mkdir()
        tree = build(base / "planted")
        home = base / "home"
        done = run_cli("--home", str(home), "hashset", "import", str(tree.hashlist))
        assert done.returncode == 0, done.stderr
        sizes = {"50 KB": 50_000, "300 KB": 300_000, "1 MB": 1_000_000, "3 MB": 3_000_000}
        images = {label: jpeg_of_size("motorcycle_left", n) for label, n in sizes.items()}
        page = b"<html>" + b"<p>text</p>" * 27_000 + b"</html>"
        cicap, cport = start_cicap(base)
        block_home, monitor_home = base / "block", base / "monitor"
        shutil.copytree(home, block_home)
        shutil.copytree(home, monitor_home)
        block = start_gateway(block_home, "--mode", "block")
        monitor = start_gateway(monitor_home)
        try:
            rows = []
            cases = [
                (f"JPEG {k} ({len(v) // 1000} KB)", v, "image/jpeg") for k, v in images.items()
            ]
            cases.append((f"HTML {len(page) // 1000} KB", page, "text/html"))
            for label, body, ctype in cases:
                peer = latencies(cport, "echo", body, ctype, args.requests)
                blk = latencies(block.port, "respmod", body, ctype, args.requests)
                mon = latencies(monitor.port, "respmod", body, ctype, args.requests)
                rows.append((label, peer, blk, mon))
            print(f"{'body':<24} {'c-icap echo p50/p99':>20} {'vigil block p50/p99':>20}"
                  f" {'added p50':>10} {'vigil monitor p50/p99':>22}")  # fmt: skip
            for label, peer, blk, mon in rows:
                print(
                    f"{label:<24} {pct(peer, 50):>8.2f} / {pct(peer, 99):>7.2f} ms"
                    f" {pct(blk, 50):>8.2f} / {pct(blk, 99):>7.2f} ms"
                    f" {statistics.median(blk) - statistics.median(peer):>7.2f} ms"
                    f" {pct(mon, 50):>9.2f} / {pct(mon, 99):>7.2f} ms"
                )
            mix = [images["300 KB"], images["50 KB"], images["1 MB"]]
            for name, port, service in (
                ("c-icap echo", cport, "echo"),
                ("vigil block", block.port, "respmod"),
                ("vigil monitor", monitor.port, "respmod"),
            ):
                rate = throughput(port, service, mix, args.clients, args.seconds)
                print(f"{name:<14} {rate:8.1f} images/s ({args.clients} clients, 50 KB-1 MB mix)")
            for name, port, service in (
                ("c-icap echo", cport, "echo"),
                ("vigil", block.port, "respmod"),
            ):
                rate = throughput(port, service, [page], args.clients, args.seconds / 2)
                print(f"{name:<14} {rate:8.1f} HTML pages/s (non-media)")
        finally:
            block.stop()
            monitor.stop()
            cicap.terminate()
            cicap.wait()


if __name__ == "__main__":
    main()
