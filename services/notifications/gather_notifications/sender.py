"""The sender, which is also the reminder scheduler: claims due notifications (reminders are simply
notifications due later), decides whether each may still go, renders it, hands it to delivery and
records the outcome. Delivery is at-least-once; docs/notifications.md says why and what that means."""

from __future__ import annotations

import logging
import threading
import traceback
import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import Message
from functools import partial

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gather_notifications import delivery, digest, privacy, render, rules
from gather_notifications.store import (
    Announcement,
    EmailOptOut,
    Event,
    EventChange,
    Notification,
    Recipient,
    SmsOptOut,
    contact_hash,
)
from gather_shared import metrics
from gather_shared.db import after_commit, is_postgresql, listen, utcnow, wait_for_bell
from gather_shared.logs import message_context
from gather_shared.service import Runtime
from gather_shared.vocabulary import Channel, EventStatus, NotificationKind, NotificationStatus, RegistrationStatus

log = logging.getLogger(__name__)

#: The PostgreSQL NOTIFY channel on which the consumer tells the sender that it planned notifications
#: (handlers.add_notification; gather_shared.db.notify / listen): an idle thread claims at once, and the
#: clock looks again for when the next one falls due.
PLANNED_CHANNEL = "gather_notifications_planned"
#: How long a claim lasts unless renewed: a notification still `sending` after this is claimed again. A
#: live sender renews the claims of what it holds every LEASE_RENEW_SECONDS (Leases), however long a
#: provider takes to answer, so only a dead sender's work is taken over: within LEASE of its death.
LEASE = timedelta(seconds=20)
LEASE_RENEW_SECONDS = 5.0
#: How long to wait for the event's snapshot when a registration message overtook it.
EVENT_WAIT = timedelta(seconds=5)
PURGE_EVERY_SECONDS = 60
#: Sending threads, each with one batch in flight; within the database pool (5 + 10 overflow).
SEND_WORKERS = 8
#: Notifications per batch (one thread, one SMTP connection, one transaction to record the outcomes).
BATCH_SIZE = 50
#: The sender's clock sleeps until the next notification falls due (a reminder, a retry, a claim that runs
#: out), until a NOTIFY on PLANNED_CHANNEL, or for LOOK_ANYWAY_SECONDS at most: nothing polls. On SQLite,
#: which has no NOTIFY, it looks every POLL_SECONDS; and while work is due it looks again after
#: POLL_SECONDS, waking one more idle thread if the work is still there.
LOOK_ANYWAY_SECONDS = 30.0
POLL_SECONDS = 0.5


def claim_due(rt: Runtime, now: datetime, limit: int = 50) -> list[uuid.UUID]:
    """Mark up to `limit` due notifications `sending` and return their ids. Several senders may run:
    on PostgreSQL each skips the rows another has locked (SQLite lets one writer at a time anyway)."""
    with rt.sessions.begin() as session:
        return [notification.id for notification, _, _ in _claim(session, now, limit)]


def _claim(session: Session, now: datetime, limit: int) -> Sequence[sa.Row[Notification, Recipient, Event]]:
    """Claim (see claim_due) up to `limit` due notifications, each with its recipient and event."""
    due = sa.or_(
        sa.and_(Notification.status == NotificationStatus.PENDING, Notification.scheduled_for <= now),
        sa.and_(Notification.status == NotificationStatus.SENDING, Notification.locked_until <= now),
    )
    query = _with_recipient_and_event().where(due).order_by(Notification.scheduled_for).limit(limit)
    if is_postgresql(session):
        query = query.with_for_update(skip_locked=True, of=Notification)
    claimed = session.execute(query).all()
    for notification, _, _ in claimed:
        notification.status = NotificationStatus.SENDING
        notification.locked_until = now + LEASE
    session.flush()  # before any later UPDATE of the same rows, which must come after it
    return claimed


def _with_recipient_and_event() -> sa.Select[Notification, Recipient, Event]:
    # Outer joins: a row's recipient or event may be None (_prepare says what then).
    return (
        sa.select(Notification, Recipient, Event)
        .outerjoin(Recipient, Recipient.signup_id == Notification.signup_id)
        .outerjoin(Event, Event.id == Notification.event_id)
    )


