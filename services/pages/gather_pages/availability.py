"""What the pages say about an event's places: how many are left, whether the waiting list is open, and
whether registration is open at all. The counts are the signup service's (its last
`signup.availability_changed.v1`); it alone decides at registration, so a page a moment behind can only
be told "the event is full" by the form's answer, never overbook."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from gather_shared.vocabulary import EventStatus


class Closed(StrEnum):
    """Why registration is closed (the pages say it in words): the event's status, or its time."""

    CANCELLED = EventStatus.CANCELLED.value
    POSTPONED = EventStatus.POSTPONED.value
    STARTED = "started"
    NOT_YET_OPEN = "not_yet_open"


@dataclass(frozen=True)
class Places:
    remaining: int | None  # places nobody holds; None: no limit
    waitlist_open: bool  # full, but a registration now joins the waiting list
    closed: Closed | None  # None: registration is open

    @property
    def full(self) -> bool:
        return self.remaining == 0

    @property
    def accepting(self) -> bool:
        """Whether the registration form is worth showing."""
        return self.closed is None and (not self.full or self.waitlist_open)


def places(event: Any, now: datetime) -> Places:
    """`event`: a row of store.EVENT_WITH_SEATS / store.listing (the event's columns and its seats')."""
    capacity, waitlist_enabled = event.capacity, event.waitlist_enabled
    if event.confirmed is not None:
        # The signup service has counted (the outer join found its seats): its capacity is the one its
        # counts were made against.
        capacity, waitlist_enabled = event.seats_capacity, event.seats_waitlist_enabled
    confirmed = event.confirmed or 0
    remaining = None if capacity is None else max(0, capacity - confirmed)
    return Places(
        remaining=remaining,
        waitlist_open=remaining == 0 and waitlist_enabled,
        closed=closed_because(event, now),
    )


def closed_because(event: Any, now: datetime) -> Closed | None:
    if event.status == EventStatus.CANCELLED:
        return Closed.CANCELLED
    if event.status == EventStatus.POSTPONED:
        return Closed.POSTPONED
    if now >= event.starts_at:
        return Closed.STARTED
    if event.registration_opens_at is not None and now < event.registration_opens_at:
        return Closed.NOT_YET_OPEN
    return None
