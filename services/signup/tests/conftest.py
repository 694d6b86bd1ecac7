"""Fixtures for the signup service's tests: the app on a fresh database (SQLite and PostgreSQL), and
the messages that give it events and organizers."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from gather_shared import testing, tokens, web
from gather_shared.db import bus_metadata, outbox_table
from gather_shared.service import Runtime
from gather_signup.app import create_app
from gather_signup.handlers import handlers
from gather_signup.store import metadata

ORGANIZER_KEY = "organizer-key-0123456789abcdef"


@pytest.fixture(scope="session")
def service_under_test() -> testing.ServiceUnderTest:
    """For the plugin's `module_app`, `app`, `rt`, `client` and `send`."""
    return testing.ServiceUnderTest(
        "signup", create_app, metadata, {"GATHER_SIGNUP_URL": "https://gather.example/"}, handlers=handlers
    )


@pytest.fixture
def publish(send: Callable[..., Any]) -> Callable[..., dict[str, Any]]:
    """Announce an event (published by default, in a week); returns its snapshot. The default organizer's
    key is ORGANIZER_KEY. A workshop that takes registrations at once (`verification: none`) unless
    overridden: the seat rule is the same in every mode; tests of verification ask for `contact`."""
    send(
        "organizer.key_issued.v1",
        {"organizer_id": uuid.UUID(int=1), "name": "Mind Matters", "api_key_hash": web.hash_secret(ORGANIZER_KEY)},
    )

    def _publish(type_: str = "event.published.v1", **overrides: Any) -> dict[str, Any]:
        snapshot = testing.event_snapshot(**({"kind": "workshop", "verification": "none"} | overrides))
        data = {"event": snapshot} if type_ != "event.updated.v1" else {"event": snapshot, "changes": {}}
        send(type_, data)
        return snapshot

    return _publish


@pytest.fixture
def register(client: FlaskClient) -> Callable[..., Any]:
    """POST a registration; `n` picks a distinct attendee. Returns the response."""

    def _register(event_id: uuid.UUID, n: int = 1, headers: dict[str, str] | None = None, **body: Any) -> Any:
        body = {"display_name": f"Attendee {n}", "email": f"attendee{n}@example.org", "channels": ["email"]} | body
        return client.post(f"/v1/events/{event_id}/signups", json=body, headers=headers or {})

    return _register


@pytest.fixture
def verify_token(rt: Runtime) -> Callable[[str], str]:
    """The token of the newest verify link sent to `contact` (an email or a phone), signed as the
    notifications service signs it when it sends the message: from the message's signup_id."""

    def _token(contact: str) -> str:
        for message in reversed(testing.outbox_messages(rt.engine)):
            data = message["data"]
            if message["type"] == "signup.verification_requested.v1" and contact in (data["email"], data["phone"]):
                return tokens.verify_token(testing.SECRET_KEY, data["signup_id"])
        raise AssertionError(f"no verify link was sent to {contact}")

    return _token


@pytest.fixture
def database_text(rt: Runtime) -> Callable[..., str]:
    """Every value in every table of the service's database, as one string (to search for leftovers)."""

    def _text(outbox: bool = True) -> str:
        tables = [t for t in [*metadata.sorted_tables, *bus_metadata.sorted_tables] if outbox or t is not outbox_table]
        with rt.engine.connect() as conn:
            return "\n".join(repr(tuple(row)) for table in tables for row in conn.execute(sa.select(table)))

    return _text


@pytest.fixture
def organizer_key() -> str:
    """The API key of the organizer of the events `publish` announces."""
    return ORGANIZER_KEY


@pytest.fixture
def new_event() -> Callable[..., dict[str, Any]]:
    """Makes event snapshots (see testing.event_snapshot), for tests that deliver them themselves."""
    return testing.event_snapshot
