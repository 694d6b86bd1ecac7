"""Who reacts to which message in the pages service: the table at the bottom. Both copies keep only the
newest they have seen (an event by its `version`, its seats by their `seq`): messages may arrive late or
twice, and an older one changes nothing."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from gather_pages.store import Event, Seats
from gather_shared.bus import Handler, Message
from gather_shared.config import Settings
from gather_shared.vocabulary import ACCESSIBILITY_FEATURES, LISTED_EVENT_STATUSES


def copy_event(event: Event, snap: dict[str, Any], announced_at: datetime) -> None:
    """Copy what the pages show of the snapshot, and derive what the listing filters on."""
    for name in (
        "version",
        "status",
        "title",
        "summary",
        "description",
        "kind",
        "tags",
        "starts_at",
        "ends_at",
        "timezone",
        "format",
        "venue",
        "online_url",
        "capacity",
        "waitlist_enabled",
        "language",
        "resources",
        "organizer_name",
    ):
        setattr(event, name, snap[name])
    event.accessibility = snap["accessibility"]
    # Sent once events has them (issue 12): until then, a registration is open at once and verified.
    event.registration_opens_at = snap.get("registration_opens_at")
    event.verification = snap.get("verification")
    event.updated_at = announced_at
    event.listed = snap["status"] in LISTED_EVENT_STATUSES
    venue = snap["venue"] or {}
    city = (venue.get("city") or "").strip().lower()
    event.city_key = city[:100] or None
    access = snap["accessibility"] or {}
    event.access_keys = "|" + "".join(f"{feature}|" for feature in ACCESSIBILITY_FEATURES if access.get(feature))
    words = [snap["title"], snap["summary"], *snap["tags"], snap["organizer_name"], city]
    event.search_text = " ".join(word for word in words if word).lower()
    event.local_date = snap["starts_at"].astimezone(ZoneInfo(snap["timezone"])).date()


def keep_event(session: Session, message: Message) -> None:
    """Every event.* message carries the whole event: keep the newest version seen."""
    snap = message.data["event"]
    event = session.get(Event, snap["id"], with_for_update=True)
    if event is not None and event.version >= snap["version"]:
        return
    if event is None:
        event = Event(id=snap["id"])
        session.add(event)
    copy_event(event, snap, message.time)


def keep_seats(session: Session, message: Message) -> None:
    """The seat counts of an event, as the signup service counted them: keep the newest (highest seq)."""
    data = message.data
    seats = session.get(Seats, data["event_id"], with_for_update=True)
    if seats is not None and seats.seq >= data["seq"]:
        return
    if seats is None:
        seats = Seats(event_id=data["event_id"])
        session.add(seats)
    seats.capacity = data["capacity"]
    seats.confirmed = data["confirmed"]
    seats.waitlisted = data["waitlisted"]
    seats.waitlist_enabled = data["waitlist_enabled"]
    seats.seq = data["seq"]


def handlers(settings: Settings) -> dict[str, Handler]:
    """The table: message type → handler. (`settings`: the same signature as every service's table.)"""
    return {
        "event.published.v1": keep_event,
        "event.updated.v1": keep_event,
        "event.postponed.v1": keep_event,
        "event.cancelled.v1": keep_event,
        "signup.availability_changed.v1": keep_seats,
    }
