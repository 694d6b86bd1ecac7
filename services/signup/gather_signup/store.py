"""The signup service's tables: its copy of organizers and events (from messages), registrations, and
the Idempotency-Key records of registration requests."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from gather_shared import audit, ratelimit
from gather_shared.columns import Contact, EventCopyHead
from gather_shared.db import TypeMap, utcnow
from gather_shared.organizers import MemberKeyCopy, OrganizerCopy
from gather_shared.vocabulary import ACTIVE_REGISTRATION_STATUSES, RegistrationStatus, Verification


class Base(TypeMap, DeclarativeBase):
    pass


metadata = Base.metadata
#: The rate limits' counters (gather_shared.ratelimit) are kept here, in the service's own database.
rate_limits = ratelimit.counters_table(metadata)


class AuditEntry(audit.AuditEntryColumns, Base):
    """Who exported which event's attendee list, or removed which registration, and when (gather_shared.audit)."""


class MemberKey(MemberKeyCopy, Base):
    """The keys of the organizers' other members (gather_shared.organizers)."""


class Organizer(OrganizerCopy, Base):
    """Copied from `organizer.key_issued.v1`: enough to authorise an organizer's members for the attendee list."""

    member_keys = MemberKey


class Event(EventCopyHead, Base):
    """Copied from `event.*` messages: what registration needs to know about an event."""

    title: Mapped[str] = mapped_column(sa.String(200))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    capacity: Mapped[int | None]
    waitlist_enabled: Mapped[bool]
    #: Whether a public registration waits for its contact to follow a link (vocabulary.Verification).
    verification: Mapped[str] = mapped_column(
        sa.String(20), default=Verification.CONTACT, server_default=Verification.CONTACT.value
    )
    #: Before it, registration is closed (None: open once published).
    registration_opens_at: Mapped[datetime | None]
    #: How many registrations the event has received; numbers each in arrival order (see seats.py).
    arrivals: Mapped[int] = mapped_column(default=0)
    #: How many of its registrations are confirmed, and how many waitlisted: kept by seats.py in the
    #: transaction that changes them, so that registering reads two numbers instead of counting rows.
    confirmed: Mapped[int] = mapped_column(default=0, server_default="0")
    waitlisted: Mapped[int] = mapped_column(default=0, server_default="0")
    #: How many times the counts above were announced (`signup.availability_changed.v1`): the message's
    #: `seq`, so that the attendee pages keep the newest counts whatever order the messages arrive in.
    seats_seq: Mapped[int] = mapped_column(default=0, server_default="0")
    #: When the retention job removed its attendees' contact details.
    anonymised_at: Mapped[datetime | None]


class Signup(Contact, Base):
    __tablename__ = "signups"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    event_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("events.id"), index=True)
    #: 1, 2, 3… per event in the order registrations arrived (were confirmed or waitlisted): the
    #: waitlist's order. None while pending: a registration arrives when its contact is verified.
    arrival: Mapped[int | None]
    status: Mapped[str] = mapped_column(sa.String(20))
    # display_name, email, phone, channels, timezone: gather_shared.columns.Contact
    consent_reminders: Mapped[bool] = mapped_column(default=False)
    #: The version a manage token must carry (gather_shared.tokens): erasure bumps it, so that every link
    #: sent before stops working. No token is stored: they are signed.
    token_version: Mapped[int] = mapped_column(default=1, server_default="1")
    #: How many links were requested for this registration (verify links while pending, manage links
    #: after), and when the newest was: a pending registration lapses GATHER_VERIFY_MINUTES after it.
    link_requests: Mapped[int] = mapped_column(default=0, server_default="0")
    link_requested_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: When the contact details were removed (erasure on request, or the retention job).
    erased_at: Mapped[datetime | None]

    __table_args__ = (
        sa.UniqueConstraint("event_id", "arrival"),
        sa.Index("ix_signups_lapsing", "status", "link_requested_at"),
    )


#: The registrations that hold their contact: one per email (compared case-insensitively) and per phone
#: on an event, enforced by the database too. Partial indexes: a cancelled or lapsed registration does not
#: block registering again, and erased contacts (NULL) never collide.
CONTACT_HOLDING_STATUSES = (RegistrationStatus.PENDING, *ACTIVE_REGISTRATION_STATUSES)
_active = Signup.status.in_(CONTACT_HOLDING_STATUSES)
sa.Index(
    "uq_signups_event_email",
    Signup.event_id,
    sa.func.lower(Signup.email),
    unique=True,
    sqlite_where=_active,
    postgresql_where=_active,
)
sa.Index(
    "uq_signups_event_phone", Signup.event_id, Signup.phone, unique=True, sqlite_where=_active, postgresql_where=_active
)


class IdempotencyRecord(Base):
    """The first answer to a registration sent with an `Idempotency-Key`, replayed for 24 hours.

    Stored without secrets: the key only hashed, and the answer without its manage token (signed again
    for the replay, see idempotency.py)."""

    __tablename__ = "idempotency_records"

    key_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    request_hash: Mapped[str] = mapped_column(sa.String(64))
    signup_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("signups.id"), index=True)
    #: The first answer's body, without its manage token.
    response: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
