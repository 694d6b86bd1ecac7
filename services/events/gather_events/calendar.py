"""The events service's calendars (RFC 5545): a shared entry per event (gather_shared.calendar, alike in the
attendee pages), plus what only the organizer's own service knows: when it was created, its tags."""

from __future__ import annotations

from collections.abc import Iterable

import icalendar

from gather_events.store import Event
from gather_shared import calendar


def vevent(event: Event) -> icalendar.Event:
    item = calendar.vevent(event)
    item.add("created", event.created_at)
    item.add("last-modified", event.updated_at)
    if event.tags:
        item.add("categories", event.tags)
    return item


def ics(events: Iterable[Event]) -> bytes:
    return calendar.ics([vevent(event) for event in events], name="Gather")
