"""gunicorn's worker for every Gather web process: gunicorn's own errors as problem+json.

Some requests never reach the app: a request line longer than gunicorn allows (414), headers it cannot
parse (400, 431), and a request the app took too long to answer, whose worker gunicorn's master aborts
(500). gunicorn answers those itself, with an HTML page; a Gather client expects every error as an RFC 9457
problem (application/problem+json), like the app's own. This worker keeps everything gunicorn does (how it
tells the errors apart, its log and access lines) and only writes the answer as a problem.

deploy/gunicorn.conf.py names it (`worker_class`)."""

from __future__ import annotations

import json
import socket
from typing import Any, cast

from gunicorn import util
from gunicorn.workers.sync import SyncWorker

PROBLEM_JSON = "application/problem+json"

#: What the client is told, by status: never the request line itself (it may carry a token; and gunicorn
#: echoes it into its HTML page).
DETAILS = {
    400: "The request could not be read.",
    403: "The request is not allowed.",
    414: "The request's address is too long.",
    417: "The request's Expect header cannot be met.",
    431: "The request's headers are too large.",
    500: "Something went wrong on our side, or the answer took too long; please try again.",
    501: "The request's transfer coding is not supported.",
}


class _Written:
    """Stands in for the client's socket while gunicorn writes its HTML error page: what it would send (its
    status line says which error it is)."""

    def __init__(self) -> None:
        self.data = b""

    def gettimeout(self) -> float:
        return 0.0

    def sendall(self, data: bytes) -> None:
        self.data += data


class ProblemWorker(SyncWorker):
    """gunicorn's sync worker (measured fastest here: gunicorn.conf.py), answering its own errors as
    problem+json."""

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        written = _Written()
        # gunicorn's logging, access line and status; it only writes to the socket it is given
        super().handle_error(req, cast("socket.socket", written), addr, exc)
        status_line = written.data.split(b"\r\n", 1)[0].decode("latin-1")  # e.g. "HTTP/1.1 414 URI Too Long"
        _, status_text, reason = (status_line.split(" ", 2) + ["", ""])[:3]
        status = int(status_text) if status_text.isdigit() else 500
        body = json.dumps(
            {
                "type": "about:blank",
                "title": reason or "Internal Server Error",
                "status": status,
                "detail": DETAILS.get(status, reason or "The request could not be answered."),
            }
        ).encode()
        head = (
            f"HTTP/1.1 {status} {reason or 'Internal Server Error'}\r\n"
            f"Connection: close\r\nContent-Type: {PROBLEM_JSON}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        try:
            util.write_nonblock(client, head.encode("latin-1") + body)
        except Exception:  # noqa: BLE001 - the client may be gone; gunicorn itself gives up the same way
            self.log.debug("Failed to send error message.")
