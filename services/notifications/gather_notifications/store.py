"""The notifications service's tables: copies of organizers, events and recipients (from messages),
and the notifications themselves."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from gather_shared.db import UTCDateTime, utcnow


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: sa.JSON, list[Any]: sa.JSON}


metadata = Base.metadata


class Organizer(Base):
    __tablename__ = "organizers"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    api_key_hash: Mapped[str] = mapped_column(sa.String(64), index=True)


class Event(Base):
    """The newest snapshot of each event (messages.EventSnapshot), kept whole for the templates."""

    __tablename__ = "events"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    organizer_id: Mapped[uuid.UUID]
    version: Mapped[int]
    status: Mapped[str] = mapped_column(sa.String(20))
    starts_at: Mapped[datetime]
    snapshot: Mapped[dict[str, Any]]


class Recipient(Base):
    """How to reach one registration's attendee; erased on `signup.erased.v1` and after retention."""

    __tablename__ = "recipients"

    signup_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(index=True)
    status: Mapped[str] = mapped_column(sa.String(20))
    display_name: Mapped[str] = mapped_column(sa.String(60))
    email: Mapped[str | None] = mapped_column(sa.String(320))
    phone: Mapped[str | None] = mapped_column(sa.String(20))
    channels: Mapped[list[Any]]
    timezone: Mapped[str | None] = mapped_column(sa.String(64))
    consent_reminders: Mapped[bool]
    manage_url: Mapped[str] = mapped_column(sa.String(500))


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (
        # One notification per (registration, kind, event version, channel), whatever the redeliveries.
        sa.UniqueConstraint("signup_id", "kind", "event_version", "channel"),
        sa.Index("ix_notifications_due", "status", "scheduled_for"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    event_id: Mapped[uuid.UUID] = mapped_column(index=True)
    signup_id: Mapped[uuid.UUID] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(sa.String(30))
    channel: Mapped[str] = mapped_column(sa.String(10))
    event_version: Mapped[int]
    status: Mapped[str] = mapped_column(sa.String(20), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    scheduled_for: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(sa.String(1000))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
