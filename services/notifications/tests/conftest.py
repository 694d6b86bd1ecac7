"""Fixtures for the notifications service's tests: a runtime on a fresh database (SQLite and
PostgreSQL), and `World`, which sends it the messages the other services would send."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from gather_notifications import sender
from gather_notifications.app import create_app
from gather_notifications.handlers import handlers
from gather_notifications.store import Notification, metadata
from gather_shared import testing
from gather_shared.service import Runtime
from gather_shared.testing import free_port

#: A fixed "now" for the tests: a Wednesday noon, far from any clock change.
NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
NOTIFICATIONS_URL = "http://notifications.test"
SIGNUP_URL = "http://signup.test"
PUBLIC_URL = "http://pages.test"


@pytest.fixture(scope="session")
def service_under_test() -> testing.ServiceUnderTest:
    """For the plugin's `module_app`, `app` and `rt`."""
    settings = {
        "GATHER_NOTIFICATIONS_URL": NOTIFICATIONS_URL,
        "GATHER_SIGNUP_URL": SIGNUP_URL,
        "GATHER_PUBLIC_URL": PUBLIC_URL,
        "GATHER_REMINDER_OFFSETS": "24h,1h",
    }
    return testing.ServiceUnderTest("notifications", create_app, metadata, settings)


@pytest.fixture
def rt(rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    """The plugin's runtime (on an empty database, SQLite then PostgreSQL), with `var/` (the email and SMS
    outboxes) the test's own `tmp_path`."""
    monkeypatch.chdir(tmp_path)
    return rt


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
        self.event = testing.event_snapshot(starts, organizer_id=self.organizer_id, **fields)
        self.send("event.published.v1", {"event": self.event}, at)
        return self.event

    def update(self, at: datetime = NOW, **fields: Any) -> None:
        """Change fields of the event, announced as the events service does: {field: {old, new}}, JSON-ready."""

        def json_ready(value: Any) -> Any:
            return value.isoformat() if isinstance(value, datetime) else value

        changes = {
            name: {"old": json_ready(self.event[name]), "new": json_ready(value)} for name, value in fields.items()
        }
        self.event = self.event | fields | {"version": self.event["version"] + 1}
        if "starts_at" in fields and "ends_at" not in fields:
            self.event["ends_at"] = fields["starts_at"] + timedelta(hours=2)
        self.send("event.updated.v1", {"event": self.event, "changes": changes}, at)

    def change_status(self, status: str, at: datetime = NOW, reason: str | None = None) -> None:
        self.event = self.event | {"status": status, "version": self.event["version"] + 1}
        self.send(f"event.{status}.v1", {"event": self.event, "reason": reason}, at)

    def registration(self, status: str, at: datetime, **fields: Any) -> dict[str, Any]:
        """A new registration of the event, as the signup service's messages carry it."""
        return {
            "signup_id": uuid.uuid4(),
            "event_id": self.event["id"],
            "status": status,
            "display_name": "Robin",
            "email": "robin@example.org",
            "phone": None,
            "channels": ["email"],
            "timezone": None,
            "consent_reminders": True,
            "waitlist_position": None,
            "token_version": 1,
            "created_at": at,
        } | fields

    def register(self, at: datetime = NOW, status: str = "confirmed", **fields: Any) -> dict[str, Any]:
        registration = self.registration(status, at, **fields)
        self.send(f"signup.{status}.v1", registration, at)
        return registration

    def ask_for_a_place(
        self, registration: dict[str, Any], link_request: int = 1, at: datetime = NOW
    ) -> dict[str, Any]:
        """Someone asked for a place with the contact of `registration`: a verify link to it when it is
        pending, else a manage link (signup.*_requested.v1, as the signup service sends them)."""
        pending = registration["status"] == "pending"
        type_ = "signup.verification_requested.v1" if pending else "signup.manage_link_requested.v1"
        expires_at = at + timedelta(minutes=30) if pending else None
        self.send(type_, registration | {"link_request": link_request, "expires_at": expires_at}, at)
        return registration

    def pending(self, at: datetime = NOW, **fields: Any) -> dict[str, Any]:
        """A new registration waiting for its contact's verification, and its verify link requested."""
        return self.ask_for_a_place(self.registration("pending", at, **fields), at=at)

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
def client(app: Flask, rt: Runtime) -> FlaskClient:
    """The service's web app, on the same database as `rt` (and in its working directory)."""
    return app.test_client()


class Mailbox:
    """An aiosmtpd handler: keeps what it receives, or answers with the next of `replies` instead."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.replies: list[str] = []
        self.logins: list[tuple[str, str]] = []
        #: One entry per SMTP connection that sent a message.
        self.connections: set[int] = set()
        #: Called with each message kept, before the server answers: a test acts while a batch is on its way.
        self.on_message: Callable[[EmailMessage], None] | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        self.connections.add(id(session))
        if self.replies:
            return self.replies.pop(0)
        message = BytesParser(policy=policy.default).parsebytes(envelope.content)
        self.messages.append(message)
        if self.on_message is not None:
            self.on_message(message)
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
