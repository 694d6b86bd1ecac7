"""The bus end to end inside one process: outbox → relay → broker → consumer → handler, on the embedded
transport with SQLite and on RabbitMQ with PostgreSQL."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import kombu
import pytest
import sqlalchemy as sa
from kombu.transport import filesystem
from sqlalchemy.orm import Session

from gather_shared import envelope, messages
from gather_shared.bus import Consumer, Message, Relay, connect, emit, handle_batch, received, topology
from gather_shared.bus.consumer import ERROR_HEADER
from gather_shared.db import bus_metadata, make_engine, session_factory
from gather_shared.testing import fresh_pg_database, wait_for

QUEUE = topology.CONSUMERS["signup"]
effects = sa.Table(
    "effects", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True), sa.Column("organizer_id", sa.String(40))
)


def key_issued(organizer_id: uuid.UUID | None = None) -> dict:
    return {"organizer_id": organizer_id or uuid.uuid4(), "name": "Mind Matters", "api_key_hash": "a" * 64}


@dataclass
class Bus:
    broker_url: str
    engine: sa.Engine

    @property
    def sessions(self) -> sa.orm.sessionmaker[Session]:
        return session_factory(self.engine)

    def effects(self) -> list[str]:
        with self.engine.connect() as conn:
            return [row.organizer_id for row in conn.execute(sa.select(effects.c.organizer_id))]

    def publish_raw(self, body: str, routing_key: str) -> None:
        with connect(self.broker_url) as conn:
            topology.declare_topology(conn)
            kombu.Producer(conn.default_channel).publish(
                body,
                exchange=topology.EXCHANGE,
                routing_key=routing_key,
                content_type=envelope.CONTENT_TYPE,
                content_encoding="utf-8",
            )

    def waiting(self, queue_name: str) -> int:
        """How many messages `queue_name` holds, leaving them there."""
        with connect(self.broker_url) as conn:
            return conn.default_channel.queue_declare(queue=queue_name, passive=True).message_count

    def drain(self, queue_name: str) -> list[kombu.Message]:
        got = []
        with connect(self.broker_url) as conn:
            queue = kombu.Queue(
                queue_name,
                kombu.Exchange(""),
                routing_key=queue_name,
                durable=True,
                queue_arguments={"x-queue-type": "quorum"},
            )(conn.default_channel)
            while (message := queue.get(no_ack=True)) is not None:
                got.append(message)
        return got


@pytest.fixture(params=["embedded", "real"])
def bus(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Bus]:
    monkeypatch.chdir(tmp_path)  # the embedded transport keeps its files under ./var/broker
    if request.param == "embedded":
        # kombu's filesystem transport remembers bindings per process; this test moved to a new broker folder.
        filesystem.Transport.global_state.clear()
        engine = make_engine(f"sqlite:///{tmp_path}/bus.db")
        bus_metadata.create_all(engine)
        effects.create(engine)
        yield Bus("filesystem://", engine)
        return
    amqp = request.getfixturevalue("clean_amqp_url")
    with fresh_pg_database(request.getfixturevalue("pg_server_url")) as db_url:
        engine = make_engine(db_url)
        bus_metadata.create_all(engine)
        effects.create(engine)
        yield Bus(amqp, engine)
        engine.dispose()


def record(session: Session, message: Message) -> None:
    session.execute(effects.insert().values(organizer_id=str(message.data["organizer_id"])))


@pytest.fixture
def run_consumer(bus: Bus) -> Iterator[Callable[..., Consumer]]:
    started: list[tuple[Consumer, threading.Thread]] = []

    def start(
        handlers: dict | None = None,
        retry_delays: tuple[int, ...] = (1, 1, 1),
        dead_letter_ttl: float = topology.DEAD_LETTER_TTL_SECONDS,
    ) -> Consumer:
        consumer = Consumer(
            bus.broker_url,
            QUEUE,
            bus.sessions,
            handlers or {"organizer.key_issued.v1": record},
            retry_delays=retry_delays,
            dead_letter_ttl=dead_letter_ttl,
        )
        thread = threading.Thread(target=consumer.run, daemon=True)
        thread.start()
        started.append((consumer, thread))
        return consumer

    yield start
    for consumer, thread in started:
        consumer.should_stop = True
        thread.join(timeout=10)


def emit_committed(bus: Bus, count: int = 1) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in range(count)]
    with bus.sessions.begin() as session:
        for organizer_id in ids:
            emit(session, "/gather/events", "organizer.key_issued.v1", key_issued(uuid.UUID(organizer_id)))
    return ids


def test_a_committed_message_reaches_its_handler_once(bus: Bus, run_consumer: Callable[..., Consumer]) -> None:
    run_consumer()
    ids = emit_committed(bus, 3)
    assert Relay(bus.broker_url, bus.sessions).publish_batch() == 3
    assert wait_for(lambda: sorted(bus.effects()) == sorted(ids) or None, message="3 effects")
    with bus.engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(sa.table("outbox"))) == 0


def test_a_rolled_back_change_sends_no_message(bus: Bus) -> None:
    with pytest.raises(RuntimeError), bus.sessions.begin() as session:
        emit(session, "/gather/events", "organizer.key_issued.v1", key_issued())
        raise RuntimeError("the state change failed")
    assert Relay(bus.broker_url, bus.sessions).publish_batch() == 0


def test_a_message_delivered_twice_has_one_effect(bus: Bus, run_consumer: Callable[..., Consumer]) -> None:
    run_consumer()
    body = json.dumps(
        envelope.build(
            "organizer.key_issued.v1", "/gather/events", messages.dump("organizer.key_issued.v1", key_issued()), None
        )
    )
    bus.publish_raw(body, "organizer.key_issued.v1")
    bus.publish_raw(body, "organizer.key_issued.v1")
    marker = emit_committed(bus)  # a later message: once it is handled, both copies were seen
    Relay(bus.broker_url, bus.sessions).publish_batch()
    wait_for(lambda: marker[0] in bus.effects(), message="the later message")
    assert len(bus.effects()) == 2


def test_copies_within_one_batch_and_across_batches_have_one_effect(bus: Bus) -> None:
    # A relay that dies between the broker's confirm and deleting its rows publishes them again, and both
    # copies can arrive within one consumer batch (handled in one transaction).
    first, second = (
        received(
            envelope.build(
                "organizer.key_issued.v1",
                "/gather/events",
                messages.dump("organizer.key_issued.v1", key_issued()),
                None,
            )
        )
        for _ in range(2)
    )
    handlers = {"organizer.key_issued.v1": record}
    assert handle_batch(bus.sessions, handlers, [first, first, second]) == {}
    assert handle_batch(bus.sessions, handlers, [second, first]) == {}
    assert sorted(bus.effects()) == sorted(str(m.data["organizer_id"]) for m in (first, second))


def test_invalid_messages_go_to_the_dead_letter_queue_and_the_queue_keeps_flowing(
    bus: Bus, run_consumer: Callable[..., Consumer]
) -> None:
    run_consumer()
    bus.publish_raw("this is not json", "organizer.key_issued.v1")
    invalid = envelope.build("organizer.key_issued.v1", "/gather/events", {"organizer_id": "not-a-uuid"}, None)
    bus.publish_raw(json.dumps(invalid), "organizer.key_issued.v1")
    ids = emit_committed(bus)
    Relay(bus.broker_url, bus.sessions).publish_batch()
    wait_for(lambda: bus.effects() == ids, message="the good message")
    dead = wait_for(lambda: (got := bus.drain(QUEUE.dlq)) and got, message="dead letters")
    dead += bus.drain(QUEUE.dlq)
    assert sorted(m.body.decode() if isinstance(m.body, bytes) else m.body for m in dead) == sorted(
        ["this is not json", json.dumps(invalid)]
    )


def test_a_message_from_a_source_that_may_not_send_its_type_is_dead_lettered(
    bus: Bus, run_consumer: Callable[..., Consumer]
) -> None:
    run_consumer()
    data = messages.dump("organizer.key_issued.v1", key_issued())
    forged = envelope.build("organizer.key_issued.v1", "/gather/signup", data, None)  # only events issues keys
    bus.publish_raw(json.dumps(forged), "organizer.key_issued.v1")
    ids = emit_committed(bus)  # from /gather/events: handled
    Relay(bus.broker_url, bus.sessions).publish_batch()
    wait_for(lambda: bus.effects() == ids, message="the message from the events service")
    dead = wait_for(lambda: bus.drain(QUEUE.dlq), message="the forged message's dead letter")
    assert [json.loads(m.body)["id"] for m in dead] == [forged["id"]]
    assert "may only come from /gather/events" in dead[0].headers[ERROR_HEADER]
    assert dead[0].properties["expiration"] == str(topology.DEAD_LETTER_TTL_SECONDS * 1000)


def test_a_dead_letter_is_gone_once_its_time_to_live_has_passed(
    bus: Bus, run_consumer: Callable[..., Consumer]
) -> None:
    run_consumer(dead_letter_ttl=5)
    bus.publish_raw("this is not json", "organizer.key_issued.v1")
    wait_for(lambda: bus.waiting(QUEUE.dlq) == 1, message="the dead letter")
    wait_for(lambda: bus.waiting(QUEUE.dlq) == 0, timeout=60, message="the dead letter to expire")


def test_a_failing_handler_is_retried_until_it_succeeds(bus: Bus, run_consumer: Callable[..., Consumer]) -> None:
    calls = []

    def flaky(session: Session, message: Message) -> None:
        calls.append(message.id)
        if len(calls) < 3:
            raise ConnectionError("the mail server is down")
        record(session, message)

    run_consumer({"organizer.key_issued.v1": flaky})
    ids = emit_committed(bus)
    Relay(bus.broker_url, bus.sessions).publish_batch()
    wait_for(lambda: bus.effects() == ids, timeout=30, message="success on the third attempt")
    assert len(calls) == 3


def test_a_handler_that_keeps_failing_is_dead_lettered_after_its_retries(
    bus: Bus, run_consumer: Callable[..., Consumer]
) -> None:
    calls = []

    def broken(session: Session, message: Message) -> None:
        calls.append(message.id)
        raise ValueError("a bug")

    run_consumer({"organizer.key_issued.v1": broken}, retry_delays=(1, 1))
    emit_committed(bus)
    Relay(bus.broker_url, bus.sessions).publish_batch()
    dead = wait_for(lambda: bus.drain(QUEUE.dlq), timeout=30, message="the dead letter")
    assert len(calls) == 3  # the first try and two retries
    assert "ValueError: a bug" in dead[0].headers[ERROR_HEADER]


@pytest.mark.parametrize("bus", ["real"], indirect=True)  # the claim under test is PostgreSQL's SKIP LOCKED
def test_several_relays_publish_each_message_exactly_once(bus: Bus, run_consumer: Callable[..., Consumer]) -> None:
    ids = emit_committed(bus, 600)
    relays = [Relay(bus.broker_url, bus.sessions, batch_size=50) for _ in range(3)]
    threads = [threading.Thread(target=lambda r=r: [r.publish_batch() for _ in range(20)]) for r in relays]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    received = []
    with connect(bus.broker_url) as conn:
        queue = topology.main_queue(QUEUE)(conn.default_channel)
        while len(received) < len(ids) + 1:  # one more: nothing beyond the 600 may arrive
            if len(received) == len(ids):
                assert queue.get(no_ack=True) is None
                break
            message = wait_for(lambda: queue.get(no_ack=True), message=f"message {len(received) + 1}")
            received.append(json.loads(message.body)["data"]["organizer_id"])
    assert sorted(received) == sorted(ids)


def test_one_failing_message_in_a_batch_does_not_hold_back_the_others(
    bus: Bus, run_consumer: Callable[..., Consumer]
) -> None:
    ids = emit_committed(bus, 20)
    poison = ids[7]

    def picky(session: Session, message: Message) -> None:
        if str(message.data["organizer_id"]) == poison:
            raise ValueError("cannot handle this one")
        record(session, message)

    Relay(bus.broker_url, bus.sessions).publish_batch()  # all 20 wait in the queue: the consumer takes a batch
    run_consumer({"organizer.key_issued.v1": picky}, retry_delays=(1,))
    wait_for(lambda: len(bus.effects()) == 19, message="the 19 good messages")
    dead = wait_for(lambda: bus.drain(QUEUE.dlq), timeout=30, message="the poison message's dead letter")
    assert sorted(bus.effects()) == sorted(set(ids) - {poison})
    assert json.loads(dead[0].body)["data"]["organizer_id"] == poison


def test_an_erasure_takes_the_dead_letters_and_retries_about_that_registration_with_it(bus: Bus) -> None:
    queue = topology.CONSUMERS["notifications"]  # the queue that hears of registrations and their erasure
    erased, kept = str(uuid.uuid4()), str(uuid.uuid4())
    retry_queue = queue.retry_queue(max(topology.RETRY_DELAYS_SECONDS))
    with connect(bus.broker_url) as conn:
        topology.declare_topology(conn, queue)
        producer = kombu.Producer(conn.default_channel)
        copies = [(queue.dlq, erased), (queue.dlq, kept)]
        if not bus.broker_url.startswith("filesystem://"):  # the embedded transport keeps retries in memory
            copies.append((retry_queue, erased))
        for queue_name, signup_id in copies:
            body = json.dumps({"data": {"signup_id": signup_id, "email": f"{signup_id}@example.org"}})
            producer.publish(body, exchange="", routing_key=queue_name, content_type=envelope.CONTENT_TYPE)
    consumer = Consumer(bus.broker_url, queue, bus.sessions, {"signup.erased.v1": lambda session, message: None})
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    try:
        with bus.sessions.begin() as session:
            emit(session, "/gather/signup", "signup.erased.v1", {"signup_id": erased, "event_id": uuid.uuid4()})
        Relay(bus.broker_url, bus.sessions).publish_batch()
        wait_for(lambda: bus.waiting(queue.dlq) == 1, message="the dead letter about the erased registration to go")
        assert bus.waiting(retry_queue) == 0
    finally:
        consumer.should_stop = True
        thread.join(timeout=10)
    [left] = bus.drain(queue.dlq)
    assert kept in (left.body.decode() if isinstance(left.body, bytes) else left.body)
