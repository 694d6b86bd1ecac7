"""What the notices say: a change notice shows old → new for the time (in the attendee's time zone), the
place and, to confirmed attendees only, the online link; the waitlist notice gives the position."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import World

PHONE = "+447700900123"
STARTS = datetime(2026, 6, 17, 12, 0, tzinfo=UTC)  # a Wednesday; 13:00 in London, 08:00 in New York


def emails_to(workdir: Path, address: str, subject_start: str) -> list[EmailMessage]:
    """The emails the file outbox wrote to `address` whose subject starts so."""
    mails = [
        BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        for path in (workdir / "var/outbox/email").glob("*.eml")
    ]
    return [m for m in mails if m["To"] == address and str(m["Subject"]).startswith(subject_start)]


def text_of(mail: EmailMessage) -> str:
    return mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def sms_bodies(workdir: Path) -> list[str]:
    path = workdir / "var/outbox/sms.jsonl"
    return [json.loads(line)["body"] for line in path.read_text().splitlines()] if path.exists() else []


def test_a_change_notice_says_what_changed_old_to_new_in_the_attendees_time_zone(world: World, tmp_path: Path) -> None:
    world.publish(starts_at=STARTS)
    world.register(phone=PHONE, channels=["email", "sms"], timezone="America/New_York", consent_reminders=False)
    new_venue = {"name": "Library", "address": "2 Low St", "city": "Leeds", "postcode": "LS2 2BB"}
    world.update(starts_at=STARTS + timedelta(days=1), venue=new_venue)
    world.run_sender(world.now)

    [mail] = emails_to(tmp_path, "robin@example.org", "Changed")
    for part in (text_of(mail), mail.get_body(("html",)).get_content()):  # type: ignore[union-attr]
        assert "Wednesday 17 June 2026 at 08:00 EDT (America/New_York)" in part
        assert "Thursday 18 June 2026 at 08:00 EDT (America/New_York)" in part
        assert "Community Hall, 1 High St, Leeds, LS1 1AA" in part
        assert "Library, 2 Low St, Leeds, LS2 2BB" in part
    text = text_of(mail)
    assert (
        "- When: was Wednesday 17 June 2026 at 08:00 EDT (America/New_York), "
        "now Thursday 18 June 2026 at 08:00 EDT (America/New_York)"
    ) in text
    assert "- Where: was Community Hall, 1 High St, Leeds, LS1 1AA, now Library, 2 Low St, Leeds, LS2 2BB" in text
    assert "Online link" not in text
    [sms] = [body for body in sms_bodies(tmp_path) if "has changed" in body]
    assert "When was Wed 17 Jun 08:00 EDT, now Thu 18 Jun 08:00 EDT." in sms
    assert "Where was Community Hall, Leeds, now Library, Leeds." in sms


def test_a_changed_online_link_is_shown_old_to_new_to_confirmed_attendees_only(world: World, tmp_path: Path) -> None:
    old_link, new_link = "https://meet.example/old-room", "https://meet.example/new-room"
    world.publish(starts_at=STARTS, format="hybrid", online_url=old_link)
    world.register(email="confirmed@example.org", consent_reminders=False)
    world.register(email="waiting@example.org", status="waitlisted")
    world.update(online_url=new_link, starts_at=STARTS + timedelta(hours=1))
    world.run_sender(world.now)

    [confirmed] = emails_to(tmp_path, "confirmed@example.org", "Changed")
    assert f"- Online link: was {old_link}, now {new_link}" in text_of(confirmed)
    [waiting] = emails_to(tmp_path, "waiting@example.org", "Changed")
    assert "- When: was Wednesday 17 June 2026 at 13:00 BST" in text_of(waiting)
    assert "meet.example" not in waiting.as_string() and "Online link" not in text_of(waiting)


def test_the_waitlist_notice_gives_the_position(world: World, tmp_path: Path) -> None:
    world.publish(starts_at=STARTS)
    world.register(status="waitlisted", waitlist_position=3, phone=PHONE, channels=["email", "sms"])
    world.run_sender(world.now)

    [mail] = emails_to(tmp_path, "robin@example.org", "You're on the waitlist")
    assert "you're on the waitlist: you're number 3." in text_of(mail)
    [sms] = sms_bodies(tmp_path)
    assert "(number 3)" in sms
