"""Calendar invitations (RFC 5546 iTIP over email, RFC 6047) attached to the emails that change what the
attendee's calendar should hold: confirmation and promotion add the event (METHOD:REQUEST), a change or
postponement updates it (REQUEST again, with a higher SEQUENCE: the event's version), and a cancellation
of the event or of the registration, or the organizer removing it, takes it out (METHOD:CANCEL).

The UID is the registration's, the same in every message about it, so each one updates the entry the
first made; and not the public calendar's (`{event id}@gather.events`): this entry is the attendee's
own, with the online link for a confirmed attendee, which a public calendar never carries. A new
registration after a cancellation is a new entry. Never a manage link: a calendar is often shared."""

from __future__ import annotations

from datetime import datetime
from email.utils import parseaddr
from types import SimpleNamespace
from typing import cast

import icalendar

from gather_notifications import i18n
from gather_notifications.store import Event, Recipient
from gather_shared import calendar
from gather_shared.vocabulary import EventStatus, NotificationKind, RegistrationStatus

#: The kinds whose email carries an invitation, and its method. A REQUEST only to a confirmed attendee:
#: the waitlisted have no place to put in their calendar yet.
METHODS = {
    NotificationKind.SIGNUP_CONFIRMED: "REQUEST",
    NotificationKind.PROMOTED: "REQUEST",
    NotificationKind.EVENT_CHANGED: "REQUEST",
    NotificationKind.EVENT_POSTPONED: "REQUEST",
    NotificationKind.EVENT_CANCELLED: "CANCEL",
    NotificationKind.SIGNUP_CANCELLED: "CANCEL",
    NotificationKind.SIGNUP_REMOVED: "CANCEL",
}


def uid(recipient: Recipient) -> str:
    return f"registration-{recipient.signup_id}@{calendar.UID_DOMAIN}"


def invitation(
    kind: str, recipient: Recipient, address: str, event: Event, email_from: str, now: datetime, lang: str
) -> tuple[str, bytes] | None:
    """(method, the .ics) for an email of `kind` to `recipient` at `address`; None when it carries none."""
    method = METHODS.get(NotificationKind(kind))
    if method is None or (method == "REQUEST" and recipient.status != RegistrationStatus.CONFIRMED):
        return None
    snap = event.snapshot
    online_url = snap["online_url"] if recipient.status == RegistrationStatus.CONFIRMED else None
    join = online_url and i18n.translations(lang).gettext("Join online: %(online_url)s") % {"online_url": online_url}
    description = "\n\n".join(part for part in (snap["summary"], join) if part)
    status = EventStatus.CANCELLED if method == "CANCEL" else snap["status"]
    # The event as a calendar entry wants it: the snapshot's fields, typed as gather_shared.calendar reads them.
    item = calendar.vevent(
        cast(
            calendar.CalendarEvent,
            SimpleNamespace(
                id=event.id,
                version=snap["version"],
                updated_at=now,
                starts_at=datetime.fromisoformat(snap["starts_at"]),
                ends_at=datetime.fromisoformat(snap["ends_at"]),
                timezone=snap["timezone"],
                title=snap["title"],
                summary=description or None,
                description=None,
                venue=snap.get("venue"),
                status=status,
            ),
        )
    )
    item.pop("uid")
    item.add("uid", uid(recipient))
    if online_url:
        item.add("url", online_url)
    # iTIP wants the organizer and the attendee: the address emails come from, named as the organizer,
    # and the recipient, who has a place already (nothing to answer).
    organizer = icalendar.vCalAddress(f"mailto:{parseaddr(email_from)[1]}")
    organizer.params["cn"] = icalendar.vText(snap["organizer_name"])
    item.add("organizer", organizer)
    attendee = icalendar.vCalAddress(f"mailto:{address}")
    attendee.params.update({"role": "REQ-PARTICIPANT", "partstat": "ACCEPTED", "rsvp": "FALSE"})
    item.add("attendee", attendee)
    return method, calendar.ics([item], method=method)
