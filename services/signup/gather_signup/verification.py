"""Verified registration (double opt-in): a public registration for an event with `verification: contact`
is taken only once its contact follows a link sent to it. The rules:

- Asking (`request`) gives the same answer, and does the same work, whoever the contact is: new, already
  registered, or waiting for a link already. In each case, under the event's lock, one lookup by contact,
  one write to one registration row, one message, and the answer `expires_at`:
  - a new contact: a `pending` registration, and `signup.verification_requested.v1` (its verify link);
  - a contact whose registration is pending: the same registration, a fresh verify link;
  - a contact already registered: `signup.manage_link_requested.v1`, a fresh link to manage the existing
    registration, sent to that registration's own contacts.
  The details of a second request never replace those of the registration it found: they may be anyone's
  (a stranger could otherwise redirect the link). Only the event can refuse a request (closed, full
  without a waitlist), and it refuses every contact alike.
- A pending registration holds no seat, no place in the waitlist and appears on no attendee list and in no
  count: it holds only its contact (docs/privacy.md says why). Following its link (`verify`, single use,
  valid GATHER_VERIFY_MINUTES after the newest request) admits it by the seat rule (seats.admit).
- Unverified, it lapses (`lapse_expired`, run by the scheduler) GATHER_VERIFY_MINUTES after the newest
  request: `lapsed`, its contact details erased here and in the notifications service, its contact free.
"""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from gather_shared import service, tokens
from gather_shared.db import utcnow
from gather_shared.errors import Refusal
from gather_shared.vocabulary import RegistrationStatus
from gather_signup import announce, privacy, seats
from gather_signup.store import CONTACT_HOLDING_STATUSES, Event, Signup

log = logging.getLogger(__name__)

#: How often the scheduler looks for registrations to lapse.
LAPSE_INTERVAL_SECONDS = 60


class LinkGone(Refusal):
    """The verify link expired, was used already, or its registration lapsed."""


class LinkUnknown(Refusal):
    """Not a verify link this service signed."""


def request(session: Session, event: Event, details: dict[str, Any], now: datetime, verify_minutes: int) -> datetime:
    """A public registration for the locked `event`, to be verified; returns when its link expires.
    RegistrationClosed, EventFull: about the event, the same for everyone."""
    seats.newcomer_status(event, now)
    holder = _holder(session, event.id, details["email"], details["phone"])
    if holder is None:
        holder = Signup(
            id=uuid.uuid4(),
            event_id=event.id,
            status=RegistrationStatus.PENDING,
            created_at=now,
            updated_at=now,
            link_requests=1,
            link_requested_at=now,
            **details,
        )
        session.add(holder)
    else:
        holder.link_requests += 1
        holder.link_requested_at = now
    session.flush()
    expires_at = now + timedelta(minutes=verify_minutes)
    if holder.status == RegistrationStatus.PENDING:
        announce.verification_requested(session, holder, expires_at)
    else:
        announce.manage_link_requested(session, holder)
    return expires_at


def _holder(session: Session, event_id: uuid.UUID, email: str | None, phone: str | None) -> Signup | None:
    """The registration of the event that holds this email or phone (an active one before a pending one),
    as the unique indexes see them (store.py)."""
    same_contact = []
    if email:
        # The database's lower() on both sides, as the index: Python's lower() differs from SQLite's (ASCII
        # only) and from PostgreSQL's on some letters (İ), and a contact the lookup missed but the index
        # refused was a 500 for a registered address and a 202 for any other, telling who attends.
        same_contact.append(sa.func.lower(Signup.email) == sa.func.lower(email))
    if phone:
        same_contact.append(Signup.phone == phone)
    found = session.scalars(
        sa.select(Signup).where(
            Signup.event_id == event_id, Signup.status.in_(CONTACT_HOLDING_STATUSES), sa.or_(*same_contact)
        )
    ).all()
    return min(found, key=lambda signup: signup.status == RegistrationStatus.PENDING, default=None)


def verify(session: Session, secret: str, token: str, now: datetime, verify_minutes: int) -> seats.Registered:
    """Follow a verify link: its pending registration is admitted by the seat rule (seats.admit). LinkGone
    when expired or used, LinkUnknown when not ours; RegistrationClosed, EventFull from the seat rule."""
    try:
        signup_id = tokens.read_verify_token(secret, token, verify_minutes * 60)
    except tokens.ExpiredToken as exc:
        raise LinkGone("This link has expired. Ask for a place again to get a new one.") from exc
    except tokens.InvalidToken as exc:
        raise LinkUnknown("This is not a link we sent.") from exc
    locked = seats.lock_registration(session, signup_id)
    if locked is None:
        raise LinkGone("This link is no longer valid. Ask for a place again to get a new one.")
    event, signup = locked
    if signup.status != RegistrationStatus.PENDING:
        raise LinkGone("This link was used already, or is no longer valid.")
    if _lapsed(signup, now, verify_minutes):
        raise LinkGone("This link has expired. Ask for a place again to get a new one.")
    return seats.admit(session, event, signup, now)


def _lapsed(signup: Signup, now: datetime, verify_minutes: int) -> bool:
    return signup.link_requested_at is None or signup.link_requested_at <= now - timedelta(minutes=verify_minutes)


def lapse_expired(session: Session, now: datetime, verify_minutes: int) -> int:
    """Lapse every pending registration whose newest link expired: `lapsed`, its contact details erased
    (privacy.erase: here, and in the notifications service). Each event's are lapsed under its lock (a
    verification of the same registration waits for it, then finds it lapsed). Returns how many."""
    cutoff = now - timedelta(minutes=verify_minutes)
    expired = (Signup.status == RegistrationStatus.PENDING, Signup.link_requested_at <= cutoff)
    event_ids = session.scalars(sa.select(Signup.event_id).where(*expired).distinct()).all()
    lapsed = 0
    for event_id in event_ids:
        seats.lock_event(session, event_id)
        for signup in session.scalars(
            sa.select(Signup).where(Signup.event_id == event_id, *expired).execution_options(populate_existing=True)
        ):
            signup.status = RegistrationStatus.LAPSED
            signup.updated_at = now
            privacy.erase(session, signup, now)
            lapsed += 1
    return lapsed


def run_lapses(sessions: sessionmaker[Session], verify_minutes: int, stop: threading.Event) -> None:
    """The scheduled worker's other job: lapse unverified registrations every LAPSE_INTERVAL_SECONDS."""

    def job(session: Session) -> str | None:
        count = lapse_expired(session, utcnow(), verify_minutes)
        return f"verification: {count} unverified registrations lapsed" if count else None

    service.run_every(
        LAPSE_INTERVAL_SECONDS, stop, sessions, job, log, "verification: lapsing failed; trying again at the next run"
    )