def contact(notification: Notification, recipient: Recipient | None) -> str | None:
    """Where the notification goes: the recipient's email address or phone number; None once erased."""
    if recipient is None or recipient.erased_at is not None:
        return None
    return recipient.email if notification.channel == Channel.EMAIL else recipient.phone


def verdict(
    rt: Runtime,
    notification: Notification,
    recipient: Recipient,
    address: str,
    event: Event,
    now: datetime,
    opted_out: set[str],
) -> tuple[str, str] | datetime | None:
    """Whether the notification may go now to `address` (its `contact`): None (yes), a time to wait
    until, or (final status, reason). `opted_out`: the hashes of the batch's addresses and numbers that
    opted out (email_opt_outs for an email, sms_opt_outs for an SMS), loaded once for the batch."""
    secret = rt.settings.secret_key
    if notification.kind in rules.LINK_KINDS:
        if notification.kind == NotificationKind.VERIFY_CONTACT and recipient.status != RegistrationStatus.PENDING:
            return NotificationStatus.CANCELLED, "no longer due: the contact is verified already"
        return None
    if notification.kind == NotificationKind.REMINDER:
        if event.status != EventStatus.PUBLISHED or recipient.status != RegistrationStatus.CONFIRMED:
            return NotificationStatus.CANCELLED, "no longer due: the event or the registration changed"
        if now >= event.starts_at:
            return NotificationStatus.SUPPRESSED, "the event had already started"
    if notification.channel == Channel.EMAIL:
        if notification.kind in rules.NON_TRANSACTIONAL and contact_hash(secret, address) in opted_out:
            return NotificationStatus.SUPPRESSED, "opted out: the address unsubscribed"
        return None
    if contact_hash(secret, address) in opted_out:
        return NotificationStatus.SUPPRESSED, "opted out: the number replied STOP"
    window = rules.parse_quiet_hours(rt.settings.sms_quiet_hours)
    quiet_until = rules.quiet_hours_end(now, render.local_zone(recipient, event), window)
    if quiet_until is None:
        return None
    if event.starts_at < quiet_until:
        # News about the event matters most right before it; anything else would only arrive too late.
        if notification.kind in rules.URGENT_BEFORE_START:
            return None
        return NotificationStatus.SUPPRESSED, "quiet hours: they last past the event's start"
    return quiet_until


class Leases:
    """The notifications a sender process holds (claimed, not yet recorded), whose claims it renews.

    The sending threads `hold` a batch once claimed and `release` each notification once its outcome is
    committed; one thread `renew`s the claims of all those held, apart from the sending threads, so that a
    provider slow to answer never lets a claim run out while its sender lives."""

    def __init__(self) -> None:
        self._held: set[uuid.UUID] = set()
        self._lock = threading.Lock()

    def hold(self, ids: list[uuid.UUID]) -> None:
        with self._lock:
            self._held.update(ids)

    def release(self, ids: list[uuid.UUID]) -> None:
        with self._lock:
            self._held.difference_update(ids)

    def renew(self, rt: Runtime) -> None:
        with self._lock:
            held = list(self._held)
        if not held:
            return
        with rt.sessions.begin() as session:
            session.execute(
                sa.update(Notification)
                # Only what is still `sending`: one just recorded (and released meanwhile) stays as recorded.
                .where(Notification.id.in_(held), Notification.status == NotificationStatus.SENDING)
                .values(locked_until=utcnow() + LEASE)
            )


@dataclass
class _Send:
    """A notification cleared to go, rendered, waiting for its provider call."""

    notification: Notification
    content: Message | str
    address: str  # the email address or phone number it goes to
    provider_id: str | None = None
    error: delivery.DeliveryError | None = None


def _context(notification: Notification) -> AbstractContextManager[None]:
    """Log lines about a notification carry the message and request that planned it."""
    return message_context(notification.cause_message_id or "-", notification.correlation_id)


