"""Organizer keys as the signup and notifications services know them: from `organizer.key_issued.v1` and
`organizer.key_revoked.v1`, never by asking the events service (see docs/authorisation.md)."""

from __future__ import annotations

import secrets
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


def revoked_key_hash() -> str:
    """What an organizer's `api_key_hash` becomes when the admin revokes their keys: no key hashes to it (a
    SHA-256 digest is 64 hex digits, this has a colon), and it is unique, as the events service's column
    wants."""
    return f"revoked:{secrets.token_hex(24)}"


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


def revoke_key(organizer_model: type[OrganizerCopy], session: Session, message: Message) -> None:
    """Handler for `organizer.key_revoked.v1`: the organizer's key stops working here. Ordered like keep_key:
    a late copy of the key issued before the revocation finds a newer time kept, and changes nothing."""
    organizer = session.get(organizer_model, message.data["organizer_id"], with_for_update=True)
    if organizer is None:
        organizer = organizer_model()
        organizer.id = message.data["organizer_id"]
        session.add(organizer)
    elif organizer.key_issued_at is not None and organizer.key_issued_at > message.time:
        return
    organizer.api_key_hash = revoked_key_hash()
    organizer.key_issued_at = message.time
