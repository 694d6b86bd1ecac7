"""The one rule that must never break: confirmed registrations never exceed an event's capacity; and
its companion: when seats free up, the longest-waiting registrations get them, in arrival order.

Every change to who holds a seat happens here: `register`, `cancel` (by the attendee), `remove` (by the
event's organizer), and `promote_waiting` (after either, or when `event.updated.v1` raises the capacity).
Why the rule holds whatever the concurrency:

1. Lock first. Each of those transactions starts by locking the event's row in this service's copy of
   events (`lock_event`: `SELECT … FOR UPDATE` on PostgreSQL). Seat decisions for one event therefore run
   strictly one after another; decisions for different events never wait for each other. On SQLite every
   transaction begins with `BEGIN IMMEDIATE` (gather_shared.db), which takes the database's write lock:
   the same serialisation, coarser. We lock the one row that all competing transactions share, once per
   transaction, before reading anything the decision depends on.
2. Count under the lock. The locked row carries the event's `confirmed` and `waitlisted` counts. Only the
   functions here change a registration's status, and each changes the matching count in the same
   transaction (`_move`), so at every commit the counts equal the registrations' statuses. They and the
   waitlist are read after the lock is taken, so no other transaction can change them before ours
   commits and releases it. Hence a seat is given only when
   `confirmed < capacity` at the moment of commit. (Reading the counts instead of counting rows keeps
   the time under the lock the same for the 1,000th registration as for the first.)
3. Order under the lock. Each registration takes the next number of the event's `arrivals` counter (in
   the locked row), so arrival numbers are gapless and unique per event; the waitlist is the waitlisted
   registrations by arrival, and a waitlist position is a rank in it, hence positions are always 1..N.
   A new registration arrived after everyone already waiting, so when waitlisted it is last: its
   position is the new `waitlisted` count, without a query.
4. Promote in the same transaction. Whoever frees a seat or adds seats promotes the longest-waiting
   registrations before committing: nobody can take a freed seat in between, and the answer to the
   cancelling call already reflects the promotion.

Lowering the capacity below the confirmed count removes nobody: the count just stays above capacity
until enough people cancel, and no seat is given meanwhile (rule 2).

Duplicates (the same email or phone, active, on one event) are refused by the database: a partial unique
index per contact (store.py) makes the registration's INSERT fail, and `register` refuses with
`AlreadyRegistered`. Nothing is checked beforehand: a check would cost every registration a query while
it holds the event's lock, to spare the rare duplicate an INSERT that is rolled back.

A registration whose contact must first be verified (verification.py) is `pending` meanwhile: it holds
no seat, no place in the waitlist and no arrival number, only its contact (the unique indexes). Following
its link `admit`s it like a new registration: it arrives then, and takes a seat by the same rule.

What a refusal means to a caller over HTTP is api.py's business: the rules raise their own errors.

On PostgreSQL a public registration for an event that takes it at once has a path of its own,
`register_at_once`: one statement applies rules 1–3 (the lock, the counts, the number) exactly as
`register` does, writes the registration and both its messages, and commits by itself. The event's lock
is then held only inside PostgreSQL, for the time of that statement and its commit: never across a round
trip to a web worker that must first be scheduled again (docs/benchmarks.md, "Signup rush"). Whatever it
does not take (a draft, a closed or full event, one that asks for verification) goes the general way,
which says why.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gather_shared.bus.outbox import tell_relay
from gather_shared.errors import Refusal
from gather_shared.vocabulary import LISTED_REGISTRATION_STATUSES, EventStatus, RegistrationStatus, Verification
from gather_signup import announce
from gather_signup.store import Event, Signup


class EventNotOpen(Refusal):
    """No such event, or a draft: the public cannot see it yet."""


class RegistrationClosed(Refusal):
    """The event has started, or is postponed or cancelled, or its registration has not opened yet."""


class EventFull(Refusal):
    """No seat is free and the event has no waitlist."""


class AlreadyRegistered(Refusal):
    """The email address or phone number holds an active registration for the event already."""


def lock_event(session: Session, event_id: uuid.UUID) -> Event | None:
    """Take the event's lock (rule 1). Call first in every transaction that changes who holds a seat."""
    return session.get(Event, event_id, with_for_update=True, populate_existing=True)


def visible_event(event: Event | None) -> Event:
    """The event as the public sees it: a draft does not exist yet (EventNotOpen)."""
    if event is None or event.status == EventStatus.DRAFT:
        raise EventNotOpen("No such event, or it is not open for registration yet.")
    return event


def is_accepting(event: Event, now: datetime) -> bool:
    opened = event.registration_opens_at is None or event.registration_opens_at <= now
    return event.status == EventStatus.PUBLISHED and opened and now < event.starts_at