def send_due(rt: Runtime, now: datetime, limit: int, leases: Leases | None = None) -> int:
    """Claim up to `limit` due notifications and send them; returns how many were claimed. One
    transaction claims the batch (with recipients and events: one query; opt-outs: one more), settles
    those that do not go and renders the others; the provider calls follow, outside any transaction (no
    lock is held while a provider answers), the emails over one SMTP connection, and each outcome is
    committed as soon as the provider answered. A bug with one notification (say, in a template) fails
    that notification, not the batch. At-least-once: a sender that dies leaves what it held `sending`;
    another claims it once its claim, no longer renewed (`leases`), runs out: only the one notification
    whose provider call was under way may then be sent twice."""
    with rt.sessions.begin() as session:
        rows = _claim(session, now, limit)
        sends = _prepare_batch(rt, session, rows, now)
    leases = leases or Leases()
    leases.hold([send.notification.id for send in sends])
    try:
        _send_and_record(rt, sends, now, leases)
    finally:
        # After a failure (the database gone, say), what is left is no longer renewed: it is claimed
        # again when its claim runs out.
        leases.release([send.notification.id for send in sends])
    return len(rows)


def _prepare_batch(
    rt: Runtime, session: Session, rows: Sequence[sa.Row[Notification, Recipient, Event]], now: datetime
) -> list[_Send]:
    """Settle each claimed notification that does not go, render the others (their attempt is counted)."""
    sends: list[_Send] = []
    opted_out = _opt_outs(session, rt.settings.secret_key, [(n, r) for n, r, _ in rows])
    for notification, recipient, event in rows:
        with _context(notification):
            try:
                send = _prepare(rt, session, notification, recipient, event, now, opted_out)
            except Exception as exc:  # noqa: BLE001 - one notification must not stop the batch; logged below
                # Whatever failed may quote the attendee (a template, an encoder): redacted, like a provider's
                # refusal (_failed), in the log and in the notification log organizers read.
                personal = [recipient.email, recipient.phone, recipient.display_name] if recipient else []
                trace = privacy.without_contact(traceback.format_exc(), personal)
                log.error("sender: notification %s could not be handled\n%s", notification.id, trace)
                metrics.NOTIFICATIONS.labels(notification.kind, notification.channel, NotificationStatus.FAILED).inc()
                _update(
                    session,
                    notification.id,
                    status=NotificationStatus.FAILED,
                    last_error=privacy.without_contact(f"{type(exc).__name__}: {exc}", personal)[:1000],
                )
                continue
            if send is not None:
                notification.attempts += 1  # committed before the call: a crash mid-send still counts
                sends.append(send)
    return sends


def _send_and_record(rt: Runtime, sends: list[_Send], now: datetime, leases: Leases | None = None) -> None:
    """Send each of `sends` and commit its outcome before the next one goes. An attendee erased while the
    batch is on its way is not handed to the provider: each outcome's transaction also looks for erasures
    among the sends still to go."""
    if not sends:
        return
    erased: set[uuid.UUID] = set()
    with delivery.Mailer(rt.settings) as mailer, delivery.SmsSender(rt.settings) as texter:
        for i, send in enumerate(sends):
            if send.notification.signup_id in erased:
                _record_erased(rt, send)
            else:
                _send(mailer, texter, send)
                erased |= _record(rt, send, now, [later.notification.signup_id for later in sends[i + 1 :]])
            if leases is not None:
                leases.release([send.notification.id])


def _send(mailer: delivery.Mailer, texter: delivery.SmsSender, send: _Send) -> None:
    """Hand one message to its provider; what went wrong, if anything, in `send.error`."""
    try:
        if isinstance(send.content, Message):
            mailer.send(send.content, str(send.notification.id))
        else:
            send.provider_id = texter.send(send.address, send.content, str(send.notification.id))
    except delivery.DeliveryError as exc:
        send.error = exc
    except Exception as exc:  # noqa: BLE001 - a bug (say, an unexpected answer) fails this one, not the batch
        trace = privacy.without_contact(traceback.format_exc(), [send.address])  # an answer may quote it
        with _context(send.notification):
            log.error("sender: notification %s could not be sent\n%s", send.notification.id, trace)
        send.error = delivery.DeliveryError(f"{type(exc).__name__}: {exc}", transient=False)


def _record_erased(rt: Runtime, send: _Send) -> None:
    """An attendee erased after their message was claimed and rendered: it never goes, and its file (if
    the embedded default wrote one) goes once this commits."""
    with rt.sessions.begin() as session, _context(send.notification):
        _settle(session, send.notification, None, (NotificationStatus.CANCELLED, "no contact: erased"))
        _discard_after_commit(session, [send.notification.id])


