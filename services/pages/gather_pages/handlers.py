"""Who reacts to which message in the pages service: the table at the bottom. Both copies keep only the
newest they have seen (an event by its `version`, its seats by their `seq`): messages may arrive late or
twice, and an older one changes nothing."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from gather_pages.store import Event, Seats
from gather_shared import copies
from gather_shared.bus import Handler, Message
from gather_shared.config import Settings
from gather_shared.vocabulary import ACCESSIBILITY_FEATURES, LISTED_EVENT_STATUSES, Visibility


def copy_event(event: Event, snap: dict[str, Any], announced_at: datetime) -> None:
    """Copy what the pages show of the snapshot, and derive what the listing filters on."""
    copies.copy_fields(
        event,
        snap,
        (
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
            "visibility",
        ),
    )
    event.accessibility = snap["accessibility"]
    # Sent once events has them (issue 12): until then, a registration is open at once and verified.
    event.registration_opens_at = snap.get("registration_opens_at")
    event.verification = snap.get("verification")
    event.updated_at = announced_at
    # An unlisted event is in no listing nor search, but its page opens by its link like any other's.
    event.listed = snap["status"] in LISTED_EVENT_STATUSES and snap["visibility"] == Visibility.LISTED
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
    event = copies.to_overwrite(session, Event, snap["id"], snap["version"], id=snap["id"])
    if event is not None:
        copy_event(event, snap, message.time)


def keep_seats(session: Session, message: Message) -> None:
    """The seat counts of an event, as the signup service counted them: keep the newest (highest seq)."""
    data = message.data
    seats = copies.to_overwrite(session, Seats, data["event_id"], data["seq"], "seq", event_id=data["event_id"])
    if seats is not None:
        copies.copy_fields(seats, data, ("capacity", "confirmed", "waitlisted", "waitlist_enabled", "seq"))


def handlers(settings: Settings) -> dict[str, Handler]:
    """The table: message type → handler. (`settings`: the same signature as every service's table.)"""
    return {
        "event.published.v1": keep_event,
        "event.updated.v1": keep_event,
        "event.postponed.v1": keep_event,
        "event.cancelled.v1": keep_event,
        "signup.availability_changed.v1": keep_seats,
    }
