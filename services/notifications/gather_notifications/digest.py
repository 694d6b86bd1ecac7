"""What an event's organizer may opt in to on the event (docs/notifications.md, "The organizer's digest"):

- `digest: true`: one email a day, the morning after (DIGEST_HOUR in the event's time zone), saying how many
  registrations the event gained and lost that day, as counts. A day with neither sends nothing.
- `waitlist_alert_at: n`: one email when the waitlist reaches n people (signup.availability_changed.v1
  carries the counts); once per threshold, however the waitlist moves afterwards.

Both go to the organizer account's address (organizer.key_issued.v1 `email`), never with an attendee's
name or contact: the counts are all this module ever keeps (store.EventActivity, OrganizerNotice.figures).
They are OrganizerNotices, not Notifications: those belong to a registration each."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gather_notifications import delivery, privacy, render, rules
from gather_notifications.store import (
    UNIQUE_ORGANIZER_NOTICE,
    Event,
    EventActivity,
    Organizer,
    OrganizerNotice,
)
from gather_shared import db, metrics, organizers
from gather_shared.bus import Message
from gather_shared.service import Runtime
from gather_shared.vocabulary import Channel, EventStatus, NotificationKind, NotificationStatus

log = logging.getLogger(__name__)

#: The hour of the event's local time at which the digest of the day before goes: a morning read, not a
#: midnight email.
DIGEST_HOUR = 8
#: Like sender.LEASE: a notice still `sending` after this (its sender died) is claimed again.
LEASE = timedelta(minutes=2)

#: Which registration messages count as what (signup.promoted.v1 is neither: the registration was counted
#: when it joined the waitlist).
NEW = frozenset({NotificationKind.SIGNUP_CONFIRMED, NotificationKind.WAITLISTED})
ENDED = frozenset({NotificationKind.SIGNUP_CANCELLED, NotificationKind.SIGNUP_REMOVED})


def zone_of(event: Event | None) -> ZoneInfo:
    try:
        return ZoneInfo(event.snapshot["timezone"]) if event is not None else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError, KeyError):
        return ZoneInfo("UTC")


def due_at(day: date, zone: ZoneInfo) -> datetime:
    """When the digest of `day` goes: DIGEST_HOUR on the next day, in the event's time zone."""
    return datetime.combine(day + timedelta(days=1), time(DIGEST_HOUR), tzinfo=zone).astimezone(UTC)


# --- counting and planning (the consumer's transaction) ---------------------------------------------


def count(session: Session, kind: str, event: Event | None, event_id: uuid.UUID, at: datetime) -> None:
    """Count one registration message of `kind` for the day (the event's, when its copy is here) it happened
    on. The consumer's inbox applies each message once, so a redelivery is not counted twice. An event's own
    cancellation cancels its registrations: those are not the attendees' doing, and are not counted."""
    if kind not in NEW | ENDED:
        return
    if kind in ENDED and event is not None and event.status == EventStatus.CANCELLED:
        return
    day = at.astimezone(zone_of(event)).date()
    new = kind in NEW
    column = "registrations" if new else "cancellations"
    # One statement, atomic under concurrent consumers: the day's row, or one more on it.
    session.execute(
        db.insert(session, EventActivity)
        .values(event_id=event_id, day=day, registrations=int(new), cancellations=int(not new))
        .on_conflict_do_update(index_elements=["event_id", "day"], set_={column: getattr(EventActivity, column) + 1})
    )


def alert_if_waitlist_reached(session: Session, message: Message) -> None:
    """Handler for `signup.availability_changed.v1`: plan the waitlist alert when the waitlist has reached
    the event's `waitlist_alert_at` (once per threshold: the unique key is the threshold)."""
    event = session.get(Event, message.data["event_id"])
    threshold = event.snapshot.get("waitlist_alert_at") if event is not None else None
    waitlisted = message.data["waitlisted"]
    if event is None or threshold is None or waitlisted < threshold:
        return
    figures = {"waitlisted": waitlisted, "threshold": threshold}
    _plan(session, event.id, NotificationKind.WAITLIST_ALERT, str(threshold), figures, message.time)


def _plan(session: Session, event_id: uuid.UUID, kind: str, key: str, figures: dict[str, Any], at: datetime) -> None:
    session.execute(
        db.insert(session, OrganizerNotice)
        .values(id=uuid.uuid4(), event_id=event_id, kind=kind, key=key, figures=figures, scheduled_for=at)
        .on_conflict_do_nothing(index_elements=list(UNIQUE_ORGANIZER_NOTICE))
    )


