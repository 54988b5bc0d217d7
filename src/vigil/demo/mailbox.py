"""The demo's mail sink: a real SMTP server (aiosmtpd) on a loopback port that keeps every
message it receives, so the demo can show the server's e-mail alerts without a mail system."""

from __future__ import annotations

import email
import email.policy
import threading
from email.message import EmailMessage
from typing import Any

from vigil.errors import VigilError


class _Keep:
    """aiosmtpd handler: keeps each message."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        parsed = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.lock:
            self.messages.append(parsed)
        return "250 OK"


class Mailbox:
    """An SMTP server on 127.0.0.1:`port` (no TLS, no login: it only listens on loopback)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._keep = _Keep()
        self._controller: Any = None

    def start(self) -> Mailbox:
        """Listen (in a thread of this process)."""
        try:
            from aiosmtpd.controller import Controller
        except ImportError:
            raise VigilError("the demo needs aiosmtpd: pip install 'vigil[demo]'") from None
        self._controller = Controller(self._keep, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop listening."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def messages(self) -> list[EmailMessage]:
        """Every message received so far."""
        with self._keep.lock:
            return list(self._keep.messages)