def newcomer_status(event: Event, now: datetime) -> str:
    """What a registration arriving now at the locked `event` becomes: confirmed while a seat is free,
    else waitlisted; or RegistrationClosed, EventFull. It depends on the event alone, never on who asks."""
    if not is_accepting(event, now):
        if event.status != EventStatus.PUBLISHED:
            reason = f"the event is {event.status}"
        elif now >= event.starts_at:
            reason = "the event has started"
        else:
            reason = "it has not opened yet"
        raise RegistrationClosed(f"Registration is closed: {reason}.")
    if _free_seats(event) != 0:
        return RegistrationStatus.CONFIRMED
    if event.waitlist_enabled:
        return RegistrationStatus.WAITLISTED
    raise EventFull("The event is full and has no waitlist.")


@dataclass(frozen=True)
class Availability:
    capacity: int | None  # None: unlimited
    confirmed: int
    waitlisted: int
    remaining: int | None  # seats nobody holds; None: unlimited
    waitlist_enabled: bool
    accepting: bool  # whether a registration now would be taken, confirmed or waitlisted


def availability(event: Event, now: datetime) -> Availability:
    """The event's seats as the public may see them."""
    remaining = _free_seats(event)
    return Availability(
        capacity=event.capacity,
        confirmed=event.confirmed,
        waitlisted=event.waitlisted,
        remaining=remaining,
        waitlist_enabled=event.waitlist_enabled,
        accepting=is_accepting(event, now) and (remaining != 0 or event.waitlist_enabled),
    )


class Registered(NamedTuple):
    signup: Signup
    waitlist_position: int | None  # None when confirmed


def register(session: Session, event: Event, details: dict[str, Any], now: datetime) -> Registered:
    """A registration taken at once for the locked `event` (no verification, or added by its organizer):
    confirmed while a seat is free, else waitlisted; or RegistrationClosed, EventFull, AlreadyRegistered.

    `details`: display_name, email, phone, channels, timezone, consent_reminders (already validated)."""
    status = newcomer_status(event, now)
    signup = Signup(id=uuid.uuid4(), event_id=event.id, status=status, created_at=now, updated_at=now, **details)
    session.add(signup)
    return _arrive(session, event, signup, status)


#: `register_at_once`'s statement. `locked` takes the event's lock (rule 1) and decides from its counts,
#: read under it, whether a seat is free (rule 2, as newcomer_status); `counted` numbers the arrival and
#: counts it (rules 2 and 3); the registration and its two messages are written from what `counted` returned.
#: The message bodies are made in Python beforehand (outbox_row), one per possible status; the statement
#: picks one and fills in what only the lock decides: the waitlist position and the counts.
_AT_ONCE = sa.text(
    """
    WITH locked AS (
        SELECT id, (capacity IS NULL OR confirmed < capacity) AS seat
        FROM events
        WHERE id = :event_id AND verification = :at_once AND status = :published
          AND (registration_opens_at IS NULL OR registration_opens_at <= :now) AND :now < starts_at
          AND (capacity IS NULL OR confirmed < capacity OR waitlist_enabled)
        FOR UPDATE
    ), counted AS (
        UPDATE events AS e
        SET arrivals = e.arrivals + 1,
            confirmed = e.confirmed + CASE WHEN locked.seat THEN 1 ELSE 0 END,
            waitlisted = e.waitlisted + CASE WHEN locked.seat THEN 0 ELSE 1 END,
            seats_seq = e.seats_seq + 1
        FROM locked
        WHERE e.id = locked.id
        RETURNING e.id, e.arrivals, e.capacity, e.confirmed, e.waitlisted, e.waitlist_enabled, e.seats_seq,
            CASE WHEN locked.seat THEN :confirmed ELSE :waitlisted END AS status
    ), registration AS (
        INSERT INTO signups (id, event_id, arrival, status, display_name, email, phone, channels, timezone,
                             consent_reminders, token_version, link_requests, created_at, updated_at)
        SELECT :signup_id, id, arrivals, status, :display_name, :email, :phone, :channels, :timezone,
               :consent_reminders, 1, 0, :now, :now
        FROM counted
    ), messages AS (
        INSERT INTO outbox (message_id, type, body, correlation_id, created_at, attempts)
        SELECT :confirmed_id, :confirmed_type, :confirmed_body, :correlation_id, :now, 0
        FROM counted WHERE status = :confirmed
        UNION ALL
        SELECT :waitlisted_id, :waitlisted_type,
               jsonb_set(CAST(:waitlisted_body AS jsonb), '{data,waitlist_position}', to_jsonb(waitlisted))::text,
               :correlation_id, :now, 0
        FROM counted WHERE status = :waitlisted
        UNION ALL
        SELECT :available_id, :available_type,
               jsonb_set(CAST(:available_body AS jsonb), '{data}', jsonb_build_object(
                   'event_id', CAST(id AS text), 'capacity', capacity, 'confirmed', confirmed,
                   'waitlisted', waitlisted, 'waitlist_enabled', waitlist_enabled, 'seq', seats_seq))::text,
               :correlation_id, :now, 0
        FROM counted
    )
    SELECT status, waitlisted FROM counted
    """
).bindparams(
    sa.bindparam("event_id", type_=Signup.__table__.c.event_id.type),
    sa.bindparam("signup_id", type_=Signup.__table__.c.id.type),
    sa.bindparam("now", type_=Signup.__table__.c.created_at.type),
    sa.bindparam("channels", type_=Signup.__table__.c.channels.type),
)


