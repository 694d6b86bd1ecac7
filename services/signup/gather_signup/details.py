"""What an attendee may change of their registration with its manage token (PATCH /v1/signups/{id}): the
name, the channels, the time zone and the consent to reminders, never the contact details (those were
verified: a new address is a new registration). The rules:

- a cancelled or erased registration is not changed (there is no one left to send anything to);
- a channel needs its contact (email needs the email address, sms the phone number);
- every change is announced (`signup.updated.v1`) so that the notifications service sends to the new
  channels and plans or drops reminders by the new consent."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from gather_shared.errors import Refusal
from gather_shared.vocabulary import ACTIVE_REGISTRATION_STATUSES, Channel
from gather_signup import announce
from gather_signup.store import Signup


class NotChangeable(Refusal):
    """The registration is cancelled (or its contact details erased): nothing to change."""


class ChannelWithoutContact(Refusal):
    """A channel was chosen whose contact the registration does not have."""


def change(session: Session, signup_id: Any, changes: dict[str, Any], now: datetime) -> Signup:
    """Apply `changes` (display_name, channels, timezone, consent_reminders; each optional) to the
    registration, locked for the time of the change."""
    signup = session.get_one(Signup, signup_id, with_for_update=True, populate_existing=True)
    if signup.status not in ACTIVE_REGISTRATION_STATUSES or signup.erased_at is not None:
        raise NotChangeable("The registration is cancelled: there is nothing to change.")
    if "channels" in changes:
        contacts = {Channel.EMAIL: signup.email, Channel.SMS: signup.phone}
        missing = [channel for channel in changes["channels"] if not contacts.get(channel)]
        if missing:
            raise ChannelWithoutContact(f"No contact for the channel(s): {', '.join(sorted(missing))}.")
        changes = changes | {"channels": sorted(set(changes["channels"]))}
    for name, value in changes.items():
        setattr(signup, name, value)
    signup.updated_at = now
    session.flush()
    announce.updated(session, signup)
    return signup