def _record(rt: Runtime, send: _Send, now: datetime, later: list[uuid.UUID]) -> set[uuid.UUID]:
    """Commit what became of one provider call: a crash after it sends nothing of it again. (One small
    transaction per message, one statement when it was sent: far less than the provider call.) Returns
    those of the registrations `later` (the batch's sends still to go) that were erased meanwhile."""
    notification = send.notification
    # An attendee erased while their message was on its way: the erasure deleted the files it knew of
    # (after its commit), perhaps before this one was written; so this file goes too.
    erased_at = sa.select(Recipient.erased_at).where(Recipient.signup_id == notification.signup_id).scalar_subquery()
    with rt.sessions.begin() as session, _context(notification):
        if send.error is not None:
            _failed(session, send, send.error, now)
            erased = session.scalar(sa.select(erased_at))
        else:
            erased = session.scalar(
                sa.update(Notification)
                .where(Notification.id == notification.id)
                .values(
                    sent_at=now,
                    last_error=None,
                    locked_until=None,
                    # the SMS provider's id for its delivery receipts (None for an email)
                    provider_id=send.provider_id,
                    # A delivery receipt may have overtaken this update; it must not be turned back into `sent`.
                    status=sa.case(
                        (Notification.status == NotificationStatus.SENDING, NotificationStatus.SENT),
                        else_=Notification.status,
                    ),
                )
                .returning(erased_at)
            )
            log.info("sender: %s %s sent", notification.kind, notification.channel)
            metrics.NOTIFICATIONS.labels(notification.kind, notification.channel, NotificationStatus.SENT).inc()
            if notification.kind == NotificationKind.REMINDER and notification.scheduled_for is not None:
                lateness = (now - notification.scheduled_for).total_seconds()
                metrics.REMINDER_LATENESS_SECONDS.observe(max(lateness, 0))
        if erased is not None:
            _discard_after_commit(session, [notification.id])
        if not later:
            return set()
        return set(
            session.scalars(
                sa.select(Recipient.signup_id).where(Recipient.signup_id.in_(later), Recipient.erased_at.is_not(None))
            )
        )


def _discard_after_commit(session: Session, notification_ids: list[uuid.UUID]) -> None:
    """Delete the outbox files of these notifications once the transaction commits (delivery.discard)."""
    after_commit(
        session, f"outbox files of notification {notification_ids[0]}", partial(delivery.discard, notification_ids)
    )


def _opt_outs(session: Session, secret: str, batch: list[tuple[Notification, Recipient | None]]) -> set[str]:
    """The hashes of the batch's email addresses and phone numbers that opted out (one query per table)."""
    emails = {
        contact_hash(secret, r.email) for n, r in batch if r is not None and r.email and n.channel == Channel.EMAIL
    }
    phones = {
        contact_hash(secret, r.phone) for n, r in batch if r is not None and r.phone and n.channel != Channel.EMAIL
    }
    found: set[str] = set()
    if emails:
        found.update(session.scalars(sa.select(EmailOptOut.address_hash).where(EmailOptOut.address_hash.in_(emails))))
    if phones:
        found.update(session.scalars(sa.select(SmsOptOut.number_hash).where(SmsOptOut.number_hash.in_(phones))))
    return found


def _prepare(
    rt: Runtime,
    session: Session,
    notification: Notification,
    recipient: Recipient | None,
    event: Event | None,
    now: datetime,
    opted_out: set[str],
) -> _Send | None:
    """Settle a notification that does not go now (returns None), or render the one that does."""
    if event is None:  # the registration overtook the event's snapshot; wait for it
        _update(session, notification.id, status=NotificationStatus.PENDING, scheduled_for=now + EVENT_WAIT)
        return None
    address = contact(notification, recipient)
    if recipient is None or address is None:
        _settle(session, notification, recipient, (NotificationStatus.CANCELLED, "no contact: erased"))
        return None
    decision = verdict(rt, notification, recipient, address, event, now, opted_out)
    if decision is not None:
        _settle(session, notification, recipient, decision)
        return None
    details = _details(session, notification)
    if notification.channel == Channel.EMAIL:
        message = render.email(rt.settings, notification, recipient, address, event, now, details)
        return _Send(notification, message, address)
    return _Send(notification, render.sms(rt.settings, notification, recipient, event, details), address)


