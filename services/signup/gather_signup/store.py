"""The signup service's tables: its copy of organizers and events (from messages), and registrations."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from gather_shared.db import UTCDateTime, utcnow


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, list[Any]: sa.JSON}


metadata = Base.metadata


class Organizer(Base):
    """Copied from `organizer.key_issued.v1`: enough to authorise an organizer for the attendee list."""

    __tablename__ = "organizers"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    api_key_hash: Mapped[str] = mapped_column(sa.String(64), index=True)


class Event(Base):
    """Copied from `event.*` messages: what registration needs to know about an event."""

    __tablename__ = "events"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    organizer_id: Mapped[uuid.UUID]
    version: Mapped[int]
    status: Mapped[str] = mapped_column(sa.String(20))
    title: Mapped[str] = mapped_column(sa.String(200))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    capacity: Mapped[int | None]
    waitlist_enabled: Mapped[bool]


class Signup(Base):
    __tablename__ = "signups"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    event_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("events.id"), index=True)
    status: Mapped[str] = mapped_column(sa.String(20))
    display_name: Mapped[str] = mapped_column(sa.String(60))
    email: Mapped[str | None] = mapped_column(sa.String(320))
    phone: Mapped[str | None] = mapped_column(sa.String(20))
    channels: Mapped[list[Any]]
    timezone: Mapped[str | None] = mapped_column(sa.String(64))
    consent_reminders: Mapped[bool] = mapped_column(default=False)
    manage_token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
