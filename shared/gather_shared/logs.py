"""Logging with the ids that let one follow a message's journey: the HTTP request's correlation id and
the message id. Both live in context variables set by the web layer and by the consumer."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from contextvars import ContextVar

correlation_id: ContextVar[str] = ContextVar("correlation_id", default="-")
message_id: ContextVar[str] = ContextVar("message_id", default="-")

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
