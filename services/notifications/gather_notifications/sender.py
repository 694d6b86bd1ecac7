"""The sender: claims due notifications, renders them, hands them to delivery, records the outcome."""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from gather_notifications import delivery
from gather_notifications.store import Event, Notification, Recipient
from gather_shared.db import transaction, utcnow
from gather_shared.service import Runtime

log = logging.getLogger(__name__)


def claim_due(rt: Runtime, now: datetime, limit: int = 50) -> list[uuid.UUID]:
    """Mark up to `limit` due notifications `sending` and return their ids. Several senders may run:
    on PostgreSQL each skips the rows another has locked."""
    with transaction(rt.sessions) as session:
        query = (
            sa.select(Notification)
            .where(Notification.status == "pending", Notification.scheduled_for <= now)
            .order_by(Notification.scheduled_for)
            .limit(limit)
        )
        if session.bind.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        claimed = session.scalars(query).all()
        for notification in claimed:
            notification.status = "sending"
            notification.attempts += 1
        return [n.id for n in claimed]


def deliver(rt: Runtime, notification_id: uuid.UUID) -> None:
    with rt.sessions() as session:
        notification = session.get(Notification, notification_id)
        recipient = session.get(Recipient, notification.signup_id)
        event = session.get(Event, notification.event_id)
        try:
            if notification.channel == "email":
                delivery.send_email(rt.settings, render_email(rt, notification, recipient, event))
            else:
                delivery.send_sms(rt.settings, recipient.phone, f"Gather: you're registered for "
                                  f"{event.snapshot['title']}. Manage: {recipient.manage_url}")
        except Exception as exc:
            log.exception("sender: %s %s failed", notification.kind, notification.id)
            status, error, sent_at = "failed", f"{type(exc).__name__}: {exc}", None
        else:
            status, error, sent_at = "sent", None, utcnow()
    with transaction(rt.sessions) as session:
        session.execute(sa.update(Notification).where(Notification.id == notification_id)
                        .values(status=status, last_error=error, sent_at=sent_at))
    log.info("sender: %s %s %s", notification.kind, notification.channel, status)


def render_email(rt: Runtime, notification: Notification, recipient: Recipient, event: Event) -> EmailMessage:
    snap = event.snapshot
    zone = ZoneInfo(recipient.timezone or snap["timezone"])
    starts = datetime.fromisoformat(snap["starts_at"]).astimezone(zone)
    message = EmailMessage()
    message["Subject"] = f"You're registered: {snap['title']}"
    message["From"] = "Gather <no-reply@gather.invalid>"
    message["To"] = recipient.email
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = make_msgid(idstring=str(notification.id), domain="gather.invalid")
    message.set_content(
        f"Hello {recipient.display_name},\n\n"
        f"you're registered for {snap['title']} on {starts:%A %d %B %Y at %H:%M} ({zone.key}).\n\n"
        f"To change or cancel your registration: {recipient.manage_url}\n"
    )
    return message


def run(rt: Runtime, stop: threading.Event, poll_seconds: float = 0.1) -> None:
    while not stop.is_set():
        try:
            due = claim_due(rt, utcnow())
            for notification_id in due:
                deliver(rt, notification_id)
        except Exception:
            log.exception("sender: cycle failed")
            due = []
        if not due:
            stop.wait(poll_seconds)
