"""What the signup service tells the other services about registrations: every message it emits is
built here, and emitted through the outbox in the transaction of the change it announces."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from gather_shared.bus import emit
from gather_signup.bootstrap import SOURCE
from gather_signup.store import Event, Signup


def manage_url(signup_url: str, signup: Signup, token: str | None = None) -> str:
    """The link an attendee follows to see or cancel their registration, under the service's public URL
    (`GATHER_SIGNUP_URL`, Settings.signup_url).

    The token travels in the URL's fragment (`#token=…`), which browsers never send to a server: it stays
    out of access logs, proxies and Referer headers. The page served at that URL reads it and calls the
    API with it as the bearer token (see api.manage_page). Only the first message of a registration can
    carry the token, because the service keeps nothing but its hash; later messages carry the bare URL."""
    url = f"{signup_url}/v1/signups/{signup.id}"
    return f"{url}#token={token}" if token else url


def registration(
    signup_url: str, signup: Signup, waitlist_position: int | None, token: str | None = None
) -> dict[str, Any]:
    """The `Registration` message schema: how to reach the attendee, nothing more."""
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
        "manage_url": manage_url(signup_url, signup, token),
        "created_at": signup.created_at,
    }


def registered(session: Session, signup_url: str, signup: Signup, waitlist_position: int | None, token: str) -> None:
    """`signup.confirmed.v1` or `signup.waitlisted.v1` for a new registration: the one message whose link
    carries the manage token."""
    _registration_changed(session, f"signup.{signup.status}.v1", signup_url, signup, waitlist_position, token)


def promoted(session: Session, signup_url: str, signup: Signup) -> None:
    _registration_changed(session, "signup.promoted.v1", signup_url, signup)


def cancelled(session: Session, signup_url: str, signup: Signup) -> None:
    _registration_changed(session, "signup.cancelled.v1", signup_url, signup)


def updated(session: Session, signup_url: str, signup: Signup) -> None:
    """`signup.updated.v1`: the attendee changed their name, channels, time zone or reminder consent."""
    _registration_changed(session, "signup.updated.v1", signup_url, signup)


def _registration_changed(
    session: Session,
    type_: str,
    signup_url: str,
    signup: Signup,
    waitlist_position: int | None = None,
    token: str | None = None,
) -> None:
    if signup.erased_at is not None:
        return  # nobody left to tell: the notifications service already forgot them (signup.erased.v1)
    emit(session, SOURCE, type_, registration(signup_url, signup, waitlist_position, token))


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
