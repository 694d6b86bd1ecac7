"""The attendee pages' tables: their own copy of the events the public may see (from `event.*` messages)
and of each event's seat counts (from `signup.availability_changed.v1`), and the listing's query.

Two tables for two writers: an event's seats may be announced before the event itself reaches this
service, and each kind of message keeps only its newest (by `version`, by `seq`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from gather_shared.columns import EventDescription
from gather_shared.db import TypeMap
from gather_shared.vocabulary import VENUE_FORMATS, Visibility


class Base(TypeMap, DeclarativeBase):
    pass


metadata = Base.metadata


class Event(EventDescription, Base):
    """An event as the public may see it, copied from the newest `event.*` message. `online_url` is kept
    for the manage page of confirmed attendees only; no public page shows it."""

    __tablename__ = "events"
    # The listing reads its page in the order of one of these and stops there: with `listed` an equality,
    # no database needs to read every listed event and sort them (as `status IN (…)` made SQLite do).
    __table_args__ = (
        sa.Index("ix_events_listing", "status", "starts_at", "id"),
        sa.Index("ix_events_listed", "listed", "starts_at", "id"),
        sa.Index("ix_events_listed_by_kind", "listed", "kind", "starts_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    version: Mapped[int]
    status: Mapped[str] = mapped_column(sa.String(20))
    # title, summary, …, resources: gather_shared.columns.EventDescription
    organizer_name: Mapped[str] = mapped_column(sa.String(200))
    registration_opens_at: Mapped[datetime | None]
    #: vocabulary.Visibility: an unlisted event's page opens by its link, but asks search engines not to
    #: index it
    visibility: Mapped[str] = mapped_column(
        sa.String(20), default=Visibility.LISTED, server_default=Visibility.LISTED.value
    )
    #: "contact" (a link confirms the place) or "none" (confirmed at once); None before events sent it
    verification: Mapped[str | None] = mapped_column(sa.String(20))
    #: When this version was announced (the message's time): the calendar file's DTSTAMP.
    updated_at: Mapped[datetime]
    # Derived on every copy (see copy_event), for the listing's filters:
    #: whether the public may find it in the listing (its status is one of LISTED_EVENT_STATUSES and its
    #: visibility `listed`; an unlisted event's page opens by its link only)
    listed: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    #: lower-cased title, summary, tags, organizer and city, for `q`
    search_text: Mapped[str] = mapped_column(sa.Text)
    #: the venue's city, lower-cased, for "in person near a city"; None online
    city_key: Mapped[str | None] = mapped_column(sa.String(100))
    #: "|captions|step_free|": the accessibility features it has, for the accessibility filters
    access_keys: Mapped[str] = mapped_column(sa.String(200))
    #: the date it starts on, in its own time zone, for the date range
    local_date: Mapped[date]


class Seats(Base):
    """An event's seats as the signup service last announced them."""

    __tablename__ = "seats"

    event_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    capacity: Mapped[int | None]
    confirmed: Mapped[int]
    waitlisted: Mapped[int]
    waitlist_enabled: Mapped[bool]
    seq: Mapped[int]


# --- the listing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Search:
    """The listing's filters, as the search form sends them (already checked: forms.SearchForm)."""

    q: str = ""
    kind: str | None = None
    format: str | None = None
    city: str = ""
    date_from: date | None = None
    date_to: date | None = None
    access: tuple[str, ...] = field(default_factory=tuple)


def _contains(column: Any, text: str) -> Any:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(f"%{escaped}%", escape="\\")


_events = Event.__table__.c
_seats = Seats.__table__.c

#: Events with their seats, as plain rows of the tables' columns (not ORM objects, which cost a good part
#: of a page's time to build): the pages render them as they come. Built once.
_SEATS_COLUMNS = (
    _seats.capacity.label("seats_capacity"),
    _seats.confirmed,
    _seats.waitlisted,
    _seats.waitlist_enabled.label("seats_waitlist_enabled"),
)
_EVENTS_AND_SEATS = Event.__table__.outerjoin(Seats.__table__, _seats.event_id == _events.id)
_WITH_SEATS = sa.select(Event.__table__, *_SEATS_COLUMNS).select_from(_EVENTS_AND_SEATS)
#: The listing's rows: only what a listing shows (decoding the JSON of columns it does not show was most
#: of a page's time).
_LISTING = (
    sa.select(
        *(
            _events[name]
            for name in (
                "id",
                "version",
                "status",
                "title",
                "summary",
                "starts_at",
                "ends_at",
                "timezone",
                "format",
                "venue",
                "capacity",
                "waitlist_enabled",
                "registration_opens_at",
            )
        ),
        *_SEATS_COLUMNS,
    )
    .select_from(_EVENTS_AND_SEATS)
    .where(_events.listed == sa.true())
    .order_by(_events.starts_at, _events.id)
)


#: One event, listed or not (a cancelled event's page says so), with its seats; parameter `event_id`.
EVENT_WITH_SEATS = _WITH_SEATS.where(_events.id == sa.bindparam("event_id"))


def listing(search: Search, now: datetime, offset: int, limit: int) -> sa.Select:
    """Upcoming listed events matching `search`, soonest first: the page `offset`…`offset + limit`."""
    events = _events
    query = _LISTING.where(events.ends_at > now)
    for word in search.q.lower().split():
        query = query.where(_contains(events.search_text, word))
    if search.kind:
        query = query.where(events.kind == search.kind)
    if search.format:
        query = query.where(events.format == search.format)
    if search.city:
        query = query.where(events.city_key == search.city.strip().lower(), events.format.in_(VENUE_FORMATS))
    if search.date_from:
        query = query.where(events.local_date >= search.date_from)
    if search.date_to:
        query = query.where(events.local_date <= search.date_to)
    for feature in search.access:
        query = query.where(_contains(events.access_keys, f"|{feature}|"))
    return query.offset(offset).limit(limit)
