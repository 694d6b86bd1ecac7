"""Logging with the ids that let one follow a message's journey: the HTTP request's correlation id and
the message id. Both live in context variables set by the web layer and by the consumer."""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
import sys
from collections.abc import Iterator
from contextvars import ContextVar

correlation_id: ContextVar[str] = ContextVar("correlation_id", default="-")
message_id: ContextVar[str] = ContextVar("message_id", default="-")

#: W3C Trace Context (https://www.w3.org/TR/trace-context/): a request's `traceparent` header names its trace.
#: Gather takes the trace id as the correlation id, and each message carries it on in a `traceparent` header
#: of its own, so a tracing tool and the log lines follow one registration from HTTP to the email alike.
_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")
_TRACE_ID = re.compile(r"[0-9a-f]{32}")

FORMAT = "%(asctime)s %(levelname)s %(name)s [cid=%(correlation_id)s mid=%(message_id)s] %(message)s"


@contextlib.contextmanager
def message_context(mid: str, cid: str | None) -> Iterator[None]:
    """Log lines inside carry `mid=` (a message's id) and `cid=` (the correlation id of the request that
    caused it)."""
    cid_token = correlation_id.set(cid or "-")
    mid_token = message_id.set(mid)
    try:
        yield
    finally:
        correlation_id.reset(cid_token)
        message_id.reset(mid_token)


def trace_id(traceparent: str | None) -> str | None:
    """The trace id of a `traceparent` header, if it is one (an all-zero id is invalid, says the spec)."""
    match = _TRACEPARENT.fullmatch(traceparent or "")
    return match.group(1) if match and match.group(1) != "0" * 32 else None


def traceparent(cid: str | None) -> str | None:
    """The `traceparent` of a message caused by the request `cid`: the same trace, a span of its own. None
    when `cid` is no trace id (an X-Request-ID of the client's own choosing)."""
    return f"00-{cid}-{secrets.token_hex(8)}-01" if cid and _TRACE_ID.fullmatch(cid) else None


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.correlation_id = correlation_id.get()
        record.message_id = message_id.get()
        return True


def configure(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(_ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("amqp", "kombu", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # kombu warns that `filesystem://` names no host; that is how the embedded transport is spelled.
    logging.getLogger("kombu.connection").setLevel(logging.ERROR)
