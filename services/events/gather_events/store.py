"""The events service's tables: organizer accounts and their members, events, and the accounts' audit log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from gather_events import domain
from gather_shared import audit, ratelimit
from gather_shared.audit import Actor
from gather_shared.columns import EventDescription
from gather_shared.db import TypeMap, utcnow
from gather_shared.vocabulary import LISTED_EVENT_STATUSES, EventStatus, MemberRole, Verification, Visibility


class Base(TypeMap, DeclarativeBase):
    pass


metadata = Base.metadata
#: The rate limits' counters (gather_shared.ratelimit) are kept here, in the service's own database.
rate_limits = ratelimit.counters_table(metadata)


class Organizer(Base):
    """An organizer account. Its own key (`api_key_hash`) is its first owner's; its other members are
    Members, each with a key of their own."""

    __tablename__ = "organizers"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(sa.String(200))
    email: Mapped[str] = mapped_column(sa.String(320))
    api_key_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @classmethod
    def by_key_hash(cls, session: Session, key_hash: str) -> tuple[Organizer, Actor] | None:
        """The account one of whose members' current key hashes to `key_hash`, and that member
        (gather_shared.web.bearer_member)."""
        organizer = session.scalar(sa.select(cls).filter_by(api_key_hash=key_hash))
        if organizer is not None:
            return organizer, first_owner(organizer)
        member = session.scalar(sa.select(Member).filter_by(api_key_hash=key_hash))
        if member is None:
            return None
        return member.organizer, Actor(member.id, member.name, member.role)


def first_owner(organizer: Organizer) -> Actor:
    """The account's first owner, whose key is the organizer's own: a member whose id is the organizer's."""
    return Actor(organizer.id, organizer.name, MemberRole.OWNER)


