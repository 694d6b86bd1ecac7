"""Message pipeline: how fast messages go from an outbox row to handled by a consumer, confirms on.

Figure: messages/s through Gather's own bus (gather_shared.bus): N `signup.confirmed.v1` rows are
committed to an outbox in one transaction while a relay process and a consumer process are running and
warm; the clock stops when the consumer's inbox holds all N (each handled in its own transaction).
Baseline: the same N bodies published with raw pika (publisher confirms, pipelined: all published,
then the confirms counted) to a durable quorum queue and consumed (prefetch and acks as ours) by
another process. Both sides run as separate processes, as they do in production."""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
import uuid
from datetime import UTC, datetime
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event
from typing import Any

import sqlalchemy as sa

from bench.harness import Result, Run, databases, progress, vhost
from gather_shared import bus, envelope, messages
from gather_shared.bus import topology
from gather_shared.bus.consumer import PREFETCH  # the raw baseline consumes with our prefetch
from gather_shared.db import bus_metadata, inbox_table, make_engine, outbox_table, session_factory
from gather_shared.testing import wait_for

TYPE = "signup.confirmed.v1"
QUEUE = topology.CONSUMERS["notifications"]  # the queue that signup.* messages are routed to
RAW_QUEUE = "bench.raw"
TARGET_RATIO = 0.5
BOUND_SECONDS = 60  # past this, our side's figure is the rate of the messages handled so far
SPAWN = multiprocessing.get_context("spawn")  # children start clean: no inherited connections or threads


def body() -> dict[str, Any]:
    data = {
        "signup_id": uuid.uuid4(),
        "event_id": uuid.uuid4(),
        "status": "confirmed",
        "display_name": "Sam",
        "email": "sam@example.org",
        "channels": ["email"],
        "consent_reminders": True,
        "token_version": 1,
        "created_at": datetime.now(UTC),
    }
    return envelope.build(TYPE, "/gather/signup", messages.dump(TYPE, data), None)


# --- ours: outbox → relay → RabbitMQ → consumer → inbox ---------------------------------------------------


def _relay(database_url: str, broker_url: str) -> None:
    bus.Relay(broker_url, session_factory(make_engine(database_url))).run(threading.Event())


def _consume(database_url: str, broker_url: str) -> None:
    handlers: dict[str, bus.Handler] = {TYPE: lambda session, message: None}
    bus.Consumer(broker_url, QUEUE, session_factory(make_engine(database_url)), handlers).run()


def _fill_outbox(database_url: str, n: int) -> None:
    engine = make_engine(database_url)
    rows = []
    for _ in range(n):
        envelope_ = body()
        rows.append(
            {
                "message_id": envelope_["id"],
                "type": TYPE,
                "body": json.dumps(envelope_),
                "correlation_id": envelope_["correlationid"],
                "created_at": datetime.now(UTC),
                "attempts": 0,
            }
        )
    with engine.begin() as conn:  # one commit: the rows appear to the relay all at once
        conn.execute(outbox_table.insert(), rows)
    engine.dispose()


def ours(run: Run, broker_url: str, n: int) -> float:
    with databases(run, "producer", "consumer") as urls:
        engines = {name: make_engine(url) for name, url in urls.items()}
        for engine in engines.values():
            bus_metadata.create_all(engine)

        def handled() -> int:
            with engines["consumer"].connect() as conn:
                return conn.scalar(sa.select(sa.func.count()).select_from(inbox_table)) or 0

        def last_handled_at() -> float:
            with engines["consumer"].connect() as conn:
                return conn.scalar(sa.select(sa.func.max(inbox_table.c.handled_at))).timestamp()

        children = [
            SPAWN.Process(target=_consume, args=(urls["consumer"], broker_url), daemon=True),
            SPAWN.Process(target=_relay, args=(urls["producer"], broker_url), daemon=True),
        ]
        for child in children:
            child.start()
        try:
            _fill_outbox(urls["producer"], 1)  # warm-up: connections made, topology declared
            wait_for(lambda: handled() == 1, 60, message="the warm-up message", interval=0.1)
            progress(f"pipeline (ours): committing {n} outbox rows")
            _fill_outbox(urls["producer"], n)
            started = time.time()  # wall clock: the inbox records when each message was handled

            deadline = started + BOUND_SECONDS
            while (count := handled() - 1) < n and time.time() < deadline:
                progress(f"pipeline (ours): {count}/{n} handled")
                time.sleep(1)
            return count / (last_handled_at() - started)  # within the bound, if not all of them
        finally:
            for child in children:
                child.terminate()
                child.join(10)
            for engine in engines.values():
                engine.dispose()