def register_at_once(engine: Engine, event_id: uuid.UUID, details: dict[str, Any], now: datetime) -> Registered | None:
    """`register` in one statement that commits by itself (PostgreSQL), for a public registration of an
    event that takes it at once (`verification: none`): confirmed while a seat is free, else waitlisted;
    AlreadyRegistered. None, having changed nothing, when the event does not take it so (no such event, a
    draft, closed, full without a waitlist, or verification asked): the caller goes the general way."""
    signup = Signup(
        id=uuid.uuid4(), event_id=event_id, created_at=now, updated_at=now, token_version=1, erased_at=None, **details
    )
    rows = {}
    for status, position in ((RegistrationStatus.CONFIRMED, None), (RegistrationStatus.WAITLISTED, 1)):
        signup.status = status  # a waitlisted one's position (1 here) is filled in by the statement
        rows[status] = announce.outbox_row(f"signup.{status}.v1", announce.registration(signup, position))
    available = announce.outbox_row(
        "signup.availability_changed.v1",
        {"event_id": event_id, "capacity": None, "confirmed": 0, "waitlisted": 0, "waitlist_enabled": True, "seq": 1},
    )
    params: dict[str, Any] = {
        "event_id": event_id,
        "at_once": Verification.NONE,
        "published": EventStatus.PUBLISHED,
        "now": now,
        "confirmed": RegistrationStatus.CONFIRMED,
        "waitlisted": RegistrationStatus.WAITLISTED,
        "signup_id": signup.id,
        "correlation_id": available["correlation_id"],
        **details,
    }
    for name, row in (*rows.items(), ("available", available)):
        params |= {f"{name}_id": row["message_id"], f"{name}_type": row["type"], f"{name}_body": row["body"]}
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        try:
            decided = conn.execute(_AT_ONCE, params).one_or_none()
        except IntegrityError as exc:  # only the contact indexes can refuse a new registration
            raise AlreadyRegistered("This email address or phone number is already registered.") from exc
    if decided is None:
        return None
    tell_relay(engine)
    signup.status = decided.status
    return Registered(signup, decided.waitlisted if decided.status == RegistrationStatus.WAITLISTED else None)


def admit(session: Session, event: Event, signup: Signup, now: datetime) -> Registered:
    """A pending registration of the locked `event` whose contact was just verified: it arrives now, and
    is confirmed while a seat is free, else waitlisted; or RegistrationClosed, EventFull (it stays pending)."""
    status = newcomer_status(event, now)
    signup.status = status
    signup.updated_at = now
    return _arrive(session, event, signup, status)


def _arrive(session: Session, event: Event, signup: Signup, status: str) -> Registered:
    """Number the new arrival, count it (rules 2 and 3) and announce it."""
    event.arrivals += 1
    signup.arrival = event.arrivals
    _move(event, None, status)
    try:
        session.flush()
    except IntegrityError as exc:  # only the contact indexes can refuse a new registration
        raise AlreadyRegistered("This email address or phone number is already registered.") from exc
    # The newest arrival is last in the waitlist (rule 3): its position is the count, without a query.
    position = event.waitlisted if status == RegistrationStatus.WAITLISTED else None
    announce.registered(session, signup, position)
    announce.availability_changed(session, event)
    return Registered(signup, position)


def lock_registration(session: Session, signup_id: uuid.UUID) -> tuple[Event, Signup] | None:
    """Take the lock of a registration's event (rule 1) and read the registration as it is under that lock;
    None if there is no such registration."""
    event_id = session.scalar(sa.select(Signup.event_id).where(Signup.id == signup_id))
    if event_id is None:
        return None
    event = lock_event(session, event_id)
    signup = session.get(Signup, signup_id, populate_existing=True)
    if event is None or signup is None:  # neither is ever deleted; say so to the type checker
        return None
    return event, signup