class Member(Base):
    """A member of an organizer account besides its first owner, with their own key and role
    (vocabulary.MemberRole). Removing a member deletes the row: their key stops working with it."""

    __tablename__ = "members"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    organizer_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("organizers.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[str] = mapped_column(sa.String(20))
    api_key_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    organizer: Mapped[Organizer] = relationship(lazy="selectin")


class AuditEntry(audit.AuditEntryColumns, Base):
    """Who changed which event, member or key of an account, and when (gather_shared.audit)."""


class Event(EventDescription, Base):
    __tablename__ = "events"
    # ix_events_listed_by_kind: the public listing by kind reads its page in index order and stops there,
    # where PostgreSQL used to read and sort every listed event. Partial, on the listed statuses, so that
    # PostgreSQL picks it even before it has statistics on the table (docs/benchmarks.md); a change of
    # LISTED_EVENT_STATUSES needs a migration that rebuilds it.
    __table_args__ = (
        sa.Index("ix_events_listing", "status", "starts_at", "id"),
        sa.Index(
            "ix_events_listed_by_kind",
            "kind",
            "starts_at",
            "id",
            postgresql_where=sa.column("status").in_(LISTED_EVENT_STATUSES),
            sqlite_where=sa.column("status").in_(LISTED_EVENT_STATUSES),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    organizer_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("organizers.id"), index=True)
    series_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    #: A date of a series changed by a PATCH of its own: a change of the whole series leaves it alone.
    edited_alone: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    status: Mapped[str] = mapped_column(sa.String(20), default=EventStatus.DRAFT)
    version: Mapped[int] = mapped_column(default=1)
    # title, summary, …, resources: gather_shared.columns.EventDescription
    #: Whether a public registration waits for its contact to follow a link (vocabulary.Verification).
    verification: Mapped[str] = mapped_column(
        sa.String(20), default=Verification.CONTACT, server_default=Verification.CONTACT.value
    )
    #: Before it, registration is closed (None: open once published).
    registration_opens_at: Mapped[datetime | None]
    #: vocabulary.Visibility: an unlisted event is reachable by its link only, in no listing, calendar or search.
    visibility: Mapped[str] = mapped_column(
        sa.String(20), default=Visibility.LISTED, server_default=Visibility.LISTED.value
    )
    #: The organizer's opt-ins: a daily email of the new registrations and cancellations as counts, and an
    #: alert when the waitlist reaches this many (None: no alert). Sent by the notifications service.
    digest: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    waitlist_alert_at: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Derived from title, summary and tags on every write (see _index), for the listing's q and tag filters.
    search_text: Mapped[str] = mapped_column(sa.Text, default="")
    tag_keys: Mapped[str] = mapped_column(sa.Text, default="|")

    # Loaded with the event: every response and message names the organizer, often after the session ended.
    organizer: Mapped[Organizer] = relationship(lazy="selectin")


@sa.event.listens_for(Event, "before_insert")
@sa.event.listens_for(Event, "before_update")
def _index(_mapper: Any, _connection: Any, event: Event) -> None:
    event.search_text = domain.search_text(event.title, event.summary, event.tags)
    event.tag_keys = domain.tag_keys(event.tags)


# --- queries ----------------------------------------------------------------------------------------


def _contains(column: Any, text: str) -> Any:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(f"%{escaped}%", escape="\\")


def filtered(query: sa.Select, filters: dict[str, Any]) -> sa.Select:
    """Apply the listing filters (`q`, `kind`, `tag`, `format`, `starts_after`, `starts_before`)."""
    for word in (filters.get("q") or "").lower().split():
        query = query.where(_contains(Event.search_text, word))
    if filters.get("kind"):
        query = query.where(Event.kind == filters["kind"])
    if filters.get("format"):
        query = query.where(Event.format == filters["format"])
    if filters.get("tag"):
        query = query.where(_contains(Event.tag_keys, f"|{filters['tag']}|"))
    if filters.get("starts_after"):
        query = query.where(Event.starts_at >= filters["starts_after"])
    if filters.get("starts_before"):
        query = query.where(Event.starts_at < filters["starts_before"])
    return query


def public_events(now: datetime, statuses: tuple[str, ...]) -> sa.Select:
    """Events the public may find in a listing: listed, in `statuses`, and not yet ended."""
    return sa.select(Event).where(
        Event.status.in_(statuses), Event.visibility == Visibility.LISTED, Event.ends_at > now
    )


#: The public listing's rows: what the public view shows of each listed event (schemas.public_item). Plain
#: rows, not Events (whose organizers took a second query); the table's columns, not the ORM's attributes
#: (SQLAlchemy adapts those afresh for every statement). The organizer's name is a subquery, not a join, so
#: that PostgreSQL looks it up for the page's rows only, after any sort. Built once, with the status
#: condition, rather than per request. (Figures: docs/benchmarks.md, "Measurements behind the code".)
_event = Event.__table__.c
_organizer = Organizer.__table__.c
_LISTING = sa.select(
    _event.id,
    _event.title,
    _event.summary,
    _event.description,
    _event.kind,
    _event.tags,
    _event.starts_at,
    _event.ends_at,
    _event.timezone,
    _event.format,
    _event.venue,
    _event.capacity,
    _event.waitlist_enabled,
    _event.language,
    _event.accessibility,
    _event.resources,
    _event.verification,
    _event.registration_opens_at,
    _event.organizer_id,
    sa.select(_organizer.name).where(_organizer.id == _event.organizer_id).scalar_subquery().label("organizer_name"),
    _event.series_id,
    _event.status,
    _event.version,
    _event.created_at,
    _event.updated_at,
).where(_event.status.in_(LISTED_EVENT_STATUSES), _event.visibility == Visibility.LISTED)


def public_listing(now: datetime) -> sa.Select:
    """The rows of `public_events(now, LISTED_EVENT_STATUSES)`, for the public listing."""
    return _LISTING.where(Event.ends_at > now)


#: The order of every list of events: by start, then id (unique, so a keyset page ends in one place).
ORDER = (Event.starts_at, Event.id)