# --- raw pika -----------------------------------------------------------------------------------------


def _raw_consume(url: str, n: int, ready: Event, received: Synchronized, finished: Synchronized) -> None:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.queue_declare(RAW_QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
    channel.basic_qos(prefetch_count=PREFETCH)

    def on_message(ch: Any, method: Any, _properties: Any, _body: bytes) -> None:
        ch.basic_ack(method.delivery_tag)
        received.value += 1
        if received.value >= n:
            finished.value = time.time()
            ch.stop_consuming()

    channel.basic_consume(RAW_QUEUE, on_message)
    ready.set()
    channel.start_consuming()
    connection.close()


def _raw_publish(url: str, bodies: list[str], ready: Event, go: Event) -> None:
    import pika
    from pika.spec import Basic

    pending = set(range(1, len(bodies) + 1))
    lowest = 1

    def on_confirm(frame: Any) -> None:
        nonlocal lowest
        tag, multiple = frame.method.delivery_tag, frame.method.multiple
        if not isinstance(frame.method, Basic.Ack):
            raise RuntimeError(f"broker nacked {tag}")
        if multiple:
            for t in range(lowest, tag + 1):
                pending.discard(t)
            lowest = tag + 1
        else:
            pending.discard(tag)
        if not pending:
            connection.close()

    def on_channel(channel: Any) -> None:
        channel.confirm_delivery(on_confirm)
        ready.set()
        go.wait()
        properties = pika.BasicProperties(delivery_mode=2, content_type=envelope.CONTENT_TYPE)
        for text in bodies:
            channel.basic_publish("", RAW_QUEUE, text, properties)

    connection = pika.SelectConnection(
        pika.URLParameters(url), on_open_callback=lambda conn: conn.channel(on_open_callback=on_channel)
    )
    connection.ioloop.start()


def raw(url: str, n: int) -> float:
    bodies = [json.dumps(body()) for _ in range(n)]
    ready, go, received, finished = SPAWN.Event(), SPAWN.Event(), SPAWN.Value("i", 0), SPAWN.Value("d", 0.0)
    consumer = SPAWN.Process(target=_raw_consume, args=(url, n, ready, received, finished), daemon=True)
    consumer.start()
    ready.wait(60)
    ready.clear()
    publisher = SPAWN.Process(target=_raw_publish, args=(url, bodies, ready, go), daemon=True)
    publisher.start()
    ready.wait(60)  # connected, channel open: the clock starts at the first publish
    progress(f"pipeline (raw pika): publishing {n}")
    started = time.time()
    go.set()

    try:
        wait_for(lambda: received.value >= n, BOUND_SECONDS, message="every raw message to be consumed", interval=1.0)
        return n / (finished.value - started)
    finally:
        for child in (publisher, consumer):
            child.terminate()
            child.join(10)


def run(run: Run) -> list[Result]:
    n = run.sizes.pipeline_messages
    with vhost(run) as broker_url:  # one virtual host: the two use different queues
        base = raw(broker_url, n)
        progress(f"pipeline (raw pika): {base:,.0f} msg/s")
        figure = ours(run, broker_url, n)
    progress(f"pipeline (ours): {figure:,.0f} msg/s")
    return [
        Result(
            "message pipeline",
            figure,
            "msg/s",
            base,
            target=f">= {TARGET_RATIO:.0%} of raw",
            met=figure >= TARGET_RATIO * base,
            details={"messages": n},
        )
    ]
