"""Replies to an attendee's text, in words a person understands. `STOP` and the other carrier opt-out words
opt the number out of every SMS, `START` back in (api.sms_inbound). Two answer back:

- `CANCEL` is a carrier opt-out word, so it opts out like `STOP`; but a person who writes it may mean
  their place, so the answer says the place is kept and how to cancel it.
- `HELP` answers who sends these texts: the organizer of the event the number is registered for, and
  the event's page, where asking for a place again with the same number sends the private link anew.
  Never the private link itself: whoever can text from a number is not always who owns the registration.

The registration a reply is about is the number's next active one (confirmed or waitlisted, of an event
not yet over); with none, the answer names no event."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gather_notifications import i18n
from gather_notifications.store import Event, Recipient
from gather_shared.vocabulary import ACTIVE_REGISTRATION_STATUSES

HELP_WORDS = frozenset({"HELP", "INFO"})
CANCEL_WORD = "CANCEL"


def next_registration(session: Session, number: str, now: datetime) -> tuple[Recipient, Event] | None:
    """The number's active registration whose event comes next (one that has not ended)."""
    row = session.execute(
        sa.select(Recipient, Event)
        .join(Event, Event.id == Recipient.event_id)
        .where(
            Recipient.phone == number,
            Recipient.erased_at.is_(None),
            Recipient.status.in_(list(ACTIVE_REGISTRATION_STATUSES)),
            Event.ends_at > now,
        )
        .order_by(Event.starts_at)
        .limit(1)
    ).first()
    return None if row is None else (row[0], row[1])


def answer(session: Session, word: str, number: str, public_url: str, now: datetime) -> str | None:
    """What to text back to `word` (already upper-cased and stripped) from `number`; None for no answer."""
    if word not in HELP_WORDS and word != CANCEL_WORD:
        return None
    found = next_registration(session, number, now)
    event = found[1] if found is not None else None
    lang = i18n.language(event.snapshot.get("language") if event is not None else None)
    gettext = i18n.gsm7_gettext(lang)
    if event is None:
        if word == CANCEL_WORD:
            return gettext("Gather: you will get no more texts from us. Reply START to get them again.")
        return gettext(
            "Gather: texts about events you registered for. Reply STOP to stop them, START to get them again."
        )
    words = {
        "title": event.snapshot["title"],
        "organizer": event.snapshot["organizer_name"],
        "page": f"{public_url}/events/{event.id}",
    }
    if word == CANCEL_WORD:
        return (
            gettext(
                "Gather: you will get no more texts from us. Your place at %(title)s is kept: to cancel it, use "
                "the link in our messages, or ask for a place again at %(page)s and we will send it. "
                "Reply START to get texts again."
            )
            % words
        )
    return (
        gettext(
            "Gather: texts about %(title)s, run by %(organizer)s. To see, change or cancel your place, use the "
            "link in our messages, or ask for a place again at %(page)s and we will send it. Reply STOP to stop "
            "texts."
        )
        % words
    )
