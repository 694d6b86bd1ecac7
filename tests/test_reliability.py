"""Nothing lost, nothing twice — proven on the real stack (PostgreSQL + RabbitMQ) with real processes:
a relay killed mid-flight, messages published twice or malformed, the broker stopped under load."""

from __future__ import annotations

import json
import subprocess
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pika
import sqlalchemy as sa

from gather_shared import envelope, messages
from gather_shared.db import make_engine
from gather_shared.testing import Client, Platform, wait_for

#: These tests count registrations taken at once (201): an event that asks no verification of contacts.
AT_ONCE = {"kind": "workshop", "verification": "none"}


def sent_confirmations(client: Client, event_id: str) -> list[dict]:
    return [
        n for n in client.notifications(event_id=event_id) if n["kind"] == "signup_confirmed" and n["status"] == "sent"
    ]


def emails(platform: Platform) -> list[Path]:
    return list((platform.workdir / "var/outbox/email").glob("*.eml"))


def pika_channel(amqp_url: str) -> pika.adapters.blocking_connection.BlockingChannel:
    return pika.BlockingConnection(pika.URLParameters(amqp_url)).channel()


def test_a_relay_killed_after_publishing_but_before_marking_causes_one_effect(real_platform: Platform) -> None:
    client = Client(real_platform)
    event = client.published_event(client.organizer()["api_key"], **AT_ONCE)
    signup_db = make_engine(real_platform.database_urls["signup"])
    # The event's own seat counts (signup.availability_changed.v1, sent when signup learns the event) go
    # out before the relay is held, so that only the registration's messages wait below.
    learned_and_drained = sa.text(
        "SELECT EXISTS (SELECT 1 FROM events WHERE id = :id) AND NOT EXISTS (SELECT 1 FROM outbox)"
    ).bindparams(id=uuid.UUID(event["id"]))
    with signup_db.connect() as conn:
        wait_for(lambda: conn.scalar(learned_and_drained), message="signup to learn the event and send its seats")
    # Hold the relay between "the broker confirmed" and "the outbox row is deleted": a trigger makes its
    # DELETE wait for an advisory lock that this test holds.
    holder = signup_db.connect()
    holder.execute(sa.text("SELECT pg_advisory_lock(4242)"))
    holder.commit()
    with signup_db.begin() as conn:
        conn.execute(
            sa.text("""
            CREATE FUNCTION hold_relay() RETURNS trigger AS $$
            BEGIN PERFORM pg_advisory_xact_lock(4242); RETURN OLD; END $$ LANGUAGE plpgsql""")
        )
        conn.execute(
            sa.text("CREATE TRIGGER hold_relay BEFORE DELETE ON outbox FOR EACH ROW EXECUTE FUNCTION hold_relay()")
        )

    signup = client.register(event["id"]).json()
    # The message was published: the confirmation goes out while the relay still waits to mark it.
    wait_for(lambda: sent_confirmations(client, event["id"]), message="the confirmation")
    with signup_db.connect() as conn:
        # not marked yet: the confirmation, and the event's new seat counts
        assert conn.scalar(sa.text("SELECT count(*) FROM outbox")) == 2

    real_platform.kill("signup-relay")  # SIGKILL: no chance to clean up
    # Let the dead relay's transaction run on: with its client gone it can only roll back.
    holder.execute(sa.text("SELECT pg_advisory_unlock(4242)"))
    holder.close()
    with signup_db.begin() as conn:
        conn.execute(sa.text("DROP TRIGGER hold_relay ON outbox"))
    real_platform.start("signup-relay")

    wait_for(
        lambda: "already handled" in real_platform.tail("notifications-consumer", 400),
        message="the republished message to reach the consumer",
    )
    with signup_db.connect() as conn:
        wait_for(lambda: conn.scalar(sa.text("SELECT count(*) FROM outbox")) == 0, message="the outbox to drain")
    assert len(sent_confirmations(client, event["id"])) == 1
    assert len(emails(real_platform)) == 1
    assert client.call("GET", "signup", f"/v1/signups/{signup['id']}", signup["manage_token"]).status_code == 200
    signup_db.dispose()


