"""The operator's toolkit (`python -m gather_shared admin`, gather_shared.admin) against a real broker and
real databases: the embedded transport with SQLite, and RabbitMQ (a fresh vhost) with PostgreSQL.

Every listing is read as an attacker would read an operator's terminal log: for a name, an email address,
a phone number or an organizer's words about someone."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import kombu
import pytest
import sqlalchemy as sa
from kombu.transport import filesystem
from prometheus_client import REGISTRY
from sqlalchemy.orm import Session

from gather_shared import admin, envelope, messages
from gather_shared.bus import Consumer, Message, connect, emit, topology
from gather_shared.bus.consumer import ERROR_HEADER
from gather_shared.bus.deadletters import _dead_letter, peek, redact_error
from gather_shared.db import bus_metadata, make_engine, migrate, outbox_table, session_factory
from gather_shared.testing import SECRET_KEY, fresh_vhost, wait_for

QUEUE = topology.CONSUMERS["notifications"]
NAME, EMAIL, PHONE, REASON = "Robin Quinn", "robin.quinn@example.org", "+447700900123", "asked to leave by Dr Avery"
#: What must never be printed, in any form the listings could show it.
SECRETS = ("Robin", "Quinn", "robin.quinn", "example.org", "7700900123", "Avery", "asked to leave")


def removal() -> dict:
    """signup.removed.v1: a registration, with its contact details and the organizer's reason."""
    return {
        "signup_id": uuid.uuid4(),
        "event_id": uuid.uuid4(),
        "status": "cancelled",
        "display_name": NAME,
        "email": EMAIL,
        "phone": PHONE,
        "channels": ["email", "sms"],
        "created_at": datetime.now(UTC),
        "reason": REASON,
    }


def removal_body() -> str:
    return json.dumps(
        envelope.build("signup.removed.v1", "/gather/signup", messages.dump("signup.removed.v1", removal()), None)
    )


def assert_private(output: str) -> None:
    for secret in SECRETS:
        assert secret.lower() not in output.lower()


@dataclass
class Bus:
    broker_url: str

    def publish(self, body: str, routing_key: str, exchange: str = topology.EXCHANGE) -> None:
        with connect(self.broker_url) as conn:
            topology.declare_topology(conn, QUEUE)
            kombu.Producer(conn.default_channel).publish(
                body, exchange=exchange, routing_key=routing_key, content_type=envelope.CONTENT_TYPE
            )


@pytest.fixture(scope="module")
def module_amqp_url(amqp_url: str) -> Iterator[str]:
    """One fresh vhost for the module (rabbitmqctl is slow on a loaded machine); `bus` empties its queues."""
    with fresh_vhost(amqp_url) as url:
        yield url