def _details(session: Session, notification: Notification) -> render.Details:
    """What the notification says beyond its event and recipient: the announcement it carries, or what the
    event update it reports changed (one query, for those two kinds only)."""
    if notification.kind == NotificationKind.ANNOUNCEMENT:
        announcement = session.scalar(
            sa.select(Announcement).filter_by(event_id=notification.event_id, number=notification.announcement)
        )
        return render.Details(announcement=announcement)
    if notification.kind == NotificationKind.EVENT_CHANGED:
        change = session.get(EventChange, (notification.event_id, notification.event_version))
        return render.Details(changes=change.changes if change is not None else None)
    return render.Details()


def _settle(
    session: Session, notification: Notification, recipient: Recipient | None, decision: tuple[str, str] | datetime
) -> None:
    """Record what becomes of a notification that does not go now: a time to wait until (quiet hours), or
    its final status and why."""
    if isinstance(decision, datetime):
        _update(session, notification.id, status=NotificationStatus.PENDING, scheduled_for=decision)
        log.info("sender: %s sms waits for the end of quiet hours at %s", notification.kind, decision)
        return
    _update(session, notification.id, status=decision[0], last_error=decision[1])
    log.info("sender: %s %s %s (%s)", notification.kind, notification.channel, *decision)
    metrics.NOTIFICATIONS.labels(notification.kind, notification.channel, decision[0]).inc()
    if recipient is not None and recipient.erased_at is not None:
        # Claimed again after a sender died mid-delivery, perhaps after writing a file the erasure missed.
        _discard_after_commit(session, [notification.id])


def _failed(session: Session, send: _Send, exc: delivery.DeliveryError, now: datetime) -> None:
    notification = send.notification
    # A server's refusal often quotes the address: it is kept and logged without it.
    error, attempts = privacy.without_contact(str(exc), [send.address])[:1000], notification.attempts
    if exc.transient and attempts < rules.MAX_ATTEMPTS:
        retry_at = now + rules.retry_delay(attempts)
        _update(session, notification.id, status=NotificationStatus.PENDING, scheduled_for=retry_at, last_error=error)
        metrics.NOTIFICATIONS.labels(notification.kind, notification.channel, "retrying").inc()
        log.warning(
            "sender: %s %s attempt %d failed, retry at %s: %s",
            notification.kind,
            notification.channel,
            attempts,
            retry_at,
            error,
        )
    else:
        _update(session, notification.id, status=NotificationStatus.FAILED, last_error=error)
        metrics.NOTIFICATIONS.labels(notification.kind, notification.channel, NotificationStatus.FAILED).inc()
        log.error(
            "sender: %s %s failed after %d attempt(s): %s", notification.kind, notification.channel, attempts, error
        )


def _update(session: Session, notification_id: uuid.UUID, **values: object) -> None:
    """Settle a notification this sender claimed: only while it is still `sending`, so that one whose claim
    ran out, and which another sender has sent since, is never turned back."""
    session.execute(
        sa.update(Notification)
        .where(Notification.id == notification_id, Notification.status == NotificationStatus.SENDING)
        .values(locked_until=None, **values)
    )


