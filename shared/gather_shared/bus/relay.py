"""The relay: outbox rows → the exchange. A message is deleted from the outbox only after the broker
confirmed it, so nothing is lost on the way out; a relay killed in between publishes it again on restart
(the consumer's inbox makes the second copy harmless)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import kombu
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from gather_shared import envelope, logs, metrics
from gather_shared.bus.outbox import OUTBOX_CHANNEL, TELL_RELAY_EVERY_SECONDS
from gather_shared.bus.topology import EXCHANGE, TOPIC_EXCHANGE, declare_topology
from gather_shared.bus.transport import connect, is_amqp
from gather_shared.db import is_postgresql, listen, outbox_table, utcnow, wait_for_bell

log = logging.getLogger(__name__)

CONFIRM_TIMEOUT_SECONDS = 10
RELAY_BACKOFF_MAX_SECONDS = 300
#: The relay looks for new outbox rows every RELAY_POLL_BUSY_SECONDS while messages keep coming (a row
#: waits half of this on average, a hop in every journey's latency), until it has found nothing to publish for
#: RELAY_BUSY_SECONDS. Then, on PostgreSQL, it sleeps until a process that wrote to the outbox NOTIFYs it
#: (outbox.py says why at most every TELL_RELAY_EVERY_SECONDS, hence the busy time is longer), looking
#: anyway every RELAY_LOOK_ANYWAY_SECONDS for rows whose retry came due; on SQLite, which has no NOTIFY, it
#: looks every RELAY_POLL_IDLE_SECONDS.
RELAY_POLL_BUSY_SECONDS = 0.005
RELAY_BUSY_SECONDS = 2 * TELL_RELAY_EVERY_SECONDS
RELAY_LOOK_ANYWAY_SECONDS = 5.0
RELAY_POLL_IDLE_SECONDS = 0.25


class Relay:
    """Publishes pending outbox rows with publisher confirms, then deletes them.

    Several relays may run against one database: each claims its batch with FOR UPDATE SKIP LOCKED
    (on SQLite every transaction already holds the write lock). A batch is published without waiting
    per message; the relay then waits for all its confirms, so throughput is not one round trip per
    message. Rows the broker refused or returned stay, and are retried with backoff."""

    def __init__(self, broker_url: str, sessions: sessionmaker[Session], batch_size: int = 500) -> None:
        self.broker_url = broker_url
        self.sessions = sessions
        self.batch_size = batch_size
        self._conn: kombu.Connection | None = None
        self._channel: Any = None
        #: Whether the last batch found rows, published or not: the relay stays busy after it either way, so
        #: that what its processes commit meanwhile, without telling it again, is not left waiting.
        self._found = False

    def run(self, stop: threading.Event) -> None:
        engine = self.sessions.kw["bind"]
        bell = threading.Event()  # rung by each commit that wrote to the outbox (PostgreSQL)
        listener = threading.Thread(target=listen, args=(engine, OUTBOX_CHANNEL, bell.set, stop), name="listener")
        listener.start()
        try:
            self._run(stop, engine, bell)
        finally:
            stop.set()  # the listener too
            listener.join()
            self._close()

    def _run(self, stop: threading.Event, engine: Any, bell: threading.Event) -> None:
        backoff = 0.5
        last_found = 0.0
        while not stop.is_set():
            bell.clear()  # before looking: a commit from now on rings again
            try:
                self.publish_batch()
            except Exception:
                log.exception("relay: publishing failed; retrying in %.1fs", backoff)
                self._close()
                stop.wait(backoff)
                backoff = min(backoff * 2, 10)
                continue
            backoff = 0.5
            now = time.monotonic()
            if self._found:
                last_found = now  # and look again at once: more may be waiting
            elif now - last_found < RELAY_BUSY_SECONDS:
                stop.wait(RELAY_POLL_BUSY_SECONDS)
            elif is_postgresql(engine):
                wait_for_bell(bell, stop, RELAY_LOOK_ANYWAY_SECONDS)
            else:
                stop.wait(RELAY_POLL_IDLE_SECONDS)

    def publish_batch(self) -> int:
        """Publish one batch of due rows; returns how many the broker confirmed."""
        with self.sessions.begin() as session:
            now = utcnow()
            query = (
                sa.select(
                    outbox_table.c.id,
                    outbox_table.c.message_id,
                    outbox_table.c.type,
                    outbox_table.c.body,
                    outbox_table.c.correlation_id,
                    outbox_table.c.attempts,
                    outbox_table.c.created_at,
                )
                .where(sa.or_(outbox_table.c.next_attempt_at.is_(None), outbox_table.c.next_attempt_at <= now))
                .order_by(outbox_table.c.id)
                .limit(self.batch_size)
            )
            if is_postgresql(session):
                query = query.with_for_update(skip_locked=True)
            rows = session.execute(query).all()
            self._found = bool(rows)
            # Ordered by id, the first row waited longest: "outbox older than a minute" is an alert.
            metrics.OUTBOX_OLDEST_SECONDS.set((now - rows[0].created_at).total_seconds() if rows else 0)
            if not rows:
                return 0
            failed = self._publish(rows)
            done = [row.id for row in rows if row.message_id not in failed]
            if done:
                # One statement run per row (psycopg pipelines them): compiled once, where an IN list
                # of a new length is compiled again (docs/benchmarks.md, "Measurements behind the code").
                session.execute(
                    sa.delete(outbox_table).where(outbox_table.c.id == sa.bindparam("row_id")),
                    [{"row_id": row_id} for row_id in done],
                )
            for row in rows:
                if row.message_id in failed:
                    delay = min(2**row.attempts, RELAY_BACKOFF_MAX_SECONDS)
                    log.error(
                        "relay: %s %s not accepted (%s); retry in %ss",
                        row.type,
                        row.message_id,
                        failed[row.message_id],
                        delay,
                    )
                    session.execute(
                        sa.update(outbox_table)
                        .where(outbox_table.c.id == row.id)
                        .values(attempts=row.attempts + 1, next_attempt_at=now + timedelta(seconds=delay))
                    )
            for row in rows:
                if row.message_id not in failed:
                    metrics.MESSAGES.labels(row.type, "published").inc()
                    with logs.message_context(row.message_id, row.correlation_id):
                        log.info("relay: published %s", row.type)
            return len(done)

    def _connection(self) -> kombu.Connection:
        if self._conn is None:
            conn = connect(self.broker_url)
            conn.ensure_connection(max_retries=3)
            declare_topology(conn)
            self._conn = conn
            self._channel = conn.channel()
            if is_amqp(conn):
                self._channel.confirm_select()
        return self._conn

    def _close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.release()
            except Exception:  # noqa: BLE001 - the connection is already broken; nothing to keep
                pass
        self._conn = self._channel = None

    def _publish(self, rows: Sequence[Any]) -> dict[str, str]:
        """Publish `rows`; returns {message_id: reason} for those not accepted."""
        conn = self._connection()
        if not is_amqp(conn):
            producer = kombu.Producer(self._channel, exchange=TOPIC_EXCHANGE)
            for row in rows:
                producer.publish(
                    row.body,
                    routing_key=row.type,
                    content_type=envelope.CONTENT_TYPE,
                    content_encoding="utf-8",
                    delivery_mode=2,
                    message_id=row.message_id,
                    headers=_trace_headers(row),
                )
            return {}
        return self._publish_amqp(conn, rows)

    def _publish_amqp(self, conn: kombu.Connection, rows: Sequence[Any]) -> dict[str, str]:
        channel = self._channel
        first_tag = getattr(channel, "_gather_next_tag", 1)
        by_tag: dict[int, str] = {}
        settled: dict[str, str | None] = {}  # message_id -> None (acked) or the reason it was not

        def on_ack(tag: int, multiple: bool) -> None:
            for t in [t for t in by_tag if t == tag or (multiple and t <= tag)]:
                settled.setdefault(by_tag.pop(t), None)

        def on_nack(tag: int, multiple: bool, *_: Any) -> None:
            for t in [t for t in by_tag if t == tag or (multiple and t <= tag)]:
                settled.setdefault(by_tag.pop(t), "nacked by the broker")

        def on_return(exc: Exception, exchange: str, routing_key: str, message: Any) -> None:
            # The broker sends basic.return before the ack of an unroutable mandatory message.
            settled[message.properties.get("message_id")] = f"unroutable: {routing_key}"

        channel.events["basic_ack"] = {on_ack}
        channel.events["basic_nack"] = {on_nack}
        channel.events["basic_return"] = {on_return}
        for offset, row in enumerate(rows):
            message = channel.prepare_message(
                row.body,
                content_type=envelope.CONTENT_TYPE,
                content_encoding="utf-8",
                headers=_trace_headers(row),
                properties={"delivery_mode": 2, "message_id": row.message_id},
            )
            channel.basic_publish(message, exchange=EXCHANGE, routing_key=row.type, mandatory=True)
            by_tag[first_tag + offset] = row.message_id
        channel._gather_next_tag = first_tag + len(rows)
        deadline = time.monotonic() + CONFIRM_TIMEOUT_SECONDS
        while by_tag:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{len(by_tag)} publisher confirms missing after {CONFIRM_TIMEOUT_SECONDS}s")
            conn.drain_events(timeout=remaining)
        return {mid: reason for mid, reason in settled.items() if reason is not None}


def _trace_headers(row: Any) -> dict[str, str]:
    """The message's W3C `traceparent`, continuing the trace of the request that caused it (logs.traceparent)."""
    parent = logs.traceparent(row.correlation_id)
    return {"traceparent": parent} if parent else {}
