"""The events service's tables."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from gather_events import domain
from gather_shared.db import UTCDateTime, utcnow


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: sa.JSON, list[Any]: sa.JSON}


metadata = Base.metadata


class Organizer(Base):
    __tablename__ = "organizers"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(sa.String(200))
    email: Mapped[str] = mapped_column(sa.String(320))
    api_key_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (sa.Index("ix_events_listing", "status", "starts_at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    organizer_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("organizers.id"), index=True)
    series_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    status: Mapped[str] = mapped_column(sa.String(20), default=domain.DRAFT)
    version: Mapped[int] = mapped_column(default=1)
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


def public_events(now: datetime, statuses: tuple[str, ...] = domain.LISTED) -> sa.Select:
    """Events the public may see in a listing: in `statuses`, and not yet ended."""
    return sa.select(Event).where(Event.status.in_(statuses), Event.ends_at > now)


def page(session: Any, query: sa.Select, limit: int, cursor: str | None) -> tuple[list[Event], str | None]:
    """One page ordered by start, after `cursor`; the next cursor, or None on the last page."""
    if cursor:
        starts_at, event_id = domain.decode_cursor(cursor)
        query = query.where(sa.or_(Event.starts_at > starts_at,
                                   sa.and_(Event.starts_at == starts_at, Event.id > event_id)))
    rows = list(session.scalars(query.order_by(Event.starts_at, Event.id).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], domain.encode_cursor(last.starts_at, last.id)
