"""Erasure reaches every copy: across the running processes, someone registers with a distinctive email,
phone number and name, their email and SMS are written, a dead letter about them waits on the broker,
and they ask to be erased. Then every table of every database, every file under the working directory
(SQLite files and their -wal, .eml files, sms.jsonl, broker files), every queue (retry and dead-letter
queues included) and every line the processes logged is searched for them: nothing.

The same search run before the erasure finds them, so a search that looks nowhere cannot pass. The platform
is the one the cross-service tests share (the plugin's `platform`, every database on PostgreSQL on the real
tier): what the others left is searched too, and holds nothing of someone they never met."""

from __future__ import annotations

import base64
import json
import os
import secrets
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import kombu
import sqlalchemy as sa

from gather_shared import envelope, messages
from gather_shared.bus import topology
from gather_shared.bus.consumer import ATTEMPT_HEADER, ERROR_HEADER
from gather_shared.bus.transport import connect, drop_mentioning
from gather_shared.db import sqlalchemy_url
from gather_shared.testing import Client, Platform, unique_phone, wait_for

# --- what is searched, and where ---------------------------------------------------------------------


class Person:
    """Someone with contact details found nowhere else: a distinctive address, number and pseudonym."""

    def __init__(self, label: str) -> None:
        tag = secrets.token_hex(4)
        self.email = f"{label}-{tag}@example.org"
        self.phone = unique_phone()
        self.display_name = f"{label.capitalize()}{tag}"

    def needles(self) -> dict[str, str]:
        # The number is also searched without its +, which a URL or a form would encode.
        return {"email": self.email.lower(), "phone": self.phone[1:], "display name": self.display_name.lower()}


def _broker_file_text(raw: bytes) -> str:
    """A filesystem-broker message file with its body decoded (kombu stores bodies base64-encoded)."""
    try:
        payload = json.loads(raw)
        body = payload["body"]
        if payload.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body).decode("utf-8", "replace")
        return raw.decode("utf-8", "replace") + body
    except (ValueError, KeyError, TypeError):
        return raw.decode("utf-8", "replace")


def _files(workdir: Path) -> Iterator[tuple[str, str]]:
    """Every file under the working directory, as text: var/ (SQLite files and their -wal and -shm, the
    email and SMS outboxes, broker messages, secrets) and the processes' logs."""
    for path in sorted(workdir.rglob("*")):
        try:
            raw = path.read_bytes() if path.is_file() else None
        except FileNotFoundError:  # a broker message consumed meanwhile
            continue
        if raw is not None:
            text = _broker_file_text(raw) if path.suffix == ".msg" else raw.decode("utf-8", "replace")
            yield str(path.relative_to(workdir)), text


def _sqlite_rows(workdir: Path) -> Iterator[tuple[str, str]]:
    """Every row of every table of every SQLite database under var/, read through SQLite (so that what a
    -wal holds counts too)."""
    for path in sorted((workdir / "var").glob("*.db")):
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for table in tables:
                for row in conn.execute(f'SELECT * FROM "{table}"'):
                    yield f"{path.name}:{table}", repr(row)
        finally:
            conn.close()