def run(rt: Runtime, stop: threading.Event, look_every: float | None = None) -> None:
    """SEND_WORKERS threads, each claiming and delivering its own batches (claim_due is safe to run
    concurrently): most of a delivery is waiting for the SMTP server or the SMS API, so a fan-out of
    reminders goes out in parallel, and a thread that is free picks up new work without waiting for the
    others' batches to finish. Idle threads sleep until they are woken: by the consumer's NOTIFY when it
    planned a notification (PostgreSQL), by the clock thread when one falls due, or by a thread whose batch
    was full (more is due: it wakes another). One more thread renews the claims of what the threads hold
    (Leases). This thread erases expired contacts and sends the organizers' digests and waitlist alerts
    (gather_notifications.digest) every PURGE_EVERY_SECONDS. `look_every`: the clock's longest sleep
    (default: LOOK_ANYWAY_SECONDS on PostgreSQL, POLL_SECONDS on SQLite)."""
    rules.parse_quiet_hours(rt.settings.sms_quiet_hours)  # a bad setting stops the sender now, not each SMS
    if look_every is None:
        look_every = LOOK_ANYWAY_SECONDS if is_postgresql(rt.engine) else POLL_SECONDS
    doorbell = threading.Condition()  # the idle sending threads wait on it
    clock = threading.Event()  # set: the clock looks again for when the next notification falls due
    leases = Leases()

    def planned() -> None:
        clock.set()
        _wake_one(doorbell)

    threads = [
        threading.Thread(target=listen, args=(rt.engine, PLANNED_CHANNEL, planned, stop), name="listener"),
        threading.Thread(target=_clock_loop, args=(rt, stop, doorbell, clock, look_every), name="clock"),
        threading.Thread(target=_renew_loop, args=(rt, stop, leases), name="leases"),
        *(
            threading.Thread(target=_send_loop, args=(rt, stop, doorbell, clock, leases), name=f"sender-{i}")
            for i in range(SEND_WORKERS)
        ),
    ]
    for thread in threads:
        thread.start()
    try:
        while not stop.is_set():
            try:
                privacy.forget_expired_contacts(rt, utcnow())
            except Exception:
                log.exception("sender: erasing expired contacts failed")
            try:
                digest.send_due(rt, utcnow())
            except Exception:
                log.exception("sender: sending the organizers' digests failed")
            stop.wait(PURGE_EVERY_SECONDS)
    finally:
        stop.set()
        with doorbell:
            doorbell.notify_all()
        for thread in threads:
            thread.join()


def _wake_one(doorbell: threading.Condition) -> None:
    with doorbell:
        doorbell.notify()  # one thread: waking them all would have seven claim nothing


def next_due(rt: Runtime) -> datetime | None:
    """When the sender next has work: the earliest pending notification's time, or the earliest claim
    that runs out (a sender died holding it); None when there is nothing to send at all."""
    with rt.sessions() as session:
        times = [
            session.scalar(sa.select(sa.func.min(column)).where(Notification.status == status))
            for column, status in (
                (Notification.scheduled_for, NotificationStatus.PENDING),
                (Notification.locked_until, NotificationStatus.SENDING),
            )
        ]
    return min((t for t in times if t is not None), default=None)


def _clock_loop(
    rt: Runtime, stop: threading.Event, doorbell: threading.Condition, clock: threading.Event, look_every: float
) -> None:
    while not stop.is_set():
        clock.clear()  # before looking: news from now on makes it look again
        try:
            due_at = next_due(rt)
        except Exception:
            log.exception("sender: looking for the next notification due failed")
            due_at = None
        now = utcnow()
        if due_at is not None and due_at <= now:
            _wake_one(doorbell)
            wait = min(look_every, POLL_SECONDS)
        else:
            wait = look_every if due_at is None else min(look_every, (due_at - now).total_seconds())
        wait_for_bell(clock, stop, wait)


def _renew_loop(rt: Runtime, stop: threading.Event, leases: Leases) -> None:
    while not stop.wait(LEASE_RENEW_SECONDS):
        try:
            leases.renew(rt)
        except Exception:
            # Tried again at the next beat; a claim runs out only after several missed ones.
            log.exception("sender: renewing claims failed")


def _send_loop(
    rt: Runtime, stop: threading.Event, doorbell: threading.Condition, clock: threading.Event, leases: Leases
) -> None:
    worked = False
    while not stop.is_set():
        claimed = 0
        try:
            claimed = send_due(rt, utcnow(), limit=BATCH_SIZE, leases=leases)
        except Exception:
            # What was claimed and not recorded stays `sending`, no longer renewed: it is claimed again
            # when its claim runs out (at-least-once).
            log.exception("sender: cycle failed")
        if claimed >= BATCH_SIZE:
            _wake_one(doorbell)  # a full batch: more is due, and an idle thread can share it
        if claimed:
            worked = True
            continue
        if worked:
            # What this thread sent may have been rescheduled (a retry, quiet hours): the clock looks again.
            worked = False
            clock.set()
        with doorbell:
            # Looked at under the doorbell's lock: run() sets `stop` before it rings for everyone, so a thread
            # that was busy at that ring sees `stop` here instead of sleeping through it. The timeout only
            # covers a ring that came while no thread waited: the clock rings again while work is due.
            if not stop.is_set():
                doorbell.wait(LOOK_ANYWAY_SECONDS)
