"""The one rule that must never break: confirmed registrations never exceed an event's capacity.

How it holds, whatever the concurrency:
- Every decision about seats (register, cancel, capacity change) first locks the event's row in this
  service's copy of events (`SELECT … FOR UPDATE` on PostgreSQL). Decisions for one event therefore run
  one after another; decisions for different events never wait for each other.
- On SQLite every transaction begins with `BEGIN IMMEDIATE` (gather_shared.db), which takes the
  database's write lock: the same serialisation, coarser.
- Only after taking the lock do we count confirmed seats, so the count cannot go stale before the
  insert commits. The lock is released by that commit.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gather_signup.store import Event, Signup


def lock_event(session: Session, event_id: uuid.UUID) -> Event | None:
    return session.get(Event, event_id, with_for_update=True, populate_existing=True)


def confirmed_count(session: Session, event_id: uuid.UUID) -> int:
    return session.scalar(
        sa.select(sa.func.count()).where(Signup.event_id == event_id, Signup.status == "confirmed")
    ) or 0


def has_free_seat(session: Session, event: Event) -> bool:
    """Call only with the event locked (lock_event)."""
    return event.capacity is None or confirmed_count(session, event.id) < event.capacity
