"""Writing outgoing messages: in the same transaction as the state change they announce.

The relay (relay.py) publishes them later; the pair is the transactional outbox, so a state change is
never committed without its message, nor a message sent for a change that was rolled back."""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from gather_shared import envelope, logs, messages
from gather_shared.db import after_commit, is_postgresql, outbox_table, utcnow

log = logging.getLogger(__name__)

#: The PostgreSQL NOTIFY channel that wakes an idle relay (relay.py) once a transaction that wrote to the
#: outbox has committed. Each process sends it at most every TELL_RELAY_EVERY_SECONDS (per database), after
#: the commit and apart from it: a transaction that notifies holds a cluster-wide lock through its commit's
#: flush to disk, so notifying in every request would make all their commits wait one for another. A relay
#: that published keeps looking for RELAY_BUSY_SECONDS, longer than that, so it finds what comes between.
OUTBOX_CHANNEL = "gather_outbox"
TELL_RELAY_EVERY_SECONDS = 1.0
_told_at: dict[str, float] = {}  # database URL → when this process last told its relay
_told_lock = threading.Lock()


def emit(session: Session, source: str, type_: str, data: dict[str, Any]) -> str:
    """Queue a message of `type_` in the current transaction; returns its id."""
    row = outbox_row(source, type_, data)
    session.execute(outbox_table.insert().values(**row))
    if is_postgresql(session):
        bind = session.get_bind()
        after_commit(session, "tell the relay", partial(tell_relay, bind if isinstance(bind, Engine) else bind.engine))
    return row["message_id"]


def outbox_row(source: str, type_: str, data: dict[str, Any]) -> dict[str, Any]:
    """The outbox row of a new message of `type_` (its body an envelope around `data`, dumped by its
    schema). For a statement that writes its own rows; `emit` is the usual way."""
    cid = logs.correlation_id.get()
    body = envelope.build(type_, source, messages.dump(type_, data), None if cid == "-" else cid)
    return {
        "message_id": body["id"],
        "type": type_,
        "body": json.dumps(body),
        "correlation_id": body["correlationid"],
        "created_at": utcnow(),
        "attempts": 0,
    }


def tell_relay(engine: Engine) -> None:
    """After a commit that wrote to the outbox of `engine`'s database (PostgreSQL): wake its relay, unless this
    process did less than TELL_RELAY_EVERY_SECONDS ago. Never raises: what was committed stands, and a relay
    not woken still looks every RELAY_LOOK_ANYWAY_SECONDS."""
    now, url = time.monotonic(), str(engine.url)
    with _told_lock:
        before = _told_at.get(url, float("-inf"))
        if now - before < TELL_RELAY_EVERY_SECONDS:
            return
        _told_at[url] = now
    try:
        with engine.connect() as conn:
            conn.execute(sa.select(sa.func.pg_notify(OUTBOX_CHANNEL, "")))
            conn.commit()
    except Exception:
        log.warning("could not wake the relay; it finds the messages at its next look", exc_info=True)
        with _told_lock:
            _told_at[url] = before  # not told: the next commit tries again


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
