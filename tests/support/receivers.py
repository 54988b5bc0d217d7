"""Real receivers a test starts on 127.0.0.1 for the server's notifications: an SMTP server
(aiosmtpd, with AUTH), a webhook receiver verifying Standard Webhooks signatures, and syslog
listeners on UDP and TCP (RFC 6587 octet counting)."""

from __future__ import annotations

import email
import email.policy
import re
import socket
import socketserver
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

SMTP_USER = "vigil"
SMTP_PASSWORD = "s3cret-smtp-password"
WEBHOOK_SECRET = "whsec_" + "dGVzdC1zZWNyZXQtZm9yLXZpZ2lsLXdlYmhvb2tz"


def wait_for(check: Callable[[], Any], what: str, seconds: float = 90) -> Any:
    """Poll `check` until it returns something truthy (the shared machine is slow: a generous
    bound that only fails a broken server, never a slow one)."""
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


class _Mailbox:
    """aiosmtpd handler: keeps each message, after AUTH with the test's credentials."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.logins: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 OK"


def _authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, data: Any
) -> AuthResult:
    ok = (
        isinstance(data, LoginPassword)
        and data.login.decode() == SMTP_USER
        and data.password.decode() == SMTP_PASSWORD
    )
    return AuthResult(success=ok)


class Smtp:
    """A real SMTP server on a loopback port (start and stop it as a test needs)."""

    def __init__(self, port: int, tls: ssl.SSLContext | None = None) -> None:
        self.port = port
        self.tls = tls
        self.box = _Mailbox()
        self.controller: Controller | None = None

    def start(self) -> Smtp:
        """Listen; with `tls`, STARTTLS is required before AUTH and mail."""
        self.controller = Controller(
            self.box,
            hostname="127.0.0.1",
            port=self.port,
            authenticator=_authenticator,
            auth_require_tls=self.tls is not None,
            auth_required=True,
            tls_context=self.tls,
            require_starttls=self.tls is not None,
        )
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def about(self, incident: int) -> list[EmailMessage]:
        """The messages about one incident."""
        return [m for m in self.box.messages if f"(incident {incident})" in str(m["Subject"])]


@dataclass
class Hook:
    """One webhook request as received."""

    headers: dict[str, str]
    body: bytes
    verified: bool
    error: str | None = None


@dataclass
class WebhookReceiver:
    """An HTTP server keeping every POST and whether its signature verified."""

    secret: str = WEBHOOK_SECRET
    hooks: list[Hook] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    Webhook(receiver.secret).verify(body, headers)
                    hook = Hook(headers, body, True)
                except WebhookVerificationError as e:
                    hook = Hook(headers, body, False, str(e))
                receiver.hooks.append(hook)
                self.send_response(204 if hook.verified else 400)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


# RFC 5424: <PRI>VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD [SP MSG]
RFC5424 = re.compile(
    r"^<(?P<pri>\d{1,3})>(?P<version>1) (?P<timestamp>\S+) (?P<hostname>\S+) (?P<app>\S+) "
    r"(?P<procid>\S+) (?P<msgid>\S+) (?P<sd>-|(?:\[(?:[^\]\\]|\\.)*\])+)(?: (?P<msg>.*))?$",
    re.DOTALL,
)
SD_PARAM = re.compile(r'(\S+?)="((?:[^"\\]|\\.)*)"')


def parse_syslog(line: bytes) -> dict[str, Any]:
    """One RFC 5424 message parsed (raises AssertionError when it is not one)."""
    text = line.decode("utf-8")
    found = RFC5424.match(text)
    assert found is not None, f"not RFC 5424: {text!r}"
    fields: dict[str, Any] = found.groupdict()
    fields["params"] = {k: re.sub(r"\\(.)", r"\1", v) for k, v in SD_PARAM.findall(fields["sd"])}
    return fields


class SyslogListener:
    """A syslog collector on UDP (one datagram per message) or TCP (octet counting)."""

    def __init__(self, protocol: str) -> None:
        self.protocol = protocol
        self.lines: list[bytes] = []
        self.server: socketserver.BaseServer | None = None

    def start(self) -> SyslogListener:
        listener = self

        class Udp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                listener.lines.append(self.request[0])

        class Tcp(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                while True:
                    length = b""
                    while not length.endswith(b" "):
                        c = self.rfile.read(1)
                        if not c:
                            return
                        length += c
                    listener.lines.append(self.rfile.read(int(length)))

        if self.protocol == "udp":
            self.server = socketserver.ThreadingUDPServer(("127.0.0.1", 0), Udp)
        else:
            self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Tcp)
        self.server.daemon_threads = True  # type: ignore[attr-defined]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    @property
    def address(self) -> str:
        assert self.server is not None
        port = self.server.server_address[1]  # type: ignore[attr-defined]
        return f"{self.protocol}://127.0.0.1:{port}"

    def about(self, incident: int) -> list[dict[str, Any]]:
        """The parsed messages about one incident."""
        parsed = [parse_syslog(line) for line in list(self.lines)]
        return [p for p in parsed if p["params"].get("incident") == str(incident)]

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def self_signed(directory: Path) -> tuple[ssl.SSLContext, Path]:
    """A certificate for 127.0.0.1 made with openssl: the server's TLS context, the CA file."""
    cert, key = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context, cert
