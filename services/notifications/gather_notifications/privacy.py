"""Forgetting attendees in the notifications service: when the signup service says a registration's
contact was erased (`signup.erased.v1`), and when its event's retention period is over. Every copy this
service made goes (docs/privacy.md lists them): the recipient's contact details, what was still waiting
to be sent, any delivery error that quoted them, the .eml files and sms.jsonl lines of the embedded
default, and SQLite's write-ahead log. The recipient row stays, empty, so that a late message about the
registration cannot bring the contact back."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import partial

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gather_notifications import delivery
from gather_notifications.store import Event, Notification, Recipient
from gather_shared import db
from gather_shared.service import Runtime
from gather_shared.vocabulary import EventStatus, NotificationStatus

#: What stands in a text for a contact detail taken out of it.
REDACTED = "[contact]"


def without_contact(text: str, contacts: Iterable[str | None]) -> str:
    """`text` (say, an SMTP server's refusal, which often quotes the address, or a traceback) with every one
    of `contacts` (addresses, numbers, names) replaced by REDACTED, whatever its case; a phone number also
    without its leading +. A form of one or two letters is left: it names no one, and replacing it
    everywhere would shred the text."""
    for contact in contacts:
        # The longer form first: "+44…" whole, then what is left of a bare "44…" (a set's order is the hash's).
        for form in sorted({contact, contact.lstrip("+")}, key=len, reverse=True) if contact else ():
            if len(form) > 2:
                text = re.sub(re.escape(form), REDACTED, text, flags=re.IGNORECASE)
    return text


def forget(session: Session, recipients: Iterable[Recipient], now: datetime, reason: str) -> None:
    """Erase how to reach these attendees, everywhere this service put it. The files go once the
    transaction commits (a rollback keeps them, with the rows that name them)."""
    recipients = list(recipients)
    if not recipients:
        return
    notification_ids = []
    for recipient in recipients:
        contacts = (recipient.email, recipient.phone)  # what a delivery error can quote
        recipient.forget_contact()
        recipient.removal_reason = None
        recipient.erased_at = now
        for notification in session.scalars(
            sa.select(Notification).where(Notification.signup_id == recipient.signup_id)
        ):
            notification_ids.append(notification.id)
            if notification.status == NotificationStatus.PENDING:
                notification.status, notification.last_error = NotificationStatus.CANCELLED, reason
            elif notification.last_error:
                notification.last_error = without_contact(notification.last_error, contacts)
    if notification_ids:
        # After the commit: a sender that wrote a file meanwhile sees the erasure when it records the
        # outcome, and deletes that file itself (sender._send_and_record).
        key = f"outbox files of notification {notification_ids[0]}"
        db.after_commit(session, key, partial(delivery.discard, notification_ids))
    db.checkpoint_after_commit(session)


def forget_expired_contacts(rt: Runtime, now: datetime) -> int:
    """Erase the contact details of attendees of events that ended more than GATHER_RETENTION_DAYS ago,
    judged from the event as it is now: a postponed event has not ended (its old date is no longer its
    date), an event moved later is judged by its new end. Returns how many were erased."""
    cutoff = now - timedelta(days=rt.settings.retention_days)
    with rt.sessions.begin() as session:
        expired = session.scalars(
            sa.select(Recipient)
            .join(Event, Event.id == Recipient.event_id)
            .where(Event.ends_at < cutoff, Event.status != EventStatus.POSTPONED, Recipient.erased_at.is_(None))
            .with_for_update(of=Recipient)
        ).all()
        forget(session, expired, now, "contact erased: retention period over")
        return len(expired)
