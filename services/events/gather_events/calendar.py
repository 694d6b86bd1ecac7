"""Events as RFC 5545 iCalendar: times in the event's own time zone (with its VTIMEZONE), a stable UID,
SEQUENCE from the event's version and STATUS from its status. Never the online link: calendars are public."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from zoneinfo import ZoneInfo

import icalendar

from gather_events.store import Event
from gather_shared.vocabulary import EventStatus

PRODID = "-//Gather//Community wellbeing events//EN"
UID_DOMAIN = "gather.events"
STATUS = {EventStatus.PUBLISHED: "CONFIRMED", EventStatus.POSTPONED: "TENTATIVE", EventStatus.CANCELLED: "CANCELLED"}


def uid(event: Event) -> str:
    return f"{event.id}@{UID_DOMAIN}"


def vevent(event: Event) -> icalendar.Event:
    zone = ZoneInfo(event.timezone)
    item = icalendar.Event()
    item.add("uid", uid(event))
    item.add("sequence", event.version)  # grows with every change, so calendars replace their copy
    item.add("dtstamp", event.updated_at)
    item.add("created", event.created_at)
    item.add("last-modified", event.updated_at)
    item.add("dtstart", event.starts_at.astimezone(zone))
    item.add("dtend", event.ends_at.astimezone(zone))
    item.add("summary", event.title)
    text = "\n\n".join(part for part in (event.summary, event.description) if part)
    if text:
        item.add("description", text)
    if event.venue:
        item.add(
            "location",
            ", ".join(str(v) for v in (event.venue.get(k) for k in ("name", "address", "city", "postcode")) if v),
        )
    if event.tags:
        item.add("categories", event.tags)
    item.add("status", STATUS[EventStatus(event.status)])
    return item


def ics(events: Iterable[Event]) -> bytes:
    events = list(events)
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", "Gather")
    for event in events:
        cal.add_component(vevent(event))
    if events:
        # Time zone definitions covering just these events: short, and right beyond 2038 (the default end).
        cal.add_missing_timezones(
            first_date=min(e.starts_at for e in events).date() - timedelta(days=1),
            last_date=max(e.ends_at for e in events).date() + timedelta(days=2),
        )
    return cal.to_ical()
