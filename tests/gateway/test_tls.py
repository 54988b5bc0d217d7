"""ICAP over TLS (`--tls-cert`, `--tls-key`): Debian's c-icap-client and a real Squid
(`icaps://` with `tls-cafile=`) reach the gateway through TLS, a known photo is blocked, an
unknown one passes unchanged; a client speaking plain ICAP to the TLS port gets nothing and
stalls nobody; a certificate that cannot be used is a clear error at start."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import httpx
import pytest
from gateway import squid_fixture
from support.gateway import start_gateway
from support.planted import Tree
from support.server import VIGIL

from vigil.gateway.config import BLOCK_PAGE

# Real processes over loopback: run in the suite's process-parallel group (scripts/test).
pytestmark = pytest.mark.e2e

squid_for = squid_fixture.squid_for
origin = squid_fixture.origin


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (readable by Squid's user)."""
    folder = squid_fixture.squid_folder()
    folder.chmod(0o755)
    cert, key = folder / "gateway.pem", folder / "gateway.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    cert.chmod(0o644)
    yield cert, key
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def tls_gateway(tmp_path: Path, catalog_home: Path, certificate: tuple[Path, Path]):  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    shutil.copytree(catalog_home, home)
    cert, key = certificate
    g = start_gateway(home, "--mode", "block", "--tls-cert", str(cert), "--tls-key", str(key))
    assert "(icaps://HOST:PORT/respmod and /reqmod)" in g.log_text()
    yield g
    assert g.stop() == 0, g.log_text()[-3000:]


def test_c_icap_client_over_tls(tls_gateway, planted: Tree, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    def client(*args: str) -> str:
        done = subprocess.run(
            [squid_fixture.icap_client_binary(), "-i", "127.0.0.1", "-p", str(tls_gateway.port),
             "-tls", "-tls-no-verify", *args],
            capture_output=True, timeout=120, check=False,
        )  # fmt: skip
        out = (done.stdout + done.stderr).decode("utf-8", "replace")
        assert done.returncode == 0, out
        return out

    assert "ICAP/1.0 200 OK" in client("-s", "respmod", "-method", "OPTIONS")
    blocked = tmp_path / "blocked.html"
    client("-s", "respmod", "-f", str(planted.root / "alt/chelsea-q50.jpg"), "-o", str(blocked),
           "-resp", "http://photos.test/cat.jpg")  # fmt: skip
    assert blocked.read_text() == BLOCK_PAGE
    passed = tmp_path / "passed.jpg"
    moon = planted.root / "other/moon.jpg"
    client("-s", "respmod", "-f", str(moon), "-o", str(passed), "-no204",
           "-resp", "http://photos.test/moon.jpg")  # fmt: skip
    assert passed.read_bytes() == moon.read_bytes()


def test_plain_icap_to_the_tls_port_gets_nothing_and_stalls_nobody(tls_gateway) -> None:  # type: ignore[no-untyped-def]
    with socket.create_connection(("127.0.0.1", tls_gateway.port), timeout=60) as s:
        s.sendall(
            b"OPTIONS icap://127.0.0.1/respmod ICAP/1.0\r\nHost: x\r\nEncapsulated: null-body=0\r\n\r\n"
        )
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except ConnectionResetError:
            pass
    assert b"ICAP/1.0" not in out  # no answer in the clear
    assert tls_gateway.alive()


def test_squid_over_icaps(  # type: ignore[no-untyped-def]
    tls_gateway, certificate: tuple[Path, Path], origin, planted: Tree, squid_for
) -> None:
    squid = squid_for(tls_gateway.port, "block", tls_cafile=certificate[0])
    known = planted.originals["chelsea"]
    moon = (planted.root / "other/moon.jpg").read_bytes()
    k = origin.add("/tls/known.jpg", known, "image/jpeg")
    u = origin.add("/tls/moon.jpg", moon, "image/jpeg")
    with httpx.Client(proxy=squid.proxy, timeout=120) as c:
        r = c.get(k)
        assert r.status_code == 403, (r.status_code, squid.cache_log()[-6000:])
        assert r.headers.get("x-vigil") == "blocked"
        r = c.get(u)
        assert r.status_code == 200 and r.content == moon


def test_a_certificate_that_cannot_be_used_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    done = subprocess.run(
        [*VIGIL, "gateway", "run", "--home", str(tmp_path / "home"), "--listen", "127.0.0.1:1",
         "--tls-cert", str(bad), "--tls-key", str(bad)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert f"--tls-cert {bad} / --tls-key {bad}: cannot use" in done.stderr