def cancel(session: Session, signup_id: uuid.UUID, now: datetime) -> Signup | None:
    """Cancel a registration and give a freed seat to the longest-waiting. Cancelling twice changes nothing."""
    locked = lock_registration(session, signup_id)
    if locked is None:
        return None
    event, signup = locked
    if signup.status not in (RegistrationStatus.CANCELLED, RegistrationStatus.LAPSED):
        _end(session, event, signup, now, announce.cancelled)
    return signup


class Removed(NamedTuple):
    signup: Signup
    promoted: list[Signup]  # the longest-waiting, who got the seat it freed


def remove(session: Session, event_id: uuid.UUID, signup_id: uuid.UUID, reason: str, now: datetime) -> Removed | None:
    """The event's organizer removes a registration, for `reason` (told to the attendee): cancelled, and a
    freed seat goes to the longest-waiting, as when the attendee cancels. None when the event has no such
    registration as its organizer sees them (another event's, or one whose contact was never verified:
    the attendee list never shows those). Removing a cancelled registration changes nothing."""
    locked = lock_registration(session, signup_id)
    if locked is None or locked[1].event_id != event_id or locked[1].status not in LISTED_REGISTRATION_STATUSES:
        return None
    event, signup = locked
    if signup.status == RegistrationStatus.CANCELLED:
        return Removed(signup, [])
    return Removed(signup, _end(session, event, signup, now, partial(announce.removed, reason=reason)))


def _end(
    session: Session, event: Event, signup: Signup, now: datetime, tell: Callable[[Session, Signup], None]
) -> list[Signup]:
    """The active registration of the locked `event` is cancelled, `tell` announces it, and a freed seat
    goes to the longest-waiting in this same transaction (rule 4): returns who got it."""
    _move(event, signup.status, RegistrationStatus.CANCELLED)
    signup.status = RegistrationStatus.CANCELLED
    signup.updated_at = now
    session.flush()
    tell(session, signup)
    promoted = promote_waiting(session, event, now)
    announce.availability_changed(session, event)
    return promoted


def promote_waiting(session: Session, event: Event, now: datetime) -> list[Signup]:
    """Give every free seat of the locked `event` to the longest-waiting registrations (rule 4)."""
    if event.status == EventStatus.CANCELLED or now >= event.ends_at:
        return []  # a seat at an event that will not happen is no news worth sending
    free = _free_seats(event)
    if free == 0 or event.waitlisted == 0:
        return []
    query = (
        sa.select(Signup)
        .where(Signup.event_id == event.id, Signup.status == RegistrationStatus.WAITLISTED)
        .order_by(Signup.arrival)
    )
    promoted = list(session.scalars(query if free is None else query.limit(free)))
    for signup in promoted:
        _move(event, RegistrationStatus.WAITLISTED, RegistrationStatus.CONFIRMED)
        signup.status = RegistrationStatus.CONFIRMED
        signup.updated_at = now
    session.flush()
    for signup in promoted:
        announce.promoted(session, signup)
    return promoted


def waitlist_position(session: Session, signup: Signup) -> int | None:
    """1 for the longest-waiting; None when not waitlisted (rule 3)."""
    if signup.status != RegistrationStatus.WAITLISTED:
        return None
    return session.scalar(
        sa.select(sa.func.count()).where(
            Signup.event_id == signup.event_id,
            Signup.status == RegistrationStatus.WAITLISTED,
            Signup.arrival <= signup.arrival,
        )
    )


def waitlist_positions(session: Session, event_id: uuid.UUID) -> dict[uuid.UUID, int]:
    """Every waitlisted registration of the event → its position."""
    ids = session.scalars(
        sa.select(Signup.id)
        .where(Signup.event_id == event_id, Signup.status == RegistrationStatus.WAITLISTED)
        .order_by(Signup.arrival)
    )
    return {signup_id: position for position, signup_id in enumerate(ids, start=1)}


def _move(event: Event, old: str | None, new: str) -> None:
    """Keep the locked event's counts (rule 2) as one registration goes from `old` (None: new) to `new`."""
    for status, change in ((old, -1), (new, +1)):
        if status == RegistrationStatus.CONFIRMED:
            event.confirmed += change
        elif status == RegistrationStatus.WAITLISTED:
            event.waitlisted += change


def _free_seats(event: Event) -> int | None:
    """Seats nobody holds (0 when the capacity was lowered below the confirmed count); None: unlimited."""
    if event.capacity is None:
        return None
    return max(0, event.capacity - event.confirmed)
