"""Local stand-ins for the outside world: an SMTP server (aiosmtpd) and a Twilio-compatible SMS API.
Each records when every message arrived (time.monotonic(), the clock the load generators use)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qs

from aiosmtpd.controller import Controller

from gather_shared.testing import free_port


@dataclass
class Arrivals:
    """(recipient, subject or body, arrival time) of every message received."""

    items: list[tuple[str, str, float]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, recipient: str, text: str) -> None:
        now = time.monotonic()
        with self.lock:
            self.items.append((recipient, text, now))

    def count(self) -> int:
        return len(self.items)

    def since(self, index: int) -> list[tuple[str, str, float]]:
        with self.lock:
            return self.items[index:]

    def last_at(self) -> float:
        with self.lock:
            return self.items[-1][2] if self.items else 0.0


class _SmtpHandler:
    def __init__(self, arrivals: Arrivals) -> None:
        self.arrivals = arrivals

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        subject = next(
            (
                line[9:]
                for line in envelope.content.decode("utf-8", "replace").splitlines()
                if line.startswith("Subject: ")
            ),
            "",
        )
        for recipient in envelope.rcpt_tos:
            self.arrivals.add(recipient, subject)
        return "250 Message accepted for delivery"


class SmtpSink:
    def __init__(self) -> None:
        self.arrivals = Arrivals()
        self.port = free_port()
        self._controller = Controller(_SmtpHandler(self.arrivals), hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def __enter__(self) -> SmtpSink:
        self._controller.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._controller.stop()


class SmsSink:
    """Answers `POST /2010-04-01/Accounts/{sid}/Messages.json` as Twilio does (201 with a `sid`)."""

    ACCOUNT_SID = "ACbench"

    def __init__(self) -> None:
        self.arrivals = Arrivals()
        arrivals = self.arrivals

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                form = parse_qs(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode())
                arrivals.add(form.get("To", [""])[0], form.get("Body", [""])[0])
                body = json.dumps({"sid": f"SM{uuid.uuid4().hex}", "status": "queued"}).encode()
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass  # one line per SMS would drown the progress lines

        self._server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def env(self) -> dict[str, str]:
        """The notifications service's settings for this sink."""
        host, port = cast(tuple[str, int], self._server.server_address[:2])  # an IPv4 server
        return {
            "GATHER_SMS_PROVIDER": "twilio",
            "GATHER_SMS_BASE_URL": f"http://{host}:{port}",
            "GATHER_SMS_ACCOUNT_SID": self.ACCOUNT_SID,
            "GATHER_SMS_AUTH_TOKEN": "bench",
            "GATHER_SMS_FROM": "+15550000000",
        }

    def __enter__(self) -> SmsSink:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
