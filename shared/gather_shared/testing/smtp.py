"""An SMTP server in the test's process (aiosmtpd) that keeps who got which email, so a test can count
lost and duplicated emails, which the embedded default's `.eml` files (one per notification, rewritten
when sent again) cannot show."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from gather_shared.testing.platform import free_port


@dataclass
class Mailbox:
    """(recipient, Message-ID) of each email received, in order; `url` is the server's GATHER_SMTP_URL.
    With `answer_after` seconds, the server keeps each email that long before it answers: the sender has
    then handed it over but not heard back, which is where a sender killed mid-send dies."""

    answer_after: float = 0.0
    url: str = ""
    received: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.received += [(rcpt, str(message["Message-ID"])) for rcpt in envelope.rcpt_tos]
        await asyncio.sleep(self.answer_after)
        return "250 OK"

    def recipients(self) -> Counter[str]:
        """How many emails each address received."""
        with self.lock:
            return Counter(rcpt for rcpt, _ in self.received)

    def message_ids(self, recipient: str) -> list[str]:
        with self.lock:
            return [message_id for rcpt, message_id in self.received if rcpt == recipient]


@contextlib.contextmanager
def smtp_sink(answer_after: float = 0.0) -> Iterator[Mailbox]:
    from aiosmtpd.controller import Controller

    mailbox = Mailbox(answer_after)
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    mailbox.url = f"smtp://127.0.0.1:{port}"
    try:
        yield mailbox
    finally:
        controller.stop()
