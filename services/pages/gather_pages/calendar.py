"""Add to calendar: the event as an RFC 5545 file, made from the pages' own copy (the pages never call the
events service). Same UID and SEQUENCE as the events service's `calendar.ics` (UID `{id}@gather.events`,
SEQUENCE the event's version), so a calendar that gets both keeps one entry and takes the newer. Never the
online link: the file is public."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar

from gather_shared.vocabulary import EventStatus

PRODID = "-//Gather//Community wellbeing events//EN"
STATUS = {EventStatus.PUBLISHED: "CONFIRMED", EventStatus.POSTPONED: "TENTATIVE", EventStatus.CANCELLED: "CANCELLED"}


def ics(event: Any) -> bytes:
    """`event`: a row of store.EVENT_WITH_SEATS."""
    zone = ZoneInfo(event.timezone)
    item = icalendar.Event()
    item.add("uid", f"{event.id}@gather.events")
    item.add("sequence", event.version)
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
    item.add("status", STATUS.get(event.status, "CONFIRMED"))
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add_component(item)
    cal.add_missing_timezones(
        first_date=event.starts_at.date() - timedelta(days=1), last_date=event.ends_at.date() + timedelta(days=2)
    )
    return cal.to_ical()
