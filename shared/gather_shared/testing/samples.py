"""A valid event two ways: the body an organizer sends the events API, and the snapshot its messages
carry (tests override what matters to them); and contacts no other test uses."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from gather_shared.vocabulary import EventFormat, EventStatus


def event_body(**overrides: Any) -> dict[str, Any]:
    """A valid event, one week from now, in person; override any field."""
    starts = (datetime.now(UTC) + timedelta(days=7)).replace(microsecond=0)
    body = {
        "title": "Peer support circle",
        "summary": "A safe space to talk.",
        "kind": "support_group",
        "tags": ["anxiety", "peer-support"],
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=1, minutes=30)).isoformat(),
        "timezone": "Europe/London",
        "format": EventFormat.IN_PERSON.value,
        "venue": {"name": "Community Hall", "address": "1 High St", "city": "Leeds", "postcode": "LS1 1AA"},
        "capacity": 10,
        "waitlist_enabled": True,
        "language": "en",
    }
    return body | overrides


def event_snapshot(starts_at: datetime | None = None, **overrides: Any) -> dict[str, Any]:
    """An `EventSnapshot` as the events service sends it: published, one week from now (or at
    `starts_at`) for two hours, in person, 10 seats with a waitlist, registration verified by a link to
    the contact; override any field."""
    starts = starts_at or datetime.now(UTC).replace(microsecond=0) + timedelta(days=7)
    return {
        "id": uuid.uuid4(),
        "version": 1,
        "status": EventStatus.PUBLISHED.value,
        "title": "Peer support circle",
        "summary": "A safe space to talk.",
        "kind": "support_group",
        "tags": [],
        "starts_at": starts,
        "ends_at": starts + timedelta(hours=2),
        "timezone": "Europe/London",
        "format": EventFormat.IN_PERSON.value,
        "venue": {"name": "Community Hall", "address": "1 High St", "city": "Leeds", "postcode": "LS1 1AA"},
        "online_url": None,
        "capacity": 10,
        "waitlist_enabled": True,
        "language": "en",
        "accessibility": None,
        "resources": [{"title": "Samaritans", "url": "https://samaritans.example/"}],
        "organizer_id": uuid.UUID(int=1),
        "organizer_name": "Mind Matters",
        "series_id": None,
        "verification": "contact",
        "registration_opens_at": None,
        "visibility": "listed",
    } | overrides


def unique_email(name: str) -> str:
    """An address no other test uses, for a test on the platform it shares with others (the `platform`
    fixture): what it then finds sent to the address is its own."""
    return f"{name}.{secrets.token_hex(4)}@example.org"


def unique_phone() -> str:
    """A UK mobile number no other test uses (as unique_email), one of a million drawn at random."""
    return f"+447400{secrets.randbelow(1_000_000):06d}"  # every one of them valid
