"""Forgetting attendees: erasure on request, and the retention job that anonymises the registrations of
events that ended `GATHER_RETENTION_DAYS` ago. Both keep the registration rows (so counts stay right)
but remove every contact detail from this service's database (SQLite's write-ahead log included), and
tell the notifications service to forget them too (`signup.erased.v1`): docs/privacy.md lists every copy."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from gather_shared import service
from gather_shared.db import checkpoint_after_commit, outbox_table, utcnow
from gather_shared.vocabulary import EventStatus
from gather_signup import announce, idempotency
from gather_signup.store import Event, IdempotencyRecord, Signup

log = logging.getLogger(__name__)

#: How often the scheduled worker runs the retention job.
RETENTION_INTERVAL_SECONDS = 3600


def erase(session: Session, signup: Signup, now: datetime) -> None:
    """Remove the registration's contact details now. Idempotent."""
    if signup.erased_at is not None:
        return
    # Messages not yet relayed still carry the contact details: withdraw them. The erasure message below
    # tells the notifications service all it needs (it never heard of them, or must forget them).
    session.execute(
        sa.delete(outbox_table).where(
            outbox_table.c.type.like("signup.%"), outbox_table.c.body.contains(str(signup.id))
        )
    )
    # The stored request hash of an idempotent registration is a digest of the contact details.
    session.execute(sa.delete(IdempotencyRecord).where(IdempotencyRecord.signup_id == signup.id))
    signup.forget_contact()
    signup.consent_reminders = False
    signup.token_version += 1  # every manage link sent so far stops working (gather_shared.tokens)
    signup.erased_at = signup.updated_at = now
    announce.contact_erased(session, signup)
    checkpoint_after_commit(session)  # the old values stay in SQLite's -wal until it is emptied


def anonymise_ended_events(session: Session, now: datetime, retention_days: int) -> int:
    """Erase the contact details of every registration of an event that ended `retention_days` before
    `now`; returns how many events had registrations erased. Also drops expired Idempotency-Key records.

    Judged on every run from the events as they are now, registration by registration, never from an
    earlier run: a registration made after an event was first examined is covered, an event moved later
    is judged by its new end, and a postponed event has not ended at all (its old date is no longer its
    date: its attendees are kept until it has a new one and that is `retention_days` past)."""
    idempotency.purge_expired(session, now)
    has_contacts = sa.select(Signup.event_id).where(Signup.erased_at.is_(None))
    events = session.scalars(
        sa.select(Event)
        .where(
            Event.ends_at <= now - timedelta(days=retention_days),
            Event.status != EventStatus.POSTPONED,
            Event.id.in_(has_contacts),
        )
        .with_for_update()  # as registering and cancelling do: no registration changes under the job
    )
    anonymised = 0
    for event in events:
        for signup in session.scalars(sa.select(Signup).where(Signup.event_id == event.id, Signup.erased_at.is_(None))):
            erase(session, signup, now)
        event.anonymised_at = now
        anonymised += 1
    return anonymised


def run_retention(sessions: sessionmaker[Session], retention_days: int, stop: threading.Event) -> None:
    """The scheduled worker: run the retention job now and then every RETENTION_INTERVAL_SECONDS."""

    def job(session: Session) -> str:
        count = anonymise_ended_events(session, utcnow(), retention_days)
        return f"retention: anonymised the attendees of {count} ended events"

    service.run_every(
        RETENTION_INTERVAL_SECONDS, stop, sessions, job, log, "retention: failed; trying again at the next run"
    )
