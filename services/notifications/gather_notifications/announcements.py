"""Announcements: a short message from an event's organizer to its confirmed and/or waitlisted
registrants, on each one's channels. The rule: at most MAX_PER_DAY per event in any 24 hours, so that
registrants are not flooded (a group needs to say "we moved to room 2" or "bring a mat", not to chat).
How each is sent (quiet hours, the online link) is the sender's and the templates' business."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gather_notifications.handlers import plan, registrations
from gather_notifications.store import Announcement, Event
from gather_shared.errors import Refusal
from gather_shared.vocabulary import NotificationKind

MAX_PER_DAY = 3
WINDOW = timedelta(hours=24)


class TooManyAnnouncements(Refusal):
    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(
            f"An event may have at most {MAX_PER_DAY} announcements in 24 hours; "
            f"the next one can be sent in {math.ceil(retry_after_seconds / 60)} minutes."
        )
        self.retry_after_seconds = retry_after_seconds


def announce(
    session: Session,
    event: Event,
    organizer_id: uuid.UUID,
    subject: str,
    body: str,
    audience: Iterable[str],
    now: datetime,
) -> tuple[Announcement, int]:
    """Record the announcement and plan one notification per registrant (of `audience`'s statuses) and
    channel, due now; returns it and how many registrants it goes to. The event's row is locked first,
    so two announcements made at once are counted one after the other (on PostgreSQL; SQLite has one
    writer at a time anyway)."""
    session.execute(sa.select(Event.id).where(Event.id == event.id).with_for_update())
    recent = list(
        session.scalars(
            sa.select(Announcement.created_at)
            .where(Announcement.event_id == event.id, Announcement.created_at > now - WINDOW)
            .order_by(Announcement.created_at)
        )
    )
    if len(recent) >= MAX_PER_DAY:
        # The oldest of the window leaves it first: that is when the next one may go.
        wait = recent[-MAX_PER_DAY] + WINDOW - now
        raise TooManyAnnouncements(max(1, math.ceil(wait.total_seconds())))
    number = (
        session.scalar(sa.select(sa.func.max(Announcement.number)).where(Announcement.event_id == event.id)) or 0
    ) + 1
    audience = sorted(set(audience))
    announcement = Announcement(
        event_id=event.id,
        number=number,
        organizer_id=organizer_id,
        subject=subject,
        body=body,
        audience=audience,
        created_at=now,
    )
    session.add(announcement)
    recipients = registrations(session, event.id, audience)
    plan(session, recipients, NotificationKind.ANNOUNCEMENT, event.version, now, announcement=number)
    return announcement, sum(1 for recipient in recipients if recipient.channels)
