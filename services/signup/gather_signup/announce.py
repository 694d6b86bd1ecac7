"""What the signup service tells the other services about registrations: every message it emits is
built here, and emitted through the outbox in the transaction of the change it announces."""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy.orm import Session

from gather_shared.config import Settings
from gather_shared.outbox import emit
from gather_signup.bootstrap import SERVICE, SOURCE
from gather_signup.store import Signup


@functools.cache
def _signup_url() -> str:
    # Read once per process: the environment does not change, and this runs under the event's lock.
    return Settings.from_env(SERVICE).signup_url


def manage_url(signup: Signup, token: str | None = None) -> str:
    """The link an attendee follows to see or cancel their registration.

    The token travels in the URL's fragment (`#token=…`), which browsers never send to a server: it stays
    out of access logs, proxies and Referer headers. The page served at that URL reads it and calls the
    API with it as the bearer token (see api.manage_page). Only the first message of a registration can
    carry the token, because the service keeps nothing but its hash; later messages carry the bare URL."""
    url = f"{_signup_url()}/v1/signups/{signup.id}"
    return f"{url}#token={token}" if token else url


def registration(signup: Signup, waitlist_position: int | None, token: str | None = None) -> dict[str, Any]:
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
        "manage_url": manage_url(signup, token),
        "created_at": signup.created_at,
    }


def registration_changed(
    session: Session, what: str, signup: Signup, waitlist_position: int | None = None, token: str | None = None
) -> None:
    """Emit `signup.<what>.v1` (confirmed, waitlisted, promoted, cancelled) for `signup`."""
    if signup.erased_at is not None:
        return  # nobody left to tell: the notifications service already forgot them (signup.erased.v1)
    emit(session, SOURCE, f"signup.{what}.v1", registration(signup, waitlist_position, token))


def contact_erased(session: Session, signup: Signup) -> None:
    emit(session, SOURCE, "signup.erased.v1", {"signup_id": signup.id, "event_id": signup.event_id})
