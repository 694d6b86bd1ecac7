"""Who reacts to which message in the notifications service: the table at the bottom."""

from __future__ import annotations

from sqlalchemy.orm import Session

from gather_notifications.store import Event, Notification, Organizer, Recipient
from gather_shared import messages
from gather_shared.broker import Handler, Message


def keep_organizer(session: Session, message: Message) -> None:
    data = message.data
    session.merge(Organizer(id=data["organizer_id"], api_key_hash=data["api_key_hash"]))


def keep_event(session: Session, message: Message) -> None:
    snap = message.data["event"]
    event = session.get(Event, snap["id"], with_for_update=True)
    if event is not None and event.version >= snap["version"]:
        return  # an older message arriving late changes nothing
    if event is None:
        event = Event(id=snap["id"])
        session.add(event)
    event.organizer_id = snap["organizer_id"]
    event.version = snap["version"]
    event.status = snap["status"]
    event.starts_at = snap["starts_at"]
    event.snapshot = messages.EventSnapshot().dump(snap)  # JSON-ready, for the templates


def keep_recipient(session: Session, message: Message) -> Recipient:
    data = message.data
    recipient = session.get(Recipient, data["signup_id"]) or Recipient(signup_id=data["signup_id"])
    recipient.event_id = data["event_id"]
    recipient.status = data["status"]
    recipient.display_name = data["display_name"]
    recipient.email = data["email"]
    recipient.phone = data["phone"]
    recipient.channels = data["channels"]
    recipient.timezone = data["timezone"]
    recipient.consent_reminders = data["consent_reminders"]
    recipient.manage_url = data["manage_url"]
    session.add(recipient)
    return recipient


def confirm_signup(session: Session, message: Message) -> None:
    recipient = keep_recipient(session, message)
    event = session.get(Event, recipient.event_id)
    version = event.version if event is not None else 0
    for channel in recipient.channels:
        session.add(Notification(event_id=recipient.event_id, signup_id=recipient.signup_id,
                                 kind="signup_confirmed", channel=channel, event_version=version))


HANDLERS: dict[str, Handler] = {
    "organizer.key_issued.v1": keep_organizer,
    "event.published.v1": keep_event,
    "event.updated.v1": keep_event,
    "event.postponed.v1": keep_event,
    "event.cancelled.v1": keep_event,
    "signup.confirmed.v1": confirm_signup,
}
