"""Logging of the long-running endpoints (the agent, its scanner, the gateway): one line per
event on stderr, which journald reads under systemd."""

from __future__ import annotations

import logging
import os
import sys


def journal_logging(verbose: bool = False) -> None:
    """Log to stderr, one line per event: with syslog priority prefixes that journald reads
    when it is the stream's reader, else with a timestamp."""
    level = logging.DEBUG if verbose else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("JOURNAL_STREAM"):
        handler.setFormatter(_JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("vigil")
    root.handlers[:] = [handler]
    root.setLevel(level)


class _JournalFormatter(logging.Formatter):
    """`<N>` sd-daemon priority prefixes (3 error, 4 warning, 6 info, 7 debug)."""

    LEVELS = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6}

    def format(self, record: logging.LogRecord) -> str:
        return f"<{self.LEVELS.get(record.levelno, 7)}>{super().format(record)}"