@pytest.fixture(params=["embedded", "real"])
def bus(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Bus:
    """An empty broker, named by GATHER_BROKER_URL as the services read it."""
    monkeypatch.chdir(tmp_path)  # the embedded transport keeps its files under ./var/broker
    if request.param == "embedded":
        filesystem.Transport.global_state.clear()  # kombu remembers bindings per process
        broker_url = "filesystem://"
    else:
        broker_url = request.getfixturevalue("module_amqp_url")
        with connect(broker_url) as conn:
            for name in (QUEUE.name, QUEUE.dlq):
                conn.default_channel.queue_purge(name)
    monkeypatch.setenv("GATHER_BROKER_URL", broker_url)
    return Bus(broker_url)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """The command's exit status and everything it printed (both streams)."""
    status = admin.main(list(argv))
    out, err = capsys.readouterr()
    return status, out + err


def duplicates() -> float:
    return (
        REGISTRY.get_sample_value("gather_messages_total", {"type": "signup.removed.v1", "outcome": "duplicate"}) or 0
    )


def test_a_dead_letter_is_listed_without_whom_it_names_then_replayed_after_the_fix_and_handled_once(
    bus: Bus, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    handled: list[str] = []
    fixed = threading.Event()

    def tell_the_attendee(session: Session, message: Message) -> None:
        if not fixed.is_set():  # the bug: its error quotes the contact, as careless errors do
            raise ValueError(
                f"cannot reach {message.data['display_name']!r} at {message.data['email']} / {message.data['phone']}"
            )
        handled.append(message.id)

    engine = make_engine(f"sqlite:///{tmp_path}/notifications.db")  # the consumer's inbox
    bus_metadata.create_all(engine)
    consumer = Consumer(
        bus.broker_url, QUEUE, session_factory(engine), {"signup.removed.v1": tell_the_attendee}, retry_delays=()
    )
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    try:
        body = removal_body()
        message_id = json.loads(body)["id"]
        bus.publish(body, "signup.removed.v1")
        wait_for(lambda: peek(bus.broker_url, QUEUE.dlq), message="the dead letter")

        status, listing = run(capsys, "dead-letters", "list")
        assert status == 0
        assert f"{message_id}  signup.removed.v1  from /gather/signup" in listing
        assert "attempts 1" in listing and "error: ValueError: cannot reach" in listing
        status, shown = run(capsys, "dead-letters", "show", message_id, "--service", "notifications")
        assert status == 0
        for field in ("display_name", "email", "phone", "reason", "signup_id"):
            assert f'"{field}"' in shown
        assert_private(listing + shown)
        # Looking changed nothing: it is still there, once.
        assert [letter.key for letter in peek(bus.broker_url, QUEUE.dlq)] == [message_id]

        fixed.set()
        status, output = run(capsys, "dead-letters", "replay", message_id)
        assert status == 0 and "1 dead letter replayed" in output
        wait_for(lambda: handled == [message_id], message="the replayed message to be handled")
        assert peek(bus.broker_url, QUEUE.dlq) == []

        # A copy of a message already handled, replayed again, changes nothing: the inbox knows it.
        before = duplicates()
        bus.publish(body, QUEUE.dlq, exchange="")
        assert run(capsys, "dead-letters", "replay", "--all", "--service", "notifications")[0] == 0
        wait_for(lambda: duplicates() > before, message="the copy to be recognised")
        assert handled == [message_id]
    finally:
        consumer.should_stop = True
        thread.join(timeout=10)
        engine.dispose()


def test_purge_asks_for_yes_then_empties_the_dead_letter_queue(bus: Bus, capsys: pytest.CaptureFixture[str]) -> None:
    # What a dead-letter queue also holds: a forgery and garbage, each naming someone in its own way.
    forged = {"id": EMAIL, "source": NAME, "type": PHONE, "time": "now", "data": {EMAIL: REASON, "reason": REASON}}
    bus.publish(json.dumps(forged), QUEUE.dlq, exchange="")
    bus.publish(f"not JSON, from {NAME} <{EMAIL}>", QUEUE.dlq, exchange="")
    bus.publish(removal_body(), QUEUE.dlq, exchange="")

    status, listing = run(capsys, "dead-letters", "list", "--service", "notifications")
    assert status == 0 and "3 dead letters" in listing
    status, shown = run(capsys, "dead-letters", "show", peek(bus.broker_url, QUEUE.dlq)[0].key)
    assert status == 0 and '"reason"' in shown
    assert_private(listing + shown)

    status, output = run(capsys, "dead-letters", "purge", "--all")
    assert status == 2 and "would delete 3 dead letters; nothing deleted" in output
    assert len(peek(bus.broker_url, QUEUE.dlq)) == 3

    one = peek(bus.broker_url, QUEUE.dlq)[1].key
    assert run(capsys, "dead-letters", "purge", one, "--yes")[0] == 0
    assert one not in [letter.key for letter in peek(bus.broker_url, QUEUE.dlq)]
    status, output = run(capsys, "dead-letters", "purge", "--all", "--yes")
    assert status == 0 and "2 dead letters deleted" in output
    assert peek(bus.broker_url, QUEUE.dlq) == []
    assert run(capsys, "dead-letters", "purge", one, "--yes")[0] == 1  # not there (any more): said so


def test_stuck_outbox_rows_are_listed_without_their_body(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GATHER_DATABASE_URL", database_url)  # every service on this one: the test names one
    engine = make_engine(database_url)
    bus_metadata.create_all(engine)
    with session_factory(engine).begin() as session:
        stuck = emit(session, "/gather/signup", "signup.removed.v1", removal())
        fresh = emit(session, "/gather/signup", "signup.removed.v1", removal())
        session.execute(
            outbox_table.update()
            .where(outbox_table.c.message_id == stuck)
            .values(created_at=datetime.now(UTC) - timedelta(minutes=10), attempts=3)
        )

    status, output = run(capsys, "outbox", "--service", "signup", "--older-than", "60")
    assert status == 0
    assert "signup: 1 message waiting longer than 60 s" in output
    assert stuck in output and "signup.removed.v1" in output and "attempts 3" in output
    assert fresh not in output
    assert_private(output)
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_per_service(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """GATHER_DATABASE_URL with `{service}`: an empty database for each service."""
    if request.param == "sqlite":
        template = f"sqlite:///{tmp_path}/{{service}}.db"
        monkeypatch.setenv("GATHER_DATABASE_URL", template)
        yield template
        return
    server = sa.engine.make_url(request.getfixturevalue("pg_server_url"))
    prefix = f"gather_test_{uuid.uuid4().hex[:8]}"
    names = [f"{prefix}_{service}" for service in admin.SERVICES]
    root = sa.create_engine(server.set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with root.connect() as conn:
        for name in names:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    monkeypatch.setenv("GATHER_SECRET_KEY", SECRET_KEY)  # a migration of notifications reads the settings
    template = (
        server.set(database=f"{prefix}_SERVICE").render_as_string(hide_password=False).replace("SERVICE", "{service}")
    )
    monkeypatch.setenv("GATHER_DATABASE_URL", template)
    try:
        yield template
    finally:
        with root.connect() as conn:
            for name in names:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        root.dispose()


def test_migrations_show_each_database_at_its_head(
    database_per_service: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from alembic.script import ScriptDirectory

    from gather_shared.db import alembic_config

    locations = {service: admin.migrations_of(service) or "" for service in admin.SERVICES}
    heads = {s: ScriptDirectory.from_config(alembic_config(loc)).get_current_head() for s, loc in locations.items()}
    for service in ("events", "signup", "notifications"):
        engine = make_engine(database_per_service.replace("{service}", service))
        migrate(engine, locations[service])
        engine.dispose()
    engine = make_engine(database_per_service.replace("{service}", "pages"))
    engine.connect().close()  # the pages database exists, empty: its service never started
    engine.dispose()

    status, output = run(capsys, "migrations")
    assert status == 1  # pages is not migrated
    for service in ("events", "signup", "notifications"):
        assert f"{service:<14} {heads[service]} (head)" in output
    assert f"pages          not migrated; head is {heads['pages']}: run `python -m gather_pages migrate`" in output

    engine = make_engine(database_per_service.replace("{service}", "pages"))
    migrate(engine, locations["pages"])
    engine.dispose()
    status, output = run(capsys, "migrations")
    assert status == 0
    assert [line.split()[1:] for line in output.splitlines()] == [[heads[s], "(head)"] for s in admin.SERVICES]


def test_the_toolkit_runs_as_a_module_and_explains_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gather_shared", "admin", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    for command in ("dead-letters", "outbox", "resend", "migrations"):
        assert command in done.stdout
    with pytest.raises(SystemExit) as wrong:
        admin.main(["nonsense"])
    assert wrong.value.code == 2
    # Run where there is no embedded broker, it says so, rather than create an empty one and list nothing.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GATHER_BROKER_URL", raising=False)
    status, output = run(capsys, "dead-letters", "list")
    assert status == 1 and "no embedded broker here" in output
    assert not (tmp_path / "var" / "broker").exists()


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        (  # a handler's database error, as SQLAlchemy words it (its parameters are hidden by make_engine)
            'IntegrityError: (psycopg.errors.UniqueViolation) duplicate key value violates unique constraint "uq_x"\n'
            "DETAIL:  Key (email)=(robin.quinn@example.org) already exists.",
            'IntegrityError: (psycopg.errors.UniqueViolation) duplicate key value violates unique constraint "…"\n'
            "DETAIL:  Key (email)=(…) already exists.",
        ),
        (  # ids and times stay: they are what the operator looks things up by
            "ValueError: no event 4ff4ef2b-5f1a-4cd7-bb39-5c1c90f7dc5a at 2026-11-29T11:45:53+00:00 for +44 7700 900",
            "ValueError: no event 4ff4ef2b-5f1a-4cd7-bb39-5c1c90f7dc5a at 2026-11-29T11:45:53+00:00 for …",
        ),
        (  # an invalid message's validation errors, whose field names a forger chose
            json.dumps({"data": {"robin.quinn@example.org": ["Unknown field."], "email": ["Not a valid email."]}}),
            json.dumps({"data": {"…": ["Unknown field."], "email": ["Not a valid email."]}}, ensure_ascii=False),
        ),
    ],
)
def test_an_error_keeps_what_explains_it_and_loses_what_names_someone(error: str, shown: str) -> None:
    assert redact_error(error) == shown


def test_a_forged_dead_letter_shows_none_of_what_its_forger_wrote() -> None:
    """Whoever can publish to the broker chooses a letter's keys, numbers, headers and death reason: none of
    them is printed, only what Gather's own schemas and RabbitMQ's own words allow."""
    body = {
        "type": "signup.confirmed.v1",
        "data": {"Robin_Quinn_robin_example_org": True, "ph": [447700, 900123], "email": "robin@example.org"},
    }
    headers = {"x-death": [{"reason": "Robin Quinn"}], "Robin-Quinn": 1}
    letter = _dead_letter("gather.notifications.dlq", json.dumps(body), headers)

    shown = repr((letter.type, letter.error, letter.data, letter.header_names))
    for secret in ("Robin", "Quinn", "robin", "447700", "900123"):
        assert secret not in shown
    assert letter.type == "signup.confirmed.v1" and "email" in letter.data and "x-death" in letter.header_names


def test_a_dead_letter_nested_deeper_than_json_recurses_is_listed_like_any_other() -> None:
    """The consumer dead-letters such a body as not JSON; the toolkit still lists it (and so can purge it and
    every letter after it), with nothing of it shown."""
    nested = "[" * 200_000
    letter = _dead_letter("gather.notifications.dlq", nested, {ERROR_HEADER: nested[:1000]})
    assert letter.key.startswith("body-") and letter.type is None and letter.data is None
    assert redact_error(nested) == nested  # brackets only: nothing to hide, and no crash either
