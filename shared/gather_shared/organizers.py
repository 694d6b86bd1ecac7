"""Organizer keys as the signup and notifications services know them: from `organizer.key_issued.v1`,
never by asking the events service (see docs/authorisation.md)."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from gather_shared.bus import Message


class OrganizerCopy:
    """The columns of a service's copy of the organizers, mixed into its declarative base:
    `class Organizer(OrganizerCopy, Base)`. Enough to authorise an organizer (gather_shared.web.bearer_organizer)."""

    __tablename__ = "organizers"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    api_key_hash: Mapped[str] = mapped_column(sa.String(64), index=True)
    #: When the key kept was issued: an older key arriving late must not replace it (keep_key).
    key_issued_at: Mapped[datetime | None]


def keep_key(organizer_model: type[OrganizerCopy], session: Session, message: Message) -> None:
    """Handler for `organizer.key_issued.v1`: keep the hash of the organizer's current API key.

    A rotation revokes the old key, so a late copy of an older key message (say, a relay retry) must not
    bring it back: the key issued last (the message's time) wins. `organizer_model` is the service's
    copy of the organizers."""
    data = message.data
    organizer = session.get(organizer_model, data["organizer_id"], with_for_update=True)
    if organizer is None:
        organizer = organizer_model()
        organizer.id = data["organizer_id"]
        session.add(organizer)
    elif organizer.key_issued_at is not None and organizer.key_issued_at >= message.time:
        return
    organizer.api_key_hash = data["api_key_hash"]
    organizer.key_issued_at = message.time