def _postgresql_rows(database_urls: dict[str, str]) -> Iterator[tuple[str, str]]:
    for service, url in database_urls.items():
        engine = sa.create_engine(sqlalchemy_url(url), poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                tables = conn.scalars(
                    sa.text("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
                ).all()
                for table in tables:
                    for (row,) in conn.execute(sa.text(f'SELECT t::text FROM "{table}" t')):
                        yield f"{service}:{table}", row
        finally:
            engine.dispose()


def _queue_names() -> list[str]:
    return [queue.name for q in topology.CONSUMERS.values() for queue in topology.queues(q)]


def _amqp_messages(broker_url: str) -> Iterator[tuple[str, str]]:
    """Every message waiting in every queue (main, retry, dead-letter), peeked: taken without an ack and
    given back when the channel closes."""
    with kombu.Connection(broker_url, connect_timeout=5) as conn:
        for name in _queue_names():
            channel = conn.channel()
            try:
                while (message := channel.basic_get(name, no_ack=False)) is not None:
                    yield (
                        f"queue {name}",
                        message.body.decode("utf-8", "replace")
                        if isinstance(message.body, bytes)
                        else str(message.body),
                    )
            finally:
                channel.close()


def sweep(platform: Platform, person: Person) -> dict[str, list[str]]:
    """Where each of `person`'s details is found: {detail: [places]}."""
    places: list[tuple[str, str]] = [*_files(platform.workdir), *_sqlite_rows(platform.workdir)]
    if platform.database_urls:
        places += _postgresql_rows(platform.database_urls)
    broker_url = platform.env.get("GATHER_BROKER_URL")
    if broker_url:
        places += _amqp_messages(broker_url)
    found: dict[str, list[str]] = {}
    for what, needle in person.needles().items():
        hits = sorted({place for place, text in places if needle in text.lower()})
        if hits:
            found[what] = hits
    return found


# --- a dead letter about someone, as a handler that kept failing leaves it ---------------------------


def _registration_message(person: Person, signup: dict[str, Any]) -> str:
    data = messages.dump(
        "signup.confirmed.v1",
        {
            "signup_id": signup["id"],
            "event_id": signup["event_id"],
            "status": "confirmed",
            "display_name": person.display_name,
            "email": person.email,
            "phone": person.phone,
            "channels": ["email", "sms"],
            "timezone": None,
            "consent_reminders": True,
            "waitlist_position": None,
            "created_at": datetime.fromisoformat(signup["created_at"]),
        },
    )
    return json.dumps(envelope.build("signup.confirmed.v1", "/gather/signup", data, None))


def _broker(platform: Platform) -> tuple[kombu.Connection, list[str]]:
    """A connection to the platform's broker, and the queues where this test leaves copies: the notifications
    service's dead-letter queue and, on RabbitMQ, a retry queue (the embedded transport keeps its retries
    in memory)."""
    notifications = topology.CONSUMERS["notifications"]
    queues = [notifications.dlq]
    broker_url = platform.env.get("GATHER_BROKER_URL")
    if broker_url:
        queues.append(notifications.retry_queue(max(topology.RETRY_DELAYS_SECONDS)))
        return kombu.Connection(broker_url, connect_timeout=5), queues
    cwd = Path.cwd()
    os.chdir(platform.workdir)  # the embedded broker is var/broker of the platform's directory
    try:
        return connect("filesystem://"), queues
    finally:
        os.chdir(cwd)


def leave_copies_on_the_broker(platform: Platform, person: Person, signup: dict[str, Any]) -> None:
    """A dead letter of a message about `signup`, and on RabbitMQ a copy waiting in a retry queue."""
    connection, queues = _broker(platform)
    body = _registration_message(person, signup)
    with connection:
        producer = kombu.Producer(connection.default_channel)
        for queue in queues:
            producer.publish(
                body,
                exchange="",
                routing_key=queue,
                headers={ATTEMPT_HEADER: 4, ERROR_HEADER: "OperationalError: the database went away"},
                content_type=envelope.CONTENT_TYPE,
                content_encoding="utf-8",
                delivery_mode=2,
            )


# --- the test ------------------------------------------------------------------------------------------


def register(client: Client, event_id: str, api_key: str, person: Person) -> dict[str, Any]:
    """Registered by the organizer (taken at once, without a link to follow), by email and SMS, with
    reminders: every kind of copy the platform makes."""
    response = client.register(
        event_id,
        headers={"Authorization": f"Bearer {api_key}"},
        display_name=person.display_name,
        email=person.email,
        phone=person.phone,
        channels=["email", "sms"],
        consent={"reminders": True},
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_an_erased_attendee_is_found_nowhere(platform: Platform) -> None:
    client = Client(platform)
    organizer = client.organizer()
    event = client.published_event(organizer["api_key"], title="Anxiety support circle")
    erased, kept = Person("marigold"), Person("juniper")
    signup = register(client, event["id"], organizer["api_key"], erased)
    other = register(client, event["id"], organizer["api_key"], kept)
    for registration in (signup, other):
        wait_for(
            lambda registration=registration: (
                {n["channel"] for n in client.notifications(signup_id=registration["id"]) if n["status"] == "sent"}
                == {"email", "sms"}
            ),
            message="the confirmation's email and SMS to be written",
        )
    leave_copies_on_the_broker(platform, erased, signup)
    leave_copies_on_the_broker(platform, kept, other)

    before = sweep(platform, erased)
    assert {"email", "phone", "display name"} <= set(before), before
    assert any(place.startswith("var/outbox/email/") for place in before["email"]), before
    assert "var/outbox/sms.jsonl" in before["phone"], before

    response = client.call("DELETE", "signup", f"/v1/signups/{signup['id']}?erase=true", signup["manage_token"])
    assert response.status_code == 200, response.text
    assert response.json()["erased"] is True

    # The erasure reaches the other services by a message: wait until it has, then look everywhere.
    try:
        wait_for(lambda: not sweep(platform, erased), 60, 1.0, message="the erasure to reach every copy")
    except TimeoutError:
        assert sweep(platform, erased) == {}
    # The search sees what is there: the attendee who was not erased is still found, dead letter included.
    still = sweep(platform, kept)
    assert {"email", "phone", "display name"} <= set(still), still
    assert any(place.startswith("var/outbox/email/") for place in still["email"]), still
    assert "var/outbox/sms.jsonl" in still["phone"], still
    dead_letters = [place for place in still["email"] if "notifications.dlq" in place]
    assert dead_letters, still

    # The platform is shared: the copies this test left of the attendee it did not erase go too.
    connection, queues = _broker(platform)
    with connection:
        for queue in queues:
            drop_mentioning(connection, queue, [other["id"]])
