"""Who reacts to which message in the notifications service, and what each sends: the table at the bottom.

Messages may arrive out of order: an event snapshot older than the one kept changes nothing, and so does
a registration message older than the last one applied. Redeliveries are no-ops (the consumer's inbox),
and the unique constraint on notifications makes a duplicate impossible anyway."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import partial

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from gather_notifications import digest, privacy, rules, sender
from gather_notifications.store import UNIQUE_NOTIFICATION, Event, EventChange, Notification, Organizer, Recipient
from gather_shared import copies, db, logs, messages, organizers
from gather_shared.bus import Handler, Message
from gather_shared.config import Settings
from gather_shared.vocabulary import EventStatus, NotificationKind, NotificationStatus, RegistrationStatus

_SNAPSHOT = messages.EventSnapshot()  # made once: building a schema costs more than a dump

#: Kinds that say a registration ended, which an attendee of a cancelled event already heard of.
ENDED_BY_MESSAGE = frozenset({NotificationKind.SIGNUP_CANCELLED, NotificationKind.SIGNUP_REMOVED})

#: Changed fields of `event.updated.v1` that attendees are told about: time, place, online link.
ANNOUNCED_CHANGES = frozenset({"starts_at", "ends_at", "timezone", "format", "venue", "online_url"})


# --- the copies this service keeps ------------------------------------------------------------------


def keep_event(session: Session, message: Message) -> Event | None:
    """Store the snapshot if it is newer than the one kept; returns the event, or None for a stale one."""
    snap = message.data["event"]
    event = copies.to_overwrite(session, Event, snap["id"], snap["version"], id=snap["id"])
    if event is None:
        return None
    copies.copy_fields(event, snap, ("organizer_id", "version", "status", "starts_at", "ends_at"))
    event.status_reason = message.data.get("reason")
    event.snapshot = _SNAPSHOT.dump(snap)  # JSON-ready, for the templates
    return event


def keep_recipient(session: Session, message: Message) -> Recipient | None:
    """Store the registration's contact details; None when the message is older than the last one
    applied, or the contact was erased (a late message must not bring it back)."""
    data = message.data
    recipient = session.get(Recipient, data["signup_id"], with_for_update=True)
    if recipient is None:
        recipient = Recipient(signup_id=data["signup_id"])
        session.add(recipient)
    elif recipient.erased_at is not None or recipient.updated_at > message.time:
        return None
    recipient.event_id = data["event_id"]
    recipient.status = data["status"]
    recipient.display_name = data["display_name"]
    recipient.email = data["email"]
    recipient.phone = data["phone"]
    recipient.channels = data["channels"]
    recipient.timezone = data["timezone"]
    recipient.consent_reminders = data["consent_reminders"]
    recipient.token_version = data["token_version"]  # the sender signs the manage links with it
    recipient.removal_reason = data.get("reason")  # only signup.removed.v1 has one
    recipient.waitlist_position = data["waitlist_position"]
    recipient.updated_at = message.time
    return recipient


def registrations(session: Session, event_id: object, statuses: Iterable[str]) -> list[Recipient]:
    return list(
        session.scalars(
            sa.select(Recipient).where(
                Recipient.event_id == event_id, Recipient.status.in_(list(statuses)), Recipient.erased_at.is_(None)
            )
        )
    )


# --- what gets sent ---------------------------------------------------------------------------------


def add_notification(
    session: Session,
    recipient: Recipient,
    kind: str,
    channel: str,
    event_version: int,
    scheduled_for: datetime,
    reminder_offset: int = 0,
    link_request: int = 0,
    announcement: int = 0,
) -> None:
    """Plan one notification, unless this very one (registration, kind, version, channel, offset, link
    request, announcement) exists: the unique constraint decides, in the INSERT itself (no query first: one
    round trip, not two)."""
    values = {
        "id": uuid.uuid4(),
        "event_id": recipient.event_id,
        "signup_id": recipient.signup_id,
        "kind": kind,
        "event_version": event_version,
        "channel": channel,
        "reminder_offset": reminder_offset,
        "link_request": link_request,
        "announcement": announcement,
        "scheduled_for": scheduled_for,
        "cause_message_id": logs.message_id.get(),
        "correlation_id": logs.correlation_id.get(),
    }
    session.execute(_planning(session.get_bind().dialect.name), values)
    db.notify(session, sender.PLANNED_CHANNEL)  # wakes the sender: it sends now, or learns when to


@functools.cache
def _planning(dialect: str) -> sa.Insert:
    """add_notification's statement, built once: only its values change. On the table, not the mapped
    class, which spares each call the ORM's bulk-insert machinery (docs/benchmarks.md, "Measurements
    behind the code")."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = Notification.metadata.tables[Notification.__tablename__]
    return insert(table).on_conflict_do_nothing(index_elements=[table.c[name] for name in UNIQUE_NOTIFICATION])


