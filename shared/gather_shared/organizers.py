"""Organizer keys as the signup and notifications services know them: from `organizer.key_issued.v1`,
never by asking the events service (see docs/authorisation.md)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from gather_shared.broker import Message


def keep_key(organizer_model: Any, session: Session, message: Message) -> None:
    """Handler for `organizer.key_issued.v1`: keep the hash of the organizer's current API key.

    A rotation revokes the old key, so a late copy of an older key message (say, a relay retry) must not
    bring it back: the key issued last (the message's time) wins. `organizer_model` is the service's
    table with `id`, `api_key_hash` and `key_issued_at`."""
    data = message.data
    organizer = session.get(organizer_model, data["organizer_id"], with_for_update=True)
    if organizer is None:
        organizer = organizer_model(id=data["organizer_id"])
        session.add(organizer)
    elif organizer.key_issued_at is not None and organizer.key_issued_at >= message.time:
        return
    organizer.api_key_hash = data["api_key_hash"]
    organizer.key_issued_at = message.time
