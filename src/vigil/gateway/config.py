"""The gateway's settings: where it listens, its mode, and its limits (one table, each with a
default, a unit and what reaching it does, as the engine's limits)."""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from vigil.errors import VigilError

DEFAULT_LISTEN = "127.0.0.1:1344"
MiB = 1024 * 1024
DEFAULT_PREVIEW = 4096

BLOCK_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Blocked</title></head>
<body><h1>This content is blocked</h1>
<p>The web proxy withheld this content: it matches known material on a list your organisation
checks against. The attempt has been recorded.</p></body></html>
"""


class GatewayConfigError(VigilError):
    """A gateway setting that cannot be used."""


@dataclass
class GatewayConfig:
    """What `vigil gateway run` was asked to do."""

    host: str = "127.0.0.1"
    port: int = 1344
    mode: str = "monitor"  # monitor | block
    metrics: tuple[str, int] | None = None
    block_page: str = BLOCK_PAGE
    # Bytes of a body the proxy sends before the gateway decides (OPTIONS' Preview; -1: no
    # preview; None: 4096, except none for RESPMOD in block mode, see preview_for).
    preview: int | None = None
    # Bodies larger than this pass unchecked (counted as too_large).
    max_object_size: int = 100 * MiB
    # A body is held in memory up to this, in a temporary file above it.
    memory_per_object: int = 2 * MiB
    # Fingerprinting one body may take this long; past it the body passes (timeout).
    object_seconds: float = 30.0
    # Open connections at once; more are answered 503 and closed.
    max_connections: int = 1000
    # A request head must arrive within this once begun, a piece of body within this after
    # the last.
    read_seconds: float = 30.0
    # A connection may wait this long for its next request (the proxy's persistent
    # connections; closing one the proxy is about to reuse costs it a failed request).
    idle_seconds: float = 600.0
    # How long the proxy may keep OPTIONS' answer (it also sees the ISTag on every answer).
    options_ttl: int = 300
    # Threads that fingerprint (default: one per CPU).
    workers: int = field(default_factory=lambda: os.cpu_count() or 2)
    # How often the catalog is looked at for a newer build (unenrolled homes: local imports).
    catalog_poll: float = 10.0
    temp_dir: str | None = None
    # Offer `Allow: 204` in OPTIONS (the proxy may then let the gateway answer 204 after the
    # whole body, keeping a copy of it meanwhile).
    offer_204: bool = True
    # Monitor mode: answer at once and echo the body as it arrives, fingerprinting the copy
    # once it is whole (instead of answering after the whole body: Debian's Squid 5.7 stops
    # reading a fast origin until the service answers).
    stream: bool = True
    # ... once a body is longer than this (a shorter one is answered after it is fingerprinted,
    # with its incident written first).
    stream_after: int = 32768
    # File extensions OPTIONS asks the proxy never to send (Transfer-Ignore) or to send whole,
    # without a preview (Transfer-Complete). Empty by default: a type is sniffed from content,
    # and a name is whatever the sender chose.
    transfer_ignore: tuple[str, ...] = ()
    transfer_complete: tuple[str, ...] = ()
    # JPEGs decoded at half size for PDQ (the engine's opt-in fast mode: see the README).
    fast_pdq: bool = False
    # ICAP over TLS (icaps://): the certificate chain and its key, PEM files; None: plain ICAP.
    tls: ssl.SSLContext | None = None

    def preview_for(self, method: str) -> int:
        """The preview offered for RESPMOD or REQMOD (-1: none).

        Block mode answers only after the whole body; Squid 5.7 keeps a preview's backup of the
        body until the service's 100 Continue and meanwhile fills its 64 KB buffer from a fast
        origin, then never reads the origin again by itself (docs/gateway.md, "Squid"): without
        a preview the body flows at once. Uploads are not affected."""
        if self.preview is not None:
            return self.preview
        return -1 if self.mode == "block" and method == "RESPMOD" else DEFAULT_PREVIEW

    def limits_table(self) -> list[tuple[str, float, str, str]]:
        """(name, value, unit, what reaching it does) for the docs and the metrics."""
        return [
            ("max_object_size", self.max_object_size, "bytes", "larger bodies pass, counted"),
            (
                "memory_per_object",
                self.memory_per_object,
                "bytes",
                "larger bodies go to a temp file",
            ),
            ("object_seconds", self.object_seconds, "seconds", "slower bodies pass, counted"),
            ("max_connections", self.max_connections, "connections", "more are answered 503"),
            ("read_seconds", self.read_seconds, "seconds", "a slower client is answered 408"),
            ("idle_seconds", self.idle_seconds, "seconds", "an idle connection is closed"),
            (
                "preview",
                self.preview_for("RESPMOD"),
                "bytes",
                "bytes sniffed before the body is asked for (-1: no preview)",
            ),
        ]


def host_port(value: str, what: str) -> tuple[str, int]:
    """HOST:PORT (IPv6 as [::1]:PORT)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536 or not host:
        raise GatewayConfigError(f"{what}: expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server context for ICAP over TLS (TLS 1.2 or later) from PEM files."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as e:
        raise GatewayConfigError(f"--tls-cert {cert} / --tls-key {key}: cannot use: {e}") from None
    return context


def extensions(value: str, what: str) -> tuple[str, ...]:
    """'css, js,woff2' as ('css', 'js', 'woff2')."""
    out = tuple(e.strip().lstrip(".").lower() for e in value.split(",") if e.strip())
    for e in out:
        if not e.replace("-", "").replace("_", "").isalnum() or e == "*":
            raise GatewayConfigError(f"{what}: not a file extension: {e!r}")
    return out


def size(value: str, what: str) -> int:
    """'100M', '2G', '65536' as bytes."""
    from vigil.limits import parse_limit_value

    try:
        return int(parse_limit_value(value, int))
    except ValueError as e:
        raise GatewayConfigError(f"{what}: {e}") from None


def block_page_from(path: Path | None) -> str:
    """The block page's HTML: the operator's file, else the built-in page."""
    if path is None:
        return BLOCK_PAGE
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise GatewayConfigError(f"--block-page {path}: cannot read: {e}") from None