def registration_envelope(event_id: str, email: str) -> dict:
    data = {
        "signup_id": uuid.uuid4(),
        "event_id": uuid.UUID(event_id),
        "status": "confirmed",
        "display_name": "Alex",
        "email": email,
        "phone": None,
        "channels": ["email"],
        "timezone": None,
        "consent_reminders": False,
        "waitlist_position": None,
        "token_version": 1,
        "created_at": datetime.now(UTC),
    }
    return envelope.build("signup.confirmed.v1", "/gather/signup", messages.dump("signup.confirmed.v1", data), None)


def publish(amqp_url: str, routing_key: str, body: str) -> None:
    channel = pika_channel(amqp_url)
    channel.confirm_delivery()
    channel.basic_publish(
        "gather.events",
        routing_key,
        body.encode(),
        pika.BasicProperties(content_type=envelope.CONTENT_TYPE, delivery_mode=2),
    )
    channel.connection.close()


def test_the_same_message_published_twice_sends_one_email(real_platform: Platform) -> None:
    client = Client(real_platform)
    event = client.published_event(client.organizer()["api_key"], **AT_ONCE)
    wait_for(lambda: client.register(event["id"], email="first@example.org").status_code == 201)
    wait_for(lambda: sent_confirmations(client, event["id"]), message="the notifications service knows the event")
    body = json.dumps(registration_envelope(event["id"], "twice@example.org"))
    publish(real_platform.env["GATHER_BROKER_URL"], "signup.confirmed.v1", body)
    publish(real_platform.env["GATHER_BROKER_URL"], "signup.confirmed.v1", body)

    wait_for(lambda: "already handled" in real_platform.tail("notifications-consumer", 400), message="the second copy")
    wait_for(lambda: len(sent_confirmations(client, event["id"])) == 2, message="the first copy's email")
    recipients = sorted(p.read_text().split("To: ", 1)[1].split("\n", 1)[0] for p in emails(real_platform))
    assert recipients == ["first@example.org", "twice@example.org"]


def test_malformed_and_invalid_messages_are_dead_lettered_and_the_queue_keeps_flowing(real_platform: Platform) -> None:
    amqp_url = real_platform.env["GATHER_BROKER_URL"]
    client = Client(real_platform)
    event = client.published_event(client.organizer()["api_key"], **AT_ONCE)
    invalid = registration_envelope(event["id"], "x@example.org")
    invalid["data"]["channels"] = ["pigeon"]
    publish(amqp_url, "signup.confirmed.v1", "{this is not json")
    publish(amqp_url, "signup.confirmed.v1", json.dumps(invalid))

    assert client.register(event["id"]).status_code == 201
    wait_for(lambda: sent_confirmations(client, event["id"]), message="the good message after the bad ones")

    channel = pika_channel(amqp_url)
    dead: list[bytes] = []

    def two_dead_letters() -> bool:
        method, _properties, body = channel.basic_get("gather.notifications.dlq", auto_ack=True)
        if method is not None:
            dead.append(body)
        return len(dead) == 2

    wait_for(two_dead_letters, message="two dead letters")
    assert sorted(dead) == sorted([b"{this is not json", json.dumps(invalid).encode()])
    channel.connection.close()


def test_registrations_survive_a_broker_restart(real_platform: Platform) -> None:
    client = Client(real_platform)
    event = client.published_event(client.organizer()["api_key"], capacity=None, **AT_ONCE)
    wait_for(lambda: client.register(event["id"], email="warmup@example.org").status_code == 201)
    statuses: list[int] = []
    done = threading.Event()

    def register_steadily() -> None:
        for i in range(40):
            statuses.append(client.register(event["id"], wait=False, email=f"a{i}@example.org").status_code)
            done.wait(0.1)

    worker = threading.Thread(target=register_steadily)
    worker.start()
    wait_for(lambda: len(statuses) >= 5, message="registrations to flow")
    subprocess.run(["rabbitmqctl", "-q", "stop_app"], check=True)
    try:
        wait_for(lambda: len(statuses) >= 20, message="registrations while the broker is down")
    finally:
        subprocess.run(["rabbitmqctl", "-q", "start_app"], check=True)
        subprocess.run(["rabbitmqctl", "-q", "await_startup"], check=True)
    worker.join()

    assert statuses == [201] * 40  # no web request failed because the broker was down
    wait_for(
        lambda: len(sent_confirmations(client, event["id"])) == 41,
        timeout=90,
        message="every confirmation after the broker came back",
    )
    assert len(emails(real_platform)) == 41
