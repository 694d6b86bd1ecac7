"""Writing outgoing messages: in the same transaction as the state change they announce.

The relay (relay.py) publishes them later; the pair is the transactional outbox, so a state change is
never committed without its message, nor a message sent for a change that was rolled back."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from gather_shared import envelope, logs, messages
from gather_shared.db import outbox_table, utcnow


def emit(session: Session, source: str, type_: str, data: dict[str, Any]) -> str:
    """Queue a message of `type_` in the current transaction; returns its id."""
    cid = logs.correlation_id.get()
    body = envelope.build(type_, source, messages.dump(type_, data), None if cid == "-" else cid)
    session.execute(
        outbox_table.insert().values(
            message_id=body["id"],
            type=type_,
            body=json.dumps(body),
            correlation_id=body["correlationid"],
            created_at=utcnow(),
            attempts=0,
        )
    )
    return body["id"]


@dataclass(frozen=True)
class Waiting:
    """An outbox row as the operator sees it (`admin outbox`): never its body, which may name someone."""

    message_id: str
    type: str
    created_at: datetime
    attempts: int
    next_attempt_at: datetime | None


def waiting(engine: Engine, older_than: timedelta) -> list[Waiting]:
    """The messages still in the outbox of `engine`'s database that were written more than `older_than`
    ago, oldest first: the relay publishes a row within moments, so these are stuck (broker unreachable,
    relay stopped, or a row the broker keeps refusing)."""
    columns = (
        outbox_table.c.message_id,
        outbox_table.c.type,
        outbox_table.c.created_at,
        outbox_table.c.attempts,
        outbox_table.c.next_attempt_at,
    )
    query = (
        sa.select(*columns).where(outbox_table.c.created_at < utcnow() - older_than).order_by(outbox_table.c.created_at)
    )
    with engine.connect() as conn:
        return [Waiting(*row) for row in conn.execute(query)]
