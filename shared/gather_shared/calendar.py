"""Events as RFC 5545 iCalendar, alike from every service that offers one (the events service's calendars,
the attendee pages' "add to calendar"): UID `{id}@gather.events` and SEQUENCE the event's version, so a
calendar that gets the event from both keeps one entry and takes the newer; times in the event's own time
zone, with its VTIMEZONE; STATUS from its status. Never the online link: calendars are public."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import icalendar

from gather_shared.vocabulary import EventStatus

PRODID = "-//Gather//Community wellbeing events//EN"
UID_DOMAIN = "gather.events"
STATUS = {EventStatus.PUBLISHED: "CONFIRMED", EventStatus.POSTPONED: "TENTATIVE", EventStatus.CANCELLED: "CANCELLED"}


class CalendarEvent(Protocol):
    """What a calendar entry is made from: an events service's Event, or a row of another service's copy."""

    id: uuid.UUID
    version: int
    updated_at: datetime
    starts_at: datetime
    ends_at: datetime
    timezone: str
    title: str
    summary: str | None
    description: str | None
    venue: dict[str, Any] | None
    status: str


def vevent(event: CalendarEvent) -> icalendar.Event:
    zone = ZoneInfo(event.timezone)
    item = icalendar.Event()
    item.add("uid", f"{event.id}@{UID_DOMAIN}")
    item.add("sequence", event.version)  # grows with every change, so calendars replace their copy
    item.add("dtstamp", event.updated_at)
    item.add("dtstart", event.starts_at.astimezone(zone))
    item.add("dtend", event.ends_at.astimezone(zone))
    item.add("summary", event.title)
    text = "\n\n".join(part for part in (event.summary, event.description) if part)
    if text:
        item.add("description", text)
    if event.venue:
        parts = (event.venue.get(key) for key in ("name", "address", "city", "postcode"))
        item.add("location", ", ".join(str(part) for part in parts if part))
    item.add("status", STATUS[EventStatus(event.status)])
    return item


def ics(items: Sequence[icalendar.Event], name: str | None = None, method: str | None = None) -> bytes:
    """A calendar of `items` (from `vevent`); `name` is the one a subscribed calendar shows; `method` makes
    it an iTIP message (RFC 5546: REQUEST, CANCEL), as an emailed invitation is."""
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    if method:
        cal.add("method", method)
    cal.add("calscale", "GREGORIAN")
    if name:
        cal.add("x-wr-calname", name)
    if items:
        first_year = min(item.decoded("dtstart") for item in items).year
        last_year = max(item.decoded("dtend") for item in items).year
        zones = {item[name].params.get("TZID") for item in items for name in ("dtstart", "dtend")}
        for zone in sorted(zone for zone in zones if zone):  # UTC times carry no TZID, and need no VTIMEZONE
            cal.add_component(vtimezone(zone, first_year, last_year))
    for item in items:
        cal.add_component(item)
    return cal.to_ical()


@functools.lru_cache(maxsize=4096)
def vtimezone(zone: str, first_year: int, last_year: int) -> icalendar.Timezone:
    """The definition of time zone `zone` over whole years: short, and right beyond 2038 (icalendar's default
    end). Made once per zone and span and kept, as making one is costly (docs/benchmarks.md, "Measurements
    behind the code") and a public calendar of 500 events may name hundreds of zones. (Only read after
    this: to_ical changes nothing, so one is shared by every calendar and thread.)"""
    return icalendar.Timezone.from_tzinfo(
        ZoneInfo(zone), first_date=date(first_year - 1, 12, 31), last_date=date(last_year + 1, 1, 2)
    )
