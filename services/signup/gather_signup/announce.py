"""What the signup service tells the other services about registrations: every message it emits is
built here, and emitted through the outbox in the transaction of the change it announces."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from gather_shared.bus import emit
from gather_shared.bus.outbox import outbox_row as _outbox_row
from gather_signup.bootstrap import SOURCE
from gather_signup.store import Event, Signup


def registration(signup: Signup, waitlist_position: int | None = None) -> dict[str, Any]:
    """The `Registration` message schema: how to reach the attendee, nothing more. No token and no link:
    the notifications service signs the attendee's links when it sends (gather_shared.tokens), from the
    `signup_id` and the `token_version` here."""
    return {
        "signup_id": signup.id,
        "event_id": signup.event_id,
        "status": signup.status,
        "display_name": signup.display_name,
        "email": signup.email,
        "phone": signup.phone,
        "channels": signup.channels,
        "timezone": signup.timezone,
        "consent_reminders": signup.consent_reminders,
        "waitlist_position": waitlist_position,
        "token_version": signup.token_version,
        "created_at": signup.created_at,
    }


def outbox_row(type_: str, data: dict[str, Any]) -> dict[str, Any]:
    """The outbox row of one of this service's messages, for a statement that writes it itself
    (seats.register_at_once)."""
    return _outbox_row(SOURCE, type_, data)


def registered(session: Session, signup: Signup, waitlist_position: int | None) -> None:
    """`signup.confirmed.v1` or `signup.waitlisted.v1`: a registration arrived (at once, or verified)."""
    _registration_changed(session, f"signup.{signup.status}.v1", signup, waitlist_position)


def promoted(session: Session, signup: Signup) -> None:
    _registration_changed(session, "signup.promoted.v1", signup)


def cancelled(session: Session, signup: Signup) -> None:
    _registration_changed(session, "signup.cancelled.v1", signup)


def removed(session: Session, signup: Signup, reason: str) -> None:
    """`signup.removed.v1`: the event's organizer removed the registration; the attendee is told why."""
    _registration_changed(session, "signup.removed.v1", signup, extra={"reason": reason})


def updated(session: Session, signup: Signup) -> None:
    """`signup.updated.v1`: the attendee changed their name, channels, time zone or reminder consent."""
    _registration_changed(session, "signup.updated.v1", signup)


def verification_requested(session: Session, signup: Signup, expires_at: datetime) -> None:
    """`signup.verification_requested.v1`: send the pending registration's contact a link to verify it,
    followed before `expires_at` or never."""
    data = registration(signup) | {"link_request": signup.link_requests, "expires_at": expires_at}
    emit(session, SOURCE, "signup.verification_requested.v1", data)


def manage_link_requested(session: Session, signup: Signup) -> None:
    """`signup.manage_link_requested.v1`: someone asked for a place with the contact of this active
    registration; its contact gets a fresh link to it (and nobody else learns anything)."""
    data = registration(signup) | {"link_request": signup.link_requests}
    emit(session, SOURCE, "signup.manage_link_requested.v1", data)


def _registration_changed(
    session: Session,
    type_: str,
    signup: Signup,
    waitlist_position: int | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    if signup.erased_at is not None:
        return  # nobody left to tell: the notifications service already forgot them (signup.erased.v1)
    emit(session, SOURCE, type_, registration(signup, waitlist_position) | (extra or {}))


def contact_erased(session: Session, signup: Signup) -> None:
    emit(session, SOURCE, "signup.erased.v1", {"signup_id": signup.id, "event_id": signup.event_id})


def availability_changed(session: Session, event: Event) -> None:
    """`signup.availability_changed.v1`: the locked event's seat counts after a change, numbered by
    `seats_seq` (the newest wins at the attendee pages, which show "3 places left" from it). Call once per
    transaction that changed them, after the last change."""
    event.seats_seq += 1
    emit(
        session,
        SOURCE,
        "signup.availability_changed.v1",
        {
            "event_id": event.id,
            "capacity": event.capacity,
            "confirmed": event.confirmed,
            "waitlisted": event.waitlisted,
            "waitlist_enabled": event.waitlist_enabled,
            "seq": event.seats_seq,
        },
    )
