"""`vigil gateway ...`: run the ICAP service.

Heavy imports (the engine, asyncio's server) wait inside the command, so `vigil --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path

import click

from vigil.gateway.config import DEFAULT_LISTEN


@click.group()
def gateway() -> None:
    """The ICAP service: the web proxy hands it images and videos to check."""


@gateway.command()
@click.option(
    "--home",
    metavar="DIR",
    default=None,
    help="The gateway's home. Default: `vigil --home`, $VIGIL_HOME, else the user data dir.",
)
@click.option(
    "--listen",
    default=DEFAULT_LISTEN,
    show_default=True,
    metavar="HOST:PORT",
    help="Where the ICAP service listens.",
)
@click.option(
    "--mode",
    type=click.Choice(["monitor", "block"]),
    default="monitor",
    show_default=True,
    help="monitor: every body passes, matches raise incidents; block: a match gets a 403 page.",
)
@click.option(
    "--metrics",
    "metrics",
    default=None,
    metavar="HOST:PORT",
    help="Serve Prometheus metrics on http://HOST:PORT/metrics (default: off).",
)
@click.option(
    "--block-page",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="HTML of the block page (default: a short built-in page).",
)
@click.option(
    "--preview",
    type=click.IntRange(-1, 65536),
    default=None,
    help="Preview size asked of the proxy in OPTIONS (bytes; -1: none). Default: 4096, but "
    "none for /respmod in block mode (Squid 5.7; docs/gateway.md).",
)
@click.option(
    "--max-object-size",
    default="100M",
    show_default=True,
    metavar="SIZE",
    help="Larger bodies pass unchecked (counted). K/M/G suffixes.",
)
@click.option(
    "--memory-per-object",
    default="2M",
    show_default=True,
    metavar="SIZE",
    help="A body is held in memory up to this, in a temporary file above it.",
)
@click.option(
    "--object-seconds",
    type=click.FloatRange(0.1, 3600),
    default=30.0,
    show_default=True,
    help="Time to fingerprint one body; slower ones pass (counted).",
)
@click.option(
    "--max-connections",
    type=click.IntRange(1, 100000),
    default=1000,
    show_default=True,
    help="Open connections at once; more are answered 503.",
)
@click.option(
    "--read-seconds",
    type=click.FloatRange(0.1, 3600),
    default=30.0,
    show_default=True,
    help="Time for a request head, and between pieces of a body.",
)
@click.option(
    "--idle-seconds",
    type=click.FloatRange(1, 86400),
    default=600.0,
    show_default=True,
    help="Time a connection may wait for its next request before it is closed.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    default=None,
    help="Fingerprinting processes. Default: one per CPU.",
)
@click.option(
    "--offer-204/--no-offer-204",
    default=True,
    show_default=True,
    help="Offer `Allow: 204` in OPTIONS (see docs/gateway.md, Squid).",
)
@click.option(
    "--stream/--no-stream",
    default=True,
    show_default=True,
    help="Monitor mode: answer at once and echo a body as it arrives, fingerprinting the copy "
    "once whole (Squid 5.7 stalls otherwise; docs/gateway.md).",
)
@click.option(
    "--transfer-ignore",
    metavar="EXT,...",
    default="",
    help="File extensions the proxy need not send at all (OPTIONS' Transfer-Ignore). Default: "
    "none (types are sniffed from content; a name is the sender's choice).",
)
@click.option(
    "--transfer-complete",
    metavar="EXT,...",
    default="",
    help="File extensions the proxy sends whole, without a preview (Transfer-Complete).",
)
@click.option(
    "--fast-pdq",
    is_flag=True,
    help="Decode JPEGs at half size for PDQ: faster, slightly less faithful (see the README).",
)
@click.option(
    "--tls-cert",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Serve ICAP over TLS (icaps://) with this PEM certificate chain (with --tls-key).",
)
@click.option(
    "--tls-key",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The TLS certificate's private key, PEM (with --tls-cert).",
)
@click.option("--verbose", "-v", is_flag=True, help="Log every request.")
@click.pass_context
def run(
    ctx: click.Context,
    home: str | None,
    listen: str,
    mode: str,
    metrics: str | None,
    block_page: Path | None,
    preview: int | None,
    max_object_size: str,
    memory_per_object: str,
    object_seconds: float,
    max_connections: int,
    read_seconds: float,
    idle_seconds: float,
    workers: int | None,
    offer_204: bool,
    stream: bool,
    transfer_ignore: str,
    transfer_complete: str,
    fast_pdq: bool,
    tls_cert: Path | None,
    tls_key: Path | None,
    verbose: bool,
) -> None:
    """Run the ICAP service in the foreground until SIGTERM or Ctrl-C (what the systemd unit runs)."""
    from vigil.config import vigil_home
    from vigil.endpoint.logs import journal_logging
    from vigil.gateway import config, daemon

    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("--tls-cert and --tls-key go together")
    root = vigil_home(home or ctx.find_root().params.get("home"))
    host, port = config.host_port(listen, "--listen")
    cfg = config.GatewayConfig(
        host=host,
        port=port,
        mode=mode,
        metrics=config.host_port(metrics, "--metrics") if metrics else None,
        block_page=config.block_page_from(block_page),
        preview=preview,
        max_object_size=config.size(max_object_size, "--max-object-size"),
        memory_per_object=config.size(memory_per_object, "--memory-per-object"),
        object_seconds=object_seconds,
        max_connections=max_connections,
        read_seconds=read_seconds,
        idle_seconds=idle_seconds,
        fast_pdq=fast_pdq,
        offer_204=offer_204,
        stream=stream,
        transfer_ignore=config.extensions(transfer_ignore, "--transfer-ignore"),
        transfer_complete=config.extensions(transfer_complete, "--transfer-complete"),
        tls=config.tls_context(tls_cert, tls_key) if tls_cert and tls_key else None,
    )
    if workers:
        cfg.workers = workers
    journal_logging(verbose)
    daemon.run(root, cfg)
