"""Calendar invitations: the confirmation, change and cancellation emails carry an .ics (read here with
the icalendar library from the .eml files the file outbox writes) that keeps the attendee's calendar
entry in step: one UID per registration, SEQUENCE the event's version, METHOD:CANCEL when it is off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import TYPE_CHECKING, Any

import icalendar

if TYPE_CHECKING:
    from conftest import World

STARTS = datetime(2026, 6, 17, 17, 0, tzinfo=UTC)


def emails_to(workdir: Path, address: str) -> dict[str, EmailMessage]:
    """The emails the file outbox wrote to `address`, by the first word of their subject."""
    mails = [
        BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        for path in (workdir / "var/outbox/email").glob("*.eml")
    ]
    return {str(m["Subject"]).split(":")[0]: m for m in mails if m["To"] == address}


def invitation(mail: EmailMessage) -> tuple[Any, Any] | None:
    """(the calendar, its one event) of the mail's .ics attachment, or None when it has none."""
    attachments = [part for part in mail.iter_attachments() if part.get_filename() == "invite.ics"]
    if not attachments:
        return None
    [attachment] = attachments
    assert attachment.get_content_type() == "text/calendar"
    calendar = icalendar.Calendar.from_ical(attachment.get_content())
    assert attachment.get_param("method") == calendar["method"]
    [event] = calendar.walk("VEVENT")
    return calendar, event


def test_confirmation_change_and_cancellation_carry_invitations_that_update_one_calendar_entry(
    world: World, tmp_path: Path
) -> None:
    world.publish(starts_at=STARTS, title="Peer support circle")
    world.register(consent_reminders=False)
    world.run_sender(world.now)
    world.update(starts_at=STARTS + timedelta(days=1))
    world.run_sender(world.now)
    world.change_status("cancelled", reason="The hall flooded")
    world.run_sender(world.now)

    mails = emails_to(tmp_path, "robin@example.org")
    assert set(mails) == {"You're registered", "Changed", "Cancelled"}
    invites = {subject: invitation(mail) for subject, mail in mails.items()}
    (confirmed_cal, confirmed), (changed_cal, changed), (cancelled_cal, cancelled) = (
        invites["You're registered"],
        invites["Changed"],
        invites["Cancelled"],
    )
    assert [cal["method"] for cal in (confirmed_cal, changed_cal, cancelled_cal)] == ["REQUEST", "REQUEST", "CANCEL"]
    assert len({str(event["uid"]) for event in (confirmed, changed, cancelled)}) == 1
    assert [event["sequence"] for event in (confirmed, changed, cancelled)] == [1, 2, 3]
    assert confirmed.decoded("dtstart") == STARTS
    assert str(confirmed.decoded("dtstart").tzinfo) == "Europe/London"  # the event's own zone
    assert changed.decoded("dtstart") == STARTS + timedelta(days=1)
    assert [str(event["status"]) for event in (confirmed, changed, cancelled)] == [
        "CONFIRMED",
        "CONFIRMED",
        "CANCELLED",
    ]
    assert str(confirmed["summary"]) == "Peer support circle"
    assert str(confirmed["location"]) == "Community Hall, 1 High St, Leeds, LS1 1AA"
    assert str(confirmed["attendee"]) == "mailto:robin@example.org"
    assert str(confirmed["organizer"]) == "mailto:no-reply@localhost"
    assert confirmed["organizer"].params["cn"] == "Mind Matters"
    assert "manage" not in confirmed.to_ical().decode().lower()  # no token in a calendar, often shared


def test_the_online_link_is_in_the_invitation_of_a_confirmed_attendee_and_the_waitlisted_get_none(
    world: World, tmp_path: Path
) -> None:
    link = "https://meet.example/room-42"
    world.publish(starts_at=STARTS, format="online", venue=None, online_url=link)
    world.register(email="confirmed@example.org", consent_reminders=False)
    waiting = world.register(email="waiting@example.org", status="waitlisted")
    world.run_sender(world.now)

    _, confirmed = invitation(emails_to(tmp_path, "confirmed@example.org")["You're registered"]) or (None, None)
    assert str(confirmed["url"]) == link and link in str(confirmed["description"])
    assert invitation(emails_to(tmp_path, "waiting@example.org")["You're on the waitlist"]) is None

    world.registration_changed(waiting, "promoted", world.now)
    world.run_sender(world.now)
    promoted = invitation(emails_to(tmp_path, "waiting@example.org")["A place is yours"])
    assert promoted is not None and promoted[0]["method"] == "REQUEST" and str(promoted[1]["url"]) == link


def test_cancelling_a_registration_cancels_its_calendar_entry(world: World, tmp_path: Path) -> None:
    world.publish(starts_at=STARTS)
    registration = world.register(consent_reminders=False)
    world.run_sender(world.now)
    world.registration_changed(registration, "cancelled", world.now + timedelta(minutes=1))
    world.run_sender(world.now + timedelta(minutes=1))

    mails = emails_to(tmp_path, "robin@example.org")
    _, confirmed = invitation(mails["You're registered"]) or (None, None)
    cancel = invitation(mails["Registration cancelled"])
    assert cancel is not None
    calendar, cancelled = cancel
    assert calendar["method"] == "CANCEL"
    assert (str(cancelled["uid"]), str(cancelled["status"])) == (str(confirmed["uid"]), "CANCELLED")
