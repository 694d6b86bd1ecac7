"""Columns more than one service stores, declared once and mixed into each service's models (its own
declarative base): an event's public description (the events service owns it; the attendee pages copy it),
the head of every copy of an event, and how to reach a registration's attendee (the signup service owns
it; the notifications service copies it, and erasure empties both: docs/privacy.md). The lengths are the
message schemas' and the HTTP schemas' limits."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column


class EventDescription:
    """What an event says about itself to the public: `class Event(EventDescription, Base)`."""

    title: Mapped[str] = mapped_column(sa.String(200))
    summary: Mapped[str | None] = mapped_column(sa.String(500))
    description: Mapped[str | None] = mapped_column(sa.Text)
    kind: Mapped[str] = mapped_column(sa.String(40))
    tags: Mapped[list[Any]] = mapped_column(default=list)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    timezone: Mapped[str] = mapped_column(sa.String(64))
    format: Mapped[str] = mapped_column(sa.String(20))
    venue: Mapped[dict[str, Any] | None]
    online_url: Mapped[str | None] = mapped_column(sa.String(2000))
    capacity: Mapped[int | None]
    waitlist_enabled: Mapped[bool] = mapped_column(default=True)
    language: Mapped[str | None] = mapped_column(sa.String(35))
    accessibility: Mapped[dict[str, Any] | None]
    resources: Mapped[list[Any]] = mapped_column(default=list)


class EventCopyHead:
    """Which event a service's copy is, whose, and the version and status it copied (gather_shared.copies):
    `class Event(EventCopyHead, Base)`."""

    __tablename__ = "events"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    organizer_id: Mapped[uuid.UUID]
    version: Mapped[int]
    status: Mapped[str] = mapped_column(sa.String(20))


class Contact:
    """How to reach a registration's attendee, and by what name: `class Signup(Contact, Base)`."""

    display_name: Mapped[str | None] = mapped_column(sa.String(60))
    email: Mapped[str | None] = mapped_column(sa.String(320))
    phone: Mapped[str | None] = mapped_column(sa.String(20))
    channels: Mapped[list[Any]]
    timezone: Mapped[str | None] = mapped_column(sa.String(64))

    def forget_contact(self) -> None:
        """What erasure does to every copy of a contact (privacy.erase in signup, privacy.forget in
        notifications): nothing of it is left."""
        self.display_name = self.email = self.phone = self.timezone = None
        self.channels = []