def plan(
    session: Session,
    recipients: Iterable[Recipient],
    kind: str,
    event_version: int,
    at: datetime,
    announcement: int = 0,
) -> None:
    for recipient in recipients:
        for channel in recipient.channels:
            add_notification(session, recipient, kind, channel, event_version, at, announcement=announcement)


def replan_reminders(
    session: Session, event: Event, recipients: Iterable[Recipient], offsets: tuple[timedelta, ...], since: datetime
) -> None:
    """Make each registration's pending reminders match the event as it is now: one per channel and
    offset, for confirmed registrations that agreed to reminders, of a published event, due after
    `since` (when the registration or the change happened). A pending reminder that no longer fits is
    `cancelled`; one that still fits is kept as it is."""
    for recipient in recipients:
        wanted: dict[tuple[str, int], datetime] = {}
        if (
            event.status == EventStatus.PUBLISHED
            and recipient.status == RegistrationStatus.CONFIRMED
            and recipient.consent_reminders
            and recipient.erased_at is None
        ):
            due = rules.reminder_times(event.starts_at, offsets, since)
            wanted = {(channel, offset): at for channel in recipient.channels for offset, at in due.items()}
        pending = session.scalars(
            sa.select(Notification).where(
                Notification.signup_id == recipient.signup_id,
                Notification.kind == NotificationKind.REMINDER,
                Notification.status == NotificationStatus.PENDING,
            )
        )
        for reminder in pending:
            if wanted.get((reminder.channel, reminder.reminder_offset)) == reminder.scheduled_for:
                del wanted[(reminder.channel, reminder.reminder_offset)]
            else:
                reminder.status = NotificationStatus.CANCELLED
                reminder.last_error = "no longer due: the event or the registration changed"
        for (channel, offset), at in wanted.items():
            add_notification(session, recipient, NotificationKind.REMINDER, channel, event.version, at, offset)


# --- handlers ---------------------------------------------------------------------------------------


def on_event_published(offsets: tuple[timedelta, ...], session: Session, message: Message) -> None:
    event = keep_event(session, message)
    if event is not None:  # registrations that arrived before the event get their reminders now
        replan_reminders(
            session, event, registrations(session, event.id, [RegistrationStatus.CONFIRMED]), offsets, message.time
        )


def on_event_updated(offsets: tuple[timedelta, ...], session: Session, message: Message) -> None:
    event = keep_event(session, message)
    if event is None:
        return
    announced = set(message.data["changes"]) & ANNOUNCED_CHANGES
    if announced:
        # Kept for the notice, which says old → new (the copy of the event keeps only the newest).
        session.merge(EventChange(event_id=event.id, version=event.version, changes=message.data["changes"]))
        # The link goes only to confirmed attendees, so only they hear that it changed.
        statuses = (
            [RegistrationStatus.CONFIRMED]
            if announced == {"online_url"}
            else [RegistrationStatus.CONFIRMED, RegistrationStatus.WAITLISTED]
        )
        plan(
            session,
            registrations(session, event.id, statuses),
            NotificationKind.EVENT_CHANGED,
            event.version,
            message.time,
        )
    replan_reminders(
        session, event, registrations(session, event.id, [RegistrationStatus.CONFIRMED]), offsets, message.time
    )


def on_event_status(kind: str, offsets: tuple[timedelta, ...], session: Session, message: Message) -> None:
    """Postponed or cancelled: everyone with a seat or on the waitlist hears it; reminders stop."""
    event = keep_event(session, message)
    if event is None:
        return
    affected = registrations(session, event.id, [RegistrationStatus.CONFIRMED, RegistrationStatus.WAITLISTED])
    plan(session, affected, kind, event.version, message.time)
    replan_reminders(session, event, affected, offsets, message.time)