def plan_digests(session: Session, now: datetime) -> None:
    """Turn each day that is over (its digest due by `now`) into a digest, if the event's organizer opted in,
    and forget its counts either way. A registration message about a day already digested (very late)
    counts anew, and its digest, the same (event, day), is never planned twice."""
    # No local day after today's UTC date is over (the zones run from UTC-12 to UTC+14): the rest wait.
    rows = session.execute(
        sa.select(EventActivity, Event)
        .outerjoin(Event, Event.id == EventActivity.event_id)
        .where(EventActivity.day <= now.date())
        .with_for_update(of=EventActivity)
    ).all()
    for activity, event in rows:
        if event is None or due_at(activity.day, zone_of(event)) > now:
            continue
        if event.snapshot.get("digest") and (activity.registrations or activity.cancellations):
            figures = {
                "day": activity.day.isoformat(),
                "registrations": activity.registrations,
                "cancellations": activity.cancellations,
            }
            _plan(session, event.id, NotificationKind.ORGANIZER_DIGEST, activity.day.isoformat(), figures, now)
        session.delete(activity)


# --- sending (the sender process) -------------------------------------------------------------------


def send_due(rt: Runtime, now: datetime) -> int:
    """Plan the digests now due, then send every organizer notice due; returns how many were claimed. Like
    the sender: claimed in one transaction, each provider call outside any, each outcome committed after
    it (at-least-once: a sender that dies mid-call may send that one email twice)."""
    with rt.sessions.begin() as session:
        plan_digests(session, now)
        due = sa.or_(
            sa.and_(OrganizerNotice.status == NotificationStatus.PENDING, OrganizerNotice.scheduled_for <= now),
            sa.and_(OrganizerNotice.status == NotificationStatus.SENDING, OrganizerNotice.locked_until <= now),
        )
        query = (
            sa.select(OrganizerNotice, Event, Organizer)
            .outerjoin(Event, Event.id == OrganizerNotice.event_id)
            .outerjoin(Organizer, Organizer.id == Event.organizer_id)
            .where(due)
            .order_by(OrganizerNotice.scheduled_for)
            .limit(50)
        )
        if db.is_postgresql(session):
            query = query.with_for_update(skip_locked=True, of=OrganizerNotice)
        rows = session.execute(query).all()
        sends = []
        for notice, event, organizer in rows:
            address = organizer.email if organizer is not None else None
            if event is None or address is None or organizers.is_revoked(organizer.api_key_hash):
                notice.status, notice.last_error = (
                    NotificationStatus.CANCELLED,
                    "no address: the organizer's is unknown",
                )
                metrics.NOTIFICATIONS.labels(notice.kind, Channel.EMAIL, NotificationStatus.CANCELLED).inc()
                continue
            try:
                message = render.organizer_email(rt.settings, notice, event, address, now)
            except Exception as exc:  # a bug in a template fails this notice, not the others
                log.exception("digest: %s %s could not be rendered", notice.kind, notice.id)
                notice.status, notice.last_error = NotificationStatus.FAILED, f"{type(exc).__name__}: {exc}"[:1000]
                continue
            notice.status, notice.locked_until = NotificationStatus.SENDING, now + LEASE
            notice.attempts += 1
            sends.append((notice.id, notice.kind, notice.attempts, address, message))
    with delivery.Mailer(rt.settings) as mailer:
        for notice_id, kind, attempts, address, message in sends:
            values: dict[str, Any]
            try:
                mailer.send(message, str(notice_id))
                values = {"status": NotificationStatus.SENT, "sent_at": now, "last_error": None}
            except delivery.DeliveryError as exc:
                error = privacy.without_contact(str(exc), [address])[:1000]
                retry = exc.transient and attempts < rules.MAX_ATTEMPTS
                values = (
                    {"status": NotificationStatus.PENDING, "scheduled_for": now + rules.retry_delay(attempts)}
                    if retry
                    else {"status": NotificationStatus.FAILED}
                ) | {"last_error": error}
                log.warning("digest: %s failed (attempt %d): %s", kind, attempts, error)
            metrics.NOTIFICATIONS.labels(kind, Channel.EMAIL, values["status"]).inc()
            with rt.sessions.begin() as session:
                session.execute(
                    sa.update(OrganizerNotice)
                    .where(OrganizerNotice.id == notice_id)
                    .values(locked_until=None, **values)
                )
            log.info("digest: %s %s", kind, values["status"])
    return len(rows)
