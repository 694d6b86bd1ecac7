"""Fixtures for the notifications service's tests: a runtime on a fresh database (SQLite and
PostgreSQL), and `World`, which sends it the messages the other services would send."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from gather_notifications import sender
from gather_notifications.app import create_app
from gather_notifications.bootstrap import runtime
from gather_notifications.handlers import handlers
from gather_notifications.store import Notification, metadata
from gather_shared import testing
from gather_shared.service import Runtime
from gather_shared.testing import free_port

#: A fixed "now" for the tests: a Wednesday noon, far from any clock change.
NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
NOTIFICATIONS_URL = "http://notifications.test"
SIGNUP_URL = "http://signup.test"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_rt(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    with testing.module_service(
        request,
        tmp_path_factory,
        "notifications",
        GATHER_NOTIFICATIONS_URL=NOTIFICATIONS_URL,
        GATHER_SIGNUP_URL=SIGNUP_URL,
        GATHER_REMINDER_OFFSETS="24h,1h",
    ):
        runtime_ = runtime()
        yield runtime_
        runtime_.engine.dispose()


@pytest.fixture
def rt(module_rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    """The service's runtime on an empty database (SQLite, then PostgreSQL); `var/` (the email and SMS
    outboxes) is the test's own `tmp_path`."""
    testing.empty_tables(module_rt.engine, metadata)
    monkeypatch.chdir(tmp_path)
    return module_rt


class World:
    """The events and signup services, as far as this service can tell: the messages they send.
    Every message carries the time it happened (`at`), as the real envelopes do."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.handlers = handlers(rt.settings)
        self.organizer_id = uuid.uuid4()
        self.event: dict[str, Any] = {}
        self.now = NOW

    def configure(self, **settings: Any) -> None:
        """Run the sender with these settings changed (e.g. smtp_url, sms_provider)."""
        self.rt = dataclasses.replace(self.rt, settings=dataclasses.replace(self.rt.settings, **settings))

    def send(self, type_: str, data: dict[str, Any], at: datetime = NOW, message_id: str | None = None) -> None:
        """Hand a message to the handlers exactly as the consumer does (validation, inbox, one transaction)."""
        testing.deliver(self.rt.sessions, self.handlers, type_, data, message_id=message_id, time=at)

    def publish(self, at: datetime = NOW, **fields: Any) -> dict[str, Any]:
        starts = fields.pop("starts_at", NOW + timedelta(days=7))
        self.event = {
            "id": uuid.uuid4(),
            "version": 1,
            "status": "published",
            "title": "Peer support circle",
            "summary": "A safe space to talk.",
            "kind": "support_group",
            "tags": [],
            "starts_at": starts,
            "ends_at": starts + timedelta(hours=2),
            "timezone": "Europe/London",
            "format": "in_person",
            "venue": {"name": "Community Hall", "address": "1 High St", "city": "Leeds", "postcode": "LS1 1AA"},
            "online_url": None,
            "capacity": 10,
            "waitlist_enabled": True,
            "language": "en",
            "accessibility": None,
            "resources": [{"title": "Samaritans", "url": "https://samaritans.example/"}],
            "organizer_id": self.organizer_id,
            "organizer_name": "Mind Matters",
            "series_id": None,
        } | fields
        self.send("event.published.v1", {"event": self.event}, at)
        return self.event

    def update(self, at: datetime = NOW, **fields: Any) -> None:
        changes = {name: {"old": str(self.event[name]), "new": str(value)} for name, value in fields.items()}
        self.event = self.event | fields | {"version": self.event["version"] + 1}
        if "starts_at" in fields and "ends_at" not in fields:
            self.event["ends_at"] = fields["starts_at"] + timedelta(hours=2)
        self.send("event.updated.v1", {"event": self.event, "changes": changes}, at)

    def change_status(self, status: str, at: datetime = NOW, reason: str | None = None) -> None:
        self.event = self.event | {"status": status, "version": self.event["version"] + 1}
        self.send(f"event.{status}.v1", {"event": self.event, "reason": reason}, at)

    def register(self, at: datetime = NOW, status: str = "confirmed", **fields: Any) -> dict[str, Any]:
        signup_id = uuid.uuid4()
        registration = {
            "signup_id": signup_id,
            "event_id": self.event["id"],
            "status": status,
            "display_name": "Robin",
            "email": "robin@example.org",
            "phone": None,
            "channels": ["email"],
            "timezone": None,
            "consent_reminders": True,
            "waitlist_position": None,
            "manage_url": f"{SIGNUP_URL}/v1/signups/{signup_id}?token=secret",
            "created_at": at,
        } | fields
        self.send(f"signup.{status}.v1", registration, at)
        return registration

    def registration_changed(self, registration: dict[str, Any], what: str, at: datetime) -> dict[str, Any]:
        """`what`: promoted or cancelled."""
        status = {"promoted": "confirmed", "cancelled": "cancelled"}[what]
        registration = registration | {"status": status}
        self.send(f"signup.{what}.v1", registration, at)
        return registration

    def notifications(self, **where: Any) -> list[Notification]:
        with self.rt.sessions() as session:
            query = (
                sa.select(Notification).filter_by(**where).order_by(Notification.scheduled_for, Notification.channel)
            )
            return list(session.scalars(query))

    @staticmethod
    def kinds(notifications: list[Notification]) -> list[tuple[str, str, str]]:
        return [(n.kind, n.channel, n.status) for n in notifications]

    def run_sender(self, now: datetime) -> None:
        """One pass of the sender at `now`."""
        sender.send_due(self.rt, now, limit=50)


@pytest.fixture
def world(rt: Runtime) -> World:
    return World(rt)


@pytest.fixture
def client(rt: Runtime) -> Iterator[FlaskClient]:
    """The service's web app, on the same database as `rt`."""
    app = create_app()
    yield app.test_client()
    app.extensions["gather_runtime"].engine.dispose()


class Mailbox:
    """An aiosmtpd handler: keeps what it receives, or answers with the next of `replies` instead."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.replies: list[str] = []
        self.logins: list[tuple[str, str]] = []
        #: One entry per SMTP connection that sent a message.
        self.connections: set[int] = set()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        self.connections.add(id(session))
        if self.replies:
            return self.replies.pop(0)
        self.messages.append(BytesParser(policy=policy.default).parsebytes(envelope.content))
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


@pytest.fixture
def mailbox(world: World) -> Iterator[Mailbox]:
    """A real SMTP server on 127.0.0.1, and the world's sender configured to use it."""
    from aiosmtpd.controller import Controller

    handler = Mailbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    world.configure(smtp_url=f"smtp://127.0.0.1:{port}")
    yield handler
    controller.stop()


@pytest.fixture
def mailbox_with_login(world: World) -> Iterator[Mailbox]:
    """A real SMTP server that asks for a login (user `gather`, password `p@ss word`, which the URL must
    percent-encode); `mailbox.logins` records the attempts. The sender is configured to use it."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    handler = Mailbox()

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: LoginPassword) -> AuthResult:
        handler.logins.append((auth_data.login.decode(), auth_data.password.decode()))
        return AuthResult(success=(auth_data.login, auth_data.password) == (b"gather", b"p@ss word"))

    port = free_port()
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, authenticator=authenticator, auth_require_tls=False
    )
    controller.start()
    world.configure(smtp_url=f"smtp://gather:p%40ss%20word@127.0.0.1:{port}")
    yield handler
    controller.stop()
