"""The notifications service's tables: copies of organizers, events and recipients (from messages),
the opt-outs, and the notifications themselves."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from gather_shared import ratelimit
from gather_shared.columns import Contact, EventCopyHead
from gather_shared.db import TypeMap, utcnow
from gather_shared.organizers import MemberKeyCopy, OrganizerCopy
from gather_shared.vocabulary import NotificationStatus


class Base(TypeMap, DeclarativeBase):
    pass


metadata = Base.metadata
#: The rate limits' counters (gather_shared.ratelimit) are kept here, in the service's own database.
rate_limits = ratelimit.counters_table(metadata)


class MemberKey(MemberKeyCopy, Base):
    """The keys of the organizers' other members (gather_shared.organizers)."""


class Organizer(OrganizerCopy, Base):
    """Copied from `organizer.key_issued.v1`: enough to authorise an organizer's members for the notification log."""

    member_keys = MemberKey
    #: The account's address (`organizer.key_issued.v1` `email`): where its digests and waitlist alerts go.
    #: None until a key message that carries it arrives.
    email: Mapped[str | None] = mapped_column(sa.String(320))


class Event(EventCopyHead, Base):
    """The newest snapshot of each event (messages.EventSnapshot), kept whole for the templates."""

    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime] = mapped_column(index=True)
    #: Why it was postponed or cancelled, for the message that says so.
    status_reason: Mapped[str | None] = mapped_column(sa.String(1000))
    snapshot: Mapped[dict[str, Any]]


class Recipient(Contact, Base):
    """How to reach one registration's attendee. On erasure (and after retention) the contact fields are
    emptied and `erased_at` set (privacy.forget); the row stays so that a late message cannot bring the
    contact back."""

    __tablename__ = "recipients"

    signup_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(index=True)
    status: Mapped[str] = mapped_column(sa.String(20))
    # display_name, email, phone, channels, timezone: gather_shared.columns.Contact
    consent_reminders: Mapped[bool]
    #: The version the registration's manage links carry: the sender signs them with it when it sends a
    #: message (gather_shared.tokens). No token and no link is stored here.
    token_version: Mapped[int] = mapped_column(default=1, server_default="1")
    #: Why the event's organizer removed the registration (`signup.removed.v1`), for the message that
    #: tells the attendee; None otherwise. Forgotten with the contact.
    removal_reason: Mapped[str | None] = mapped_column(sa.String(1000))
    #: The place on the waitlist the last registration message gave (None unless waitlisted), for the
    #: waitlist notice.
    waitlist_position: Mapped[int | None]
    #: The time of the newest registration message applied: an older one arriving late changes nothing.
    updated_at: Mapped[datetime]
    erased_at: Mapped[datetime | None]


class EventChange(Base):
    """What an `event.updated.v1` changed ({field: {old, new}}), per event version: the change notice of
    that version says old → new. Nothing about attendees."""

    __tablename__ = "event_changes"

    event_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(primary_key=True)
    changes: Mapped[dict[str, Any]]


