"""Messages in: what a handler gets (`Message`), how a body becomes one (`received`), and how its handler
runs once (`handle`, `handle_batch`): the consumer records `(source, id)` in the inbox table in the same
transaction as the handler's effects, so a redelivered message finds the row and changes nothing."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from marshmallow import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from gather_shared import envelope, logs, metrics
from gather_shared.bus.topology import sender
from gather_shared.db import inbox_table, insert, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Message:
    """A received message, validated: what a handler gets."""

    type: str
    id: str
    source: str
    time: datetime
    correlation_id: str | None
    data: dict[str, Any]


#: What a handler returns is ignored (a shared one may return what it kept, for a service that keeps more).
Handler = Callable[[Session, Message], object]


def received(body: bytes | str | dict[str, Any]) -> Message:
    """Parse and validate a message body as the consumer does: a valid envelope and `data`, from the one
    source that may send its type (raises ValidationError otherwise)."""
    env = envelope.parse(body)
    allowed = sender(env["type"])
    if env["source"] != allowed:
        raise ValidationError({"source": [f"{env['type']} may only come from {allowed}"]})
    return Message(
        type=env["type"],
        id=env["id"],
        source=env["source"],
        time=env["time"],
        correlation_id=env["correlationid"],
        data=env["data"],
    )


def handle(sessions: sessionmaker[Session], handlers: dict[str, Handler], message: Message) -> None:
    """Run the handler for `message` once: its effects and the inbox row commit together, so a
    redelivered message (same source and id) finds the row and changes nothing."""
    with sessions.begin() as session:
        _handle_in(session, handlers, [message])


def handle_batch(sessions: sessionmaker[Session], handlers: dict[str, Handler], batch: list[Message]) -> dict[str, str]:
    """Handle `batch` in one transaction; returns {message id: error} for those whose handler failed.

    Failures are rare, so the batch runs optimistically without a savepoint per message (each would cost
    a round trip); if anything fails, the whole transaction rolls back and each message is handled again
    in a transaction of its own, so one bad message never takes the others down with it."""
    if len(batch) == 1:
        return _handle_alone(sessions, handlers, batch[0])
    try:
        with sessions.begin() as session:
            _handle_in(session, handlers, batch)
        return {}
    except Exception:  # noqa: BLE001 - handled again one by one just below, where each failure is reported
        log.warning("consumer: a batch of %d failed; handling its messages one by one", len(batch))
    failed: dict[str, str] = {}
    for message in batch:
        failed |= _handle_alone(sessions, handlers, message)
    return failed


def _handle_alone(sessions: sessionmaker[Session], handlers: dict[str, Handler], message: Message) -> dict[str, str]:
    with logs.message_context(message.id, message.correlation_id):
        try:
            handle(sessions, handlers, message)
        except Exception as exc:
            log.exception("consumer: handler for %s failed", message.type)
            return {message.id: f"{type(exc).__name__}: {exc}"}
    return {}


def _handle_in(session: Session, handlers: dict[str, Handler], batch: list[Message]) -> None:
    """Record `batch` in the inbox and run the handlers of the messages seen for the first time."""
    first_time = _record_in_inbox(session, batch)
    for message in batch:
        with logs.message_context(message.id, message.correlation_id):
            key = (message.source, message.id)
            if key not in first_time:
                log.info("consumer: %s already handled; ignored", message.type)
                metrics.MESSAGES.labels(message.type, "duplicate").inc()
                continue
            first_time.discard(key)  # a second copy within the same batch is a duplicate too
            handler = handlers.get(message.type)
            if handler is None:
                log.info("consumer: no handler for %s; nothing to do", message.type)
                continue
            handler(session, message)
            log.info("consumer: handled %s", message.type)


def _record_in_inbox(session: Session, batch: list[Message]) -> set[tuple[str, str]]:
    """Insert the batch's inbox rows in one statement; returns the (source, id) of those not there yet.
    (One statement per batch rather than per message: docs/benchmarks.md, "Measurements behind the code".)"""
    now = utcnow()
    inserted = session.execute(
        insert(session, inbox_table)
        .on_conflict_do_nothing(index_elements=["source", "message_id"])
        .returning(inbox_table.c.source, inbox_table.c.message_id),
        [{"source": m.source, "message_id": m.id, "type": m.type, "handled_at": now} for m in batch],
    )
    return {(source, message_id) for source, message_id in inserted}
