"""A property test of the seat rule (seats.py) over random sequences of register / cancel / capacity
change, on SQLite through the real code paths (the seat functions, and the consumer for capacity), in
both modes of registration: taken at once, and verified (asked for, then the link followed or lapsed)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gather_shared import tokens
from gather_shared.config import Settings
from gather_shared.db import make_engine, migrate, session_factory
from gather_shared.testing import deliver
from gather_shared.vocabulary import RegistrationStatus
from gather_signup import seats, verification
from gather_signup.bootstrap import MIGRATIONS
from gather_signup.handlers import handlers
from gather_signup.store import Event, Signup

PEOPLE = 6  # a small pool, so the same person tries to register twice
capacities = st.one_of(st.none(), st.integers(min_value=1, max_value=4))
register = st.tuples(st.just("register"), st.integers(0, PEOPLE - 1), st.booleans())
cancel = st.tuples(st.just("cancel"), st.integers(0, 50))
change_capacity = st.tuples(st.just("capacity"), capacities)
verify = st.tuples(st.just("verify"), st.integers(0, 50))  # follow the link of one pending registration
lapse = st.tuples(st.just("lapse"))  # every pending registration lapses
# Registrations weigh most, so that waitlists form and the other steps have something to act on.
steps = st.lists(
    st.one_of(register, register, register, verify, verify, cancel, change_capacity, lapse), min_size=4, max_size=30
)
VERIFY_MINUTES = 30


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> Any:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('seats')}/seats.db")
    migrate(engine, MIGRATIONS)
    return session_factory(engine)


def contact(person: int, by_phone: bool) -> dict[str, Any]:
    # The same person writes their email in another letter case now and then: still the same person.
    email = f"Person{person}@example.org" if by_phone else f"person{person}@example.org"
    return {
        "display_name": f"P{person}",
        "email": email,
        "phone": f"+4479111234{person:02d}" if by_phone else None,
        "channels": ["email"],
        "timezone": None,
        "consent_reminders": False,
    }


def snapshot_of(sessions: Any) -> list[Signup]:
    with sessions() as session:
        return list(session.scalars(sa.select(Signup).order_by(Signup.arrival)))


@pytest.mark.parametrize("verified", [False, True], ids=["at once", "verified"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(initial_capacity=capacities, waitlist=st.booleans(), plan=steps)
def test_random_registrations_cancellations_and_capacity_changes_keep_the_seat_rules(
    sessions: Any,
    new_event: Callable[..., dict[str, Any]],
    service_env: Path,
    verified: bool,
    initial_capacity: int | None,
    waitlist: bool,
    plan: list[tuple[Any, ...]],
) -> None:
    now = datetime.now(UTC)
    settings = Settings.from_env("signup")
    table = handlers(settings)
    event = new_event(capacity=initial_capacity, waitlist_enabled=waitlist, verification="contact")
    deliver(sessions, table, "event.published.v1", {"event": event})
    capacity, ever_waitlisted = initial_capacity, set()

    for step in plan:
        before = [s for s in snapshot_of(sessions) if s.event_id == event["id"]]
        pending = [s for s in before if s.status == RegistrationStatus.PENDING]
        if step[0] == "register":
            try:
                with sessions.begin() as session:
                    locked = seats.lock_event(session, event["id"])
                    details = contact(step[1], step[2])
                    if verified:
                        verification.request(session, locked, details, now, VERIFY_MINUTES)
                    else:
                        signup, _ = seats.register(session, locked, details, now)
                        if signup.status == RegistrationStatus.WAITLISTED:
                            ever_waitlisted.add(signup.id)
            except (seats.AlreadyRegistered, seats.EventFull):
                pass
        elif step[0] == "verify" and pending:
            link = tokens.verify_token(settings.secret_key, pending[step[1] % len(pending)].id)
            try:
                with sessions.begin() as session:
                    signup, _ = verification.verify(session, settings.secret_key, link, now, VERIFY_MINUTES)
                    if signup.status == RegistrationStatus.WAITLISTED:
                        ever_waitlisted.add(signup.id)
            except seats.EventFull:
                pass
        elif step[0] == "lapse":
            with sessions.begin() as session:
                verification.lapse_expired(session, now + timedelta(minutes=VERIFY_MINUTES), VERIFY_MINUTES)
        elif step[0] == "cancel" and before:
            with sessions.begin() as session:
                seats.cancel(session, before[step[1] % len(before)].id, now)
        elif step[0] == "capacity":
            capacity = step[1]
            event = event | {"version": event["version"] + 1, "capacity": capacity}
            deliver(sessions, table, "event.updated.v1", {"event": event, "changes": {}})

        after = [s for s in snapshot_of(sessions) if s.event_id == event["id"]]
        confirmed_before = sum(s.status == RegistrationStatus.CONFIRMED for s in before)
        confirmed = [s for s in after if s.status == RegistrationStatus.CONFIRMED]
        waiting = [s for s in after if s.status == RegistrationStatus.WAITLISTED]
        # Never overbook: a seat is given only while one is free (a lowered capacity removes nobody).
        if len(confirmed) > confirmed_before:
            assert capacity is None or len(confirmed) <= capacity
        # Nobody waits while a seat is free.
        if waiting:
            assert capacity is not None and len(confirmed) >= capacity
        # Promotion in arrival order: everyone promoted arrived before everyone still waiting.
        promoted = [s.arrival for s in confirmed if s.id in ever_waitlisted]
        assert not promoted or not waiting or max(promoted) < min(s.arrival for s in waiting)
        # No duplicate contacts among the registrations that hold one (pending ones included).
        holding = confirmed + waiting + [s for s in after if s.status == RegistrationStatus.PENDING]
        emails = [s.email.lower() for s in holding]
        phones = [s.phone for s in holding if s.phone]
        assert len(emails) == len(set(emails)) and len(phones) == len(set(phones))
        # A pending or lapsed registration holds no seat, no place in the queue, and no arrival number.
        assert all(s.arrival is None for s in after if s.status in ("pending", "lapsed"))
        # A lapsed one keeps no contact detail.
        assert all(s.email is None and s.phone is None for s in after if s.status == "lapsed")
        # Waitlist positions are 1..N in arrival order.
        with sessions() as session:
            positions = seats.waitlist_positions(session, event["id"])
            counted = session.get(Event, event["id"])
        assert [positions[s.id] for s in waiting] == list(range(1, len(waiting) + 1))
        # The counts kept on the event (the seat rule reads them) equal the registrations' statuses.
        assert (counted.confirmed, counted.waitlisted) == (len(confirmed), len(waiting))
