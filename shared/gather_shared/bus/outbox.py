"""Writing outgoing messages: in the same transaction as the state change they announce.

The relay (relay.py) publishes them later; the pair is the transactional outbox, so a state change is
never committed without its message, nor a message sent for a change that was rolled back."""

from __future__ import annotations

import json
from typing import Any

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
