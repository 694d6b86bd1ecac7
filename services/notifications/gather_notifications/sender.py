"""The sender, which is also the reminder scheduler: claims due notifications (reminders are simply
notifications due later), decides whether each may still go, renders it, hands it to delivery and
records the outcome. Delivery is at-least-once; docs/notifications.md says why and what that means."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from functools import partial

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gather_notifications import constants as c
from gather_notifications import delivery, render, rules
from gather_notifications.store import (
    EmailOptOut,
    Event,
    Notification,
    Recipient,
    SmsOptOut,
    contact_hash,
    forget_contact,
)
from gather_shared.broker import message_context
from gather_shared.db import transaction, utcnow
from gather_shared.service import Runtime

log = logging.getLogger(__name__)

#: How long a claim lasts: a notification still `sending` after this (its sender died) is claimed again.
LEASE = timedelta(minutes=5)
#: How long to wait for the event's snapshot when a registration message overtook it.
EVENT_WAIT = timedelta(seconds=5)
PURGE_EVERY_SECONDS = 60
#: Deliveries in flight at once; within the database pool (5 + 10 overflow), with room for the claims.
SEND_WORKERS = 8


def claim_due(rt: Runtime, now: datetime, limit: int = 50) -> list[uuid.UUID]:
    """Mark up to `limit` due notifications `sending` and return their ids. Several senders may run:
    on PostgreSQL each skips the rows another has locked (SQLite lets one writer at a time anyway)."""
    with transaction(rt.sessions) as session:
        due = sa.or_(
            sa.and_(Notification.status == c.PENDING, Notification.scheduled_for <= now),
            sa.and_(Notification.status == c.SENDING, Notification.locked_until <= now),
        )
        query = sa.select(Notification).where(due).order_by(Notification.scheduled_for).limit(limit)
        if session.bind.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        claimed = session.scalars(query).all()
        for notification in claimed:
            notification.status = c.SENDING
            notification.locked_until = now + LEASE
        return [n.id for n in claimed]


def verdict(rt: Runtime, session: Session, notification: Notification, recipient: Recipient | None,
            event: Event, now: datetime) -> tuple[str, str] | datetime | None:
    """Whether the notification may go now: None (yes), a time to wait until, or (final status, reason)."""
    address = None
    if recipient is not None and recipient.erased_at is None:
        address = recipient.email if notification.channel == c.EMAIL else recipient.phone
    if address is None:
        return c.CANCELLED, "no contact: erased"
    if notification.kind == c.REMINDER:
        if event.status != c.PUBLISHED or recipient.status != c.CONFIRMED:
            return c.CANCELLED, "no longer due: the event or the registration changed"
        if now >= event.starts_at:
            return c.SUPPRESSED, "the event had already started"
    if notification.channel == c.EMAIL:
        if notification.kind in c.NON_TRANSACTIONAL and session.get(EmailOptOut, contact_hash(address)):
            return c.SUPPRESSED, "opted out: the address unsubscribed"
        return None
    if session.get(SmsOptOut, contact_hash(address)):
        return c.SUPPRESSED, "opted out: the number replied STOP"
    window = rules.parse_quiet_hours(rt.settings.sms_quiet_hours)
    quiet_until = rules.quiet_hours_end(now, render.local_zone(recipient, event), window)
    if quiet_until is None:
        return None
    if event.starts_at < quiet_until:
        # News about the event matters most right before it; anything else would only arrive too late.
        if notification.kind in c.EVENT_NEWS:
            return None
        return c.SUPPRESSED, "quiet hours: they last past the event's start"
    return quiet_until


def deliver(rt: Runtime, notification_id: uuid.UUID, now: datetime) -> None:
    """Send one claimed notification, or settle why it does not go."""
    with transaction(rt.sessions) as session:
        notification, recipient, event = session.execute(
            sa.select(Notification, Recipient, Event)
            .outerjoin(Recipient, Recipient.signup_id == Notification.signup_id)
            .outerjoin(Event, Event.id == Notification.event_id)
            .where(Notification.id == notification_id)
        ).one()
        if event is None:  # the registration overtook the event's snapshot; wait for it
            _update(session, notification_id, status=c.PENDING, scheduled_for=now + EVENT_WAIT)
            return
        decision = verdict(rt, session, notification, recipient, event, now)
        if isinstance(decision, datetime):
            _update(session, notification_id, status=c.PENDING, scheduled_for=decision)
            log.info("sender: %s sms waits for the end of quiet hours at %s", notification.kind, decision)
            return
        if decision is not None:
            _update(session, notification_id, status=decision[0], last_error=decision[1])
            log.info("sender: %s %s %s (%s)", notification.kind, notification.channel, *decision)
            return
        if notification.channel == c.EMAIL:
            content: object = render.email(rt.settings, notification, recipient, event, now)
        else:
            content = render.sms(rt.settings, notification, recipient, event)
        notification.attempts += 1
        attempts, to = notification.attempts, recipient.phone
    # The provider is called outside any transaction: no lock is held while it answers.
    try:
        if notification.channel == c.EMAIL:
            delivery.send_email(rt.settings, content)
            provider_id = None
        else:
            provider_id = delivery.send_sms(rt.settings, to, content, str(notification_id))
    except delivery.DeliveryError as exc:
        _failed(rt, notification, attempts, exc, now)
        return
    with transaction(rt.sessions) as session:
        # A delivery receipt may have overtaken this update; it must not be turned back into `sent`.
        status = sa.case((Notification.status == c.SENDING, c.SENT), else_=Notification.status)
        _update(session, notification_id, status=status, sent_at=now, provider_id=provider_id, last_error=None)
    log.info("sender: %s %s sent", notification.kind, notification.channel)


def _failed(rt: Runtime, notification: Notification, attempts: int, exc: delivery.DeliveryError,
            now: datetime) -> None:
    error = str(exc)[:1000]
    with transaction(rt.sessions) as session:
        if exc.transient and attempts < rules.MAX_ATTEMPTS:
            retry_at = now + rules.retry_delay(attempts)
            _update(session, notification.id, status=c.PENDING, scheduled_for=retry_at, last_error=error)
            log.warning("sender: %s %s attempt %d failed, retry at %s: %s",
                        notification.kind, notification.channel, attempts, retry_at, error)
        else:
            _update(session, notification.id, status=c.FAILED, last_error=error)
            log.error("sender: %s %s failed after %d attempt(s): %s",
                      notification.kind, notification.channel, attempts, error)


def _update(session: Session, notification_id: uuid.UUID, **values: object) -> None:
    session.execute(sa.update(Notification).where(Notification.id == notification_id)
                    .values(locked_until=None, **values))


def forget_expired_contacts(rt: Runtime, now: datetime) -> int:
    """Erase the contact details of attendees of events that ended more than GATHER_RETENTION_DAYS ago."""
    cutoff = now - timedelta(days=rt.settings.retention_days)
    with transaction(rt.sessions) as session:
        expired = session.scalars(
            sa.select(Recipient).join(Event, Event.id == Recipient.event_id)
            .where(Event.ends_at < cutoff, Recipient.erased_at.is_(None))
        ).all()
        for recipient in expired:
            forget_contact(session, recipient, now, "contact erased: retention period over")
        return len(expired)


def deliver_or_fail(rt: Runtime, notification_id: uuid.UUID) -> None:
    """Deliver at the current time; a bug (say, in a template) fails this notification, not the others."""
    with rt.sessions() as session:
        cause = session.execute(sa.select(Notification.cause_message_id, Notification.correlation_id)
                                .where(Notification.id == notification_id)).one()
    try:
        with message_context(cause.cause_message_id or "-", cause.correlation_id):
            deliver(rt, notification_id, utcnow())
    except Exception as exc:
        log.exception("sender: notification %s could not be handled", notification_id)
        with transaction(rt.sessions) as session:
            _update(session, notification_id, status=c.FAILED, last_error=f"{type(exc).__name__}: {exc}"[:1000])


def run(rt: Runtime, stop: threading.Event, poll_seconds: float = 0.2) -> None:
    """Claim what is due and deliver it on SEND_WORKERS threads: most of a delivery is waiting for the
    SMTP server or the SMS API, so a fan-out of reminders goes out in parallel rather than in a queue."""
    next_purge = 0.0
    with ThreadPoolExecutor(SEND_WORKERS, thread_name_prefix="sender") as pool:
        while not stop.is_set():
            due: list[uuid.UUID] = []
            try:
                if time.monotonic() >= next_purge:
                    forget_expired_contacts(rt, utcnow())
                    next_purge = time.monotonic() + PURGE_EVERY_SECONDS
                due = claim_due(rt, utcnow(), limit=SEND_WORKERS * 25)
                list(pool.map(partial(deliver_or_fail, rt), due))
            except Exception:
                log.exception("sender: cycle failed")
            if not due:
                stop.wait(poll_seconds)
