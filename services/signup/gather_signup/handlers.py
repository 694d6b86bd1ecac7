"""Who reacts to which message in the signup service: the table at the bottom."""

from __future__ import annotations

from functools import partial

from sqlalchemy.orm import Session

from gather_shared import copies, organizers
from gather_shared.bus import Handler, Message
from gather_shared.config import Settings
from gather_shared.db import utcnow
from gather_signup import announce, seats
from gather_signup.store import Event, Organizer

#: What registration needs to know of an event (its `id` is the key).
EVENT_FIELDS = (
    "organizer_id",
    "version",
    "status",
    "title",
    "starts_at",
    "ends_at",
    "capacity",
    "waitlist_enabled",
    "verification",
    "registration_opens_at",
)


def keep_event(session: Session, message: Message) -> None:
    """Every event.* message carries the whole event: keep the newest version we have seen. A new version
    may have more seats (or unlimited ones): the longest-waiting get them in this same transaction
    (seats.py, rule 4), and hear of it by a message."""
    snap = message.data["event"]
    event = seats.lock_event(session, snap["id"])
    if event is not None and event.version >= snap["version"]:
        return  # an older message arriving late changes nothing
    if event is None:
        event = Event(id=snap["id"], arrivals=0, confirmed=0, waitlisted=0)
        session.add(event)
    copies.copy_fields(event, snap, EVENT_FIELDS)
    session.flush()
    seats.promote_waiting(session, event, utcnow())
    announce.availability_changed(session, event)  # the capacity may have changed, or the seats it freed


def handlers(settings: Settings) -> dict[str, Handler]:
    """The table: message type → handler. (`settings`: every service's table takes them; this one needs none.)"""
    return {
        "organizer.key_issued.v1": partial(organizers.keep_key, Organizer),
        "organizer.key_revoked.v1": partial(organizers.revoke_key, Organizer),
        "organizer.member_key_issued.v1": partial(organizers.keep_member_key, Organizer),
        "organizer.member_removed.v1": partial(organizers.remove_member, Organizer),
        "event.published.v1": keep_event,
        "event.updated.v1": keep_event,
        "event.postponed.v1": keep_event,
        "event.cancelled.v1": keep_event,
    }