class Announcement(Base):
    """A message an event's organizer wrote to its registrants (POST /v1/events/{id}/announcements).
    `number` counts the event's announcements from 1: its notifications carry it (Notification.announcement).
    The organizer's words only: who it went to is in the notifications."""

    __tablename__ = "announcements"
    __table_args__ = (sa.UniqueConstraint("event_id", "number", name="uq_announcements_number"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    event_id: Mapped[uuid.UUID]
    number: Mapped[int]
    organizer_id: Mapped[uuid.UUID]
    subject: Mapped[str] = mapped_column(sa.String(150))
    body: Mapped[str] = mapped_column(sa.String(2000))
    #: The registration statuses it went to: confirmed, waitlisted or both.
    audience: Mapped[list[Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class EventActivity(Base):
    """How many registrations an event gained and lost on one day of its own time zone, counted from the
    registration messages, for the organizer's digest (gather_notifications.digest). Numbers only, never
    who: the row goes once its day is over (into the digest, if the organizer opted in)."""

    __tablename__ = "event_activity"

    event_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    registrations: Mapped[int] = mapped_column(default=0)
    cancellations: Mapped[int] = mapped_column(default=0)


#: One organizer notice per (event, kind, key): the key is the day a digest covers (ISO date), or the
#: waitlist size an alert was set at, so each goes once whatever the redeliveries and sender passes.
UNIQUE_ORGANIZER_NOTICE = ("event_id", "kind", "key")


class Delivery:
    """Where a message stands on its way out, for the sender: the columns a notification and an organizer's
    notice share."""

    status: Mapped[str] = mapped_column(sa.String(20), default=NotificationStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    scheduled_for: Mapped[datetime] = mapped_column(default=utcnow)
    #: While `sending`: when a sender that died mid-delivery loses its claim (see docs/notifications.md).
    locked_until: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(sa.String(1000))


class OrganizerNotice(Delivery, Base):
    """An email to an event's organizer, not to an attendee (kinds organizer_digest and waitlist_alert).
    Not a Notification: those are one per registration (signup_id), and these belong to no registration.
    `figures` holds the counts it says, fixed when it is planned; nothing about any attendee."""

    __tablename__ = "organizer_notices"
    __table_args__ = (
        sa.UniqueConstraint(*UNIQUE_ORGANIZER_NOTICE, name="uq_organizer_notices_once"),
        sa.Index("ix_organizer_notices_due", "status", "scheduled_for"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    event_id: Mapped[uuid.UUID]
    kind: Mapped[str] = mapped_column(sa.String(30))
    key: Mapped[str] = mapped_column(sa.String(20))
    #: {registrations, cancellations, day} for a digest; {waitlisted, threshold} for an alert.
    figures: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class EmailOptOut(Base):
    """Addresses that unsubscribed from non-transactional email, kept only as an HMAC (contact_hash)."""

    __tablename__ = "email_opt_outs"

    address_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SmsOptOut(Base):
    """Numbers that replied STOP (until they reply START), kept only as an HMAC (contact_hash)."""

    __tablename__ = "sms_opt_outs"

    number_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


def contact_hash(secret: str, contact: str) -> str:
    """The key of an opt-out: an HMAC-SHA256 keyed with GATHER_SECRET_KEY, so the list outlives erasure
    without keeping the address. Keyed, because a plain hash of a phone number is undone by trying every
    number (there are only some billions); without the key, a copy of the table reveals nothing."""
    return hmac.new(secret.encode(), contact.strip().lower().encode(), hashlib.sha256).hexdigest()


#: One notification per (registration, kind, event version, channel), whatever the redeliveries;
#: reminders add their offset, since one event version has one reminder per offset; a link asked for
#: again (verify_contact, manage_link) adds the number of the request, since each request is sent; an
#: announcement adds its number, since one event version may have several.
UNIQUE_NOTIFICATION = (
    "signup_id",
    "kind",
    "event_version",
    "channel",
    "reminder_offset",
    "link_request",
    "announcement",
)


class Notification(Delivery, Base):
    __tablename__ = "notifications"
    __table_args__ = (
        sa.UniqueConstraint(*UNIQUE_NOTIFICATION, name="uq_notifications_once"),
        sa.Index("ix_notifications_due", "status", "scheduled_for"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    event_id: Mapped[uuid.UUID] = mapped_column(index=True)
    signup_id: Mapped[uuid.UUID] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(sa.String(30))
    channel: Mapped[str] = mapped_column(sa.String(10))
    event_version: Mapped[int]
    #: Seconds before the start, for reminders; 0 for every other kind.
    reminder_offset: Mapped[int] = mapped_column(default=0)
    #: The number of the link request (signup.*_requested.v1 `link_request`), for verify_contact and
    #: manage_link; 0 for every other kind.
    link_request: Mapped[int] = mapped_column(default=0, server_default="0")
    #: The event's announcement it carries (Announcement.number), for kind announcement; 0 for every other.
    announcement: Mapped[int] = mapped_column(default=0, server_default="0")
    #: The SMS provider's id for the message, to match its delivery receipts.
    provider_id: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: The message that planned it and the HTTP request behind that: the sender's log lines carry both.
    cause_message_id: Mapped[str | None] = mapped_column(sa.String(200))
    correlation_id: Mapped[str | None] = mapped_column(sa.String(100))
