"""An attendee removed by the organizer (`signup.removed.v1`) is told kindly, with the organizer's reason,
on each of their channels; their reminders stop; the reason is forgotten with their contact."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import icalendar
import sqlalchemy as sa

from gather_notifications.store import Recipient

if TYPE_CHECKING:
    from conftest import Mailbox, World

REASON = "This circle is for carers; the Thursday group would suit you better."


def removed(world: World, registration: dict[str, Any]) -> None:
    later = world.now + timedelta(hours=1)
    world.send("signup.removed.v1", registration | {"status": "cancelled", "reason": REASON}, at=later)


def test_a_removed_attendee_is_told_kindly_with_the_reason_and_loses_their_reminders(
    world: World, mailbox: Mailbox
) -> None:
    world.publish(title="Carers' circle")
    registration = world.register(phone="+447700900123", channels=["email", "sms"], consent_reminders=True)
    removed(world, registration)

    assert {n.status for n in world.notifications(kind="reminder")} == {"cancelled"}
    assert sorted(n.channel for n in world.notifications(kind="signup_removed")) == ["email", "sms"]
    world.run_sender(world.now + timedelta(hours=2))  # after the SMS quiet hours, whatever the zone
    [mail] = [m for m in mailbox.to("robin@example.org") if m["Subject"] == "About your place at Carers' circle"]
    text = mail.get_body(("plain",)).get_content()
    assert "we're sorry" in text
    assert "no longer have a place" in text
    assert REASON in text
    # Their calendar lets the event go, as it would on a cancellation.
    [invite] = [part for part in mail.iter_attachments() if part.get_filename() == "invite.ics"]
    assert icalendar.Calendar.from_ical(invite.get_content())["method"] == "CANCEL"


def test_an_attendee_of_a_cancelled_event_hears_only_of_the_cancellation(world: World) -> None:
    world.publish()
    registration = world.register(consent_reminders=False)
    world.change_status("cancelled", reason="The hall flooded.")
    removed(world, registration)
    assert world.notifications(kind="signup_removed") == []


def test_the_reason_is_forgotten_with_the_contact(world: World) -> None:
    world.publish()
    registration = world.register(consent_reminders=False)
    removed(world, registration)
    world.send(
        "signup.erased.v1",
        {"signup_id": registration["signup_id"], "event_id": registration["event_id"]},
        at=world.now + timedelta(hours=2),
    )
    with world.rt.sessions() as session:
        assert session.scalar(sa.select(Recipient.removal_reason)) is None