def on_registration(kind: str, offsets: tuple[timedelta, ...], session: Session, message: Message) -> None:
    # Counted for the organizer's digest whatever the order messages arrive in (each message once: the inbox).
    event = session.get(Event, message.data["event_id"])
    digest.count(session, kind, event, message.data["event_id"], message.time)
    recipient = keep_recipient(session, message)
    if recipient is None:
        return
    if event is None:
        # The event's snapshot is still on its way; the sender waits for it before rendering.
        plan(session, [recipient], kind, 0, message.time)
        return
    # When the event was cancelled its own message told them; the registrations it cancels need no second one.
    if not (kind in ENDED_BY_MESSAGE and event.status == EventStatus.CANCELLED):
        plan(session, [recipient], kind, event.version, message.time)
    replan_reminders(session, event, [recipient], offsets, message.time)


def on_link_requested(kind: str, session: Session, message: Message) -> None:
    """Someone asked for a place with this registration's contact: send it the link (`verify_contact` to a
    pending registration, `manage_link` to an active one), once per request, on each of its channels. The
    contact details are the registration's own (the signup service never sends a request's)."""
    recipient = keep_recipient(session, message)
    if recipient is None:
        return
    event = session.get(Event, recipient.event_id)
    version = event.version if event is not None else 0  # 0: the sender waits for the event's snapshot
    for channel in recipient.channels:
        add_notification(
            session, recipient, kind, channel, version, message.time, link_request=message.data["link_request"]
        )


def on_details_changed(offsets: tuple[timedelta, ...], session: Session, message: Message) -> None:
    """The attendee changed their name, channels, time zone or reminder consent: nothing to send, but
    later messages go by the new details, and reminders follow the new consent and channels."""
    recipient = keep_recipient(session, message)
    event = session.get(Event, recipient.event_id) if recipient is not None else None
    if recipient is not None and event is not None:
        replan_reminders(session, event, [recipient], offsets, message.time)


def erase_contact(session: Session, message: Message) -> None:
    data = message.data
    recipient = session.get(Recipient, data["signup_id"], with_for_update=True)
    if recipient is None:  # erased before its registration arrived: keep a tombstone so it never does
        recipient = Recipient(
            signup_id=data["signup_id"],
            event_id=data["event_id"],
            status=RegistrationStatus.CANCELLED,
            consent_reminders=False,
            updated_at=message.time,
        )
        session.add(recipient)
    privacy.forget(session, [recipient], message.time, "contact erased at the attendee's request")


def keep_organizer(session: Session, message: Message) -> None:
    """The organizer's key, and the address its digests and waitlist alerts go to (when the message has it)."""
    organizer = organizers.keep_key(Organizer, session, message)
    if organizer is not None and message.data["email"] is not None:
        organizer.email = message.data["email"]


def handlers(settings: Settings) -> dict[str, Handler]:
    """The table: message type → handler. Reminder offsets come from the settings."""
    offsets = rules.parse_offsets(settings.reminder_offsets)
    return {
        "organizer.key_issued.v1": keep_organizer,
        "organizer.key_revoked.v1": partial(organizers.revoke_key, Organizer),
        "organizer.member_key_issued.v1": partial(organizers.keep_member_key, Organizer),
        "organizer.member_removed.v1": partial(organizers.remove_member, Organizer),
        "event.published.v1": partial(on_event_published, offsets),
        "event.updated.v1": partial(on_event_updated, offsets),
        "event.postponed.v1": partial(on_event_status, NotificationKind.EVENT_POSTPONED, offsets),
        "event.cancelled.v1": partial(on_event_status, NotificationKind.EVENT_CANCELLED, offsets),
        "signup.confirmed.v1": partial(on_registration, NotificationKind.SIGNUP_CONFIRMED, offsets),
        "signup.waitlisted.v1": partial(on_registration, NotificationKind.WAITLISTED, offsets),
        "signup.promoted.v1": partial(on_registration, NotificationKind.PROMOTED, offsets),
        "signup.cancelled.v1": partial(on_registration, NotificationKind.SIGNUP_CANCELLED, offsets),
        "signup.removed.v1": partial(on_registration, NotificationKind.SIGNUP_REMOVED, offsets),
        "signup.updated.v1": partial(on_details_changed, offsets),
        "signup.verification_requested.v1": partial(on_link_requested, NotificationKind.VERIFY_CONTACT),
        "signup.manage_link_requested.v1": partial(on_link_requested, NotificationKind.MANAGE_LINK),
        "signup.erased.v1": erase_contact,
        "signup.availability_changed.v1": digest.alert_if_waitlist_reached,
    }
