"""Forgetting attendees: an erasure (signup.erased.v1) and the retention period take the contact out of
every copy this service made: its tables, delivery errors that quoted it, the embedded default's .eml
files and sms.jsonl lines (also one written while the erasure happened), and SQLite's write-ahead log."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa

from gather_notifications import privacy, sender
from gather_notifications.store import Notification, Recipient
from gather_shared.db import is_postgresql

if TYPE_CHECKING:
    from conftest import Mailbox, World

EMAIL, PHONE = "quill.robin@example.org", "+447700900123"


def erase(world: World, registration: dict[str, Any]) -> None:
    world.send("signup.erased.v1", {"signup_id": registration["signup_id"], "event_id": registration["event_id"]})


def outbox_text() -> str:
    """Everything the embedded default wrote: the .eml files and sms.jsonl (the test's own var/)."""
    return "\n".join(path.read_text() for path in sorted(Path("var/outbox").rglob("*")) if path.is_file())


def database_text(world: World) -> str:
    with world.rt.engine.connect() as conn:
        tables = [Notification.__table__, Recipient.__table__]
        return "\n".join(repr(tuple(row)) for table in tables for row in conn.execute(sa.select(table)))


def test_erasure_deletes_the_emails_and_sms_written_to_that_attendee_only(world: World) -> None:
    world.publish()
    erased = world.register(email=EMAIL, phone=PHONE, channels=["email", "sms"], display_name="Quillon")
    world.register(email="kept@example.org", phone="+447700900456", channels=["email", "sms"])
    world.run_sender(world.now)
    assert {n.status for n in world.notifications(kind="signup_confirmed")} == {"sent"}
    assert all(detail in outbox_text() for detail in (EMAIL, PHONE, "Quillon", "kept@example.org"))

    erase(world, erased)
    text = outbox_text()
    assert all(detail not in text for detail in (EMAIL, PHONE, "Quillon")), text
    assert "kept@example.org" in text and "+447700900456" in text
    assert len(list(Path("var/outbox/email").glob("*.eml"))) == 1
    [line] = Path("var/outbox/sms.jsonl").read_text().splitlines()
    assert json.loads(line)["to"] == "+447700900456"
    assert all(detail not in database_text(world) for detail in (EMAIL, PHONE, "Quillon"))


def test_a_message_written_while_its_attendee_was_erased_is_deleted_when_the_sender_records_it(world: World) -> None:
    world.publish()
    registration = world.register(email=EMAIL, phone=PHONE, channels=["email", "sms"], consent_reminders=False)
    # The sender claims and renders the messages; the erasure is handled before they are written.
    with world.rt.sessions.begin() as session:
        sends = sender._prepare_batch(world.rt, session, sender._claim(session, world.now, 50), world.now)
    erase(world, registration)
    sender._send_and_record(world.rt, sends, world.now)
    assert EMAIL not in outbox_text() and PHONE not in outbox_text()


def test_an_attendee_erased_while_a_batch_is_on_its_way_is_not_handed_to_the_provider(
    world: World, mailbox: Mailbox
) -> None:
    world.publish()
    first = world.register(email="first@example.org", consent_reminders=False)
    second = world.register(email=EMAIL, consent_reminders=False)
    # Both confirmations are claimed and rendered in one batch; the second attendee asks to be erased while
    # the SMTP server takes the first.
    mailbox.on_message = lambda message: erase(world, second) if message["To"] == "first@example.org" else None
    world.run_sender(world.now)

    assert [m["To"] for m in mailbox.messages] == ["first@example.org"]
    by_registration = {str(n.signup_id): (n.status, n.last_error) for n in world.notifications()}
    assert by_registration == {
        str(first["signup_id"]): ("sent", None),
        str(second["signup_id"]): ("cancelled", "no contact: erased"),
    }
    assert EMAIL not in outbox_text() + database_text(world)


def test_a_delivery_error_is_kept_and_logged_without_the_address_it_quotes(
    world: World, mailbox: Mailbox, caplog: pytest.LogCaptureFixture
) -> None:
    world.publish()
    world.register(email=EMAIL, consent_reminders=False)
    mailbox.replies = [f"550 5.1.1 <{EMAIL.upper()}>: Recipient address rejected"]
    with caplog.at_level(logging.INFO):
        world.run_sender(world.now)
    [notification] = world.notifications()
    assert notification.status == "failed"
    assert notification.last_error == "SMTP 550: 5.1.1 <[contact]>: Recipient address rejected"
    ours = [
        record.getMessage() for record in caplog.records if record.name.startswith("gather")
    ]  # not the SMTP server's
    assert any("Recipient address rejected" in line for line in ours)
    assert not [line for line in ours if EMAIL in line.lower()]


def test_erasure_takes_the_contact_out_of_delivery_errors_recorded_before(world: World) -> None:
    world.publish()
    registration = world.register(email=EMAIL, consent_reminders=False)
    with world.rt.sessions.begin() as session:  # as an older version recorded them
        session.execute(sa.update(Notification).values(status="failed", last_error=f"refused: {EMAIL}"))
    erase(world, registration)
    [notification] = world.notifications()
    assert notification.last_error == "refused: [contact]"


def test_erasure_leaves_nothing_in_the_sqlite_files(world: World) -> None:
    if is_postgresql(world.rt.engine):
        pytest.skip("SQLite's files; PostgreSQL keeps its own (docs/privacy.md)")
    world.publish()
    registration = world.register(email=EMAIL, phone=PHONE, channels=["email", "sms"], display_name="Quillon")
    world.run_sender(world.now)
    database = Path(world.rt.engine.url.database or "")
    assert EMAIL.encode() in database.read_bytes() + Path(f"{database}-wal").read_bytes()

    erase(world, registration)
    files = database.read_bytes() + Path(f"{database}-wal").read_bytes()
    for detail in (EMAIL, PHONE, "Quillon"):
        assert detail.encode() not in files, detail


def test_retention_keeps_the_attendees_of_a_postponed_event_whatever_its_old_date(world: World) -> None:
    event = world.publish()
    world.register(email=EMAIL)
    world.change_status("postponed", reason="The hall is closed")
    expiry = event["ends_at"] + timedelta(days=world.rt.settings.retention_days, seconds=1)
    assert privacy.forget_expired_contacts(world.rt, expiry) == 0
    assert EMAIL in database_text(world)


def test_retention_judges_an_event_moved_later_by_its_new_end(world: World) -> None:
    event = world.publish()
    world.register(email=EMAIL)
    retention = timedelta(days=world.rt.settings.retention_days, seconds=1)
    world.update(starts_at=event["starts_at"] + timedelta(days=60))
    assert privacy.forget_expired_contacts(world.rt, event["ends_at"] + retention) == 0
    assert EMAIL in database_text(world)
    assert privacy.forget_expired_contacts(world.rt, world.event["ends_at"] + retention) == 1
    assert EMAIL not in database_text(world)


def test_redaction_takes_every_form_of_a_contact_but_leaves_a_name_of_one_or_two_letters() -> None:
    text = "550 <Robin@Example.ORG> refused; +447700900123 (447700900123) unknown; Robin Al, also called Al"
    contacts = ["robin@example.org", "+447700900123", "Robin", "Al"]
    assert privacy.without_contact(text, contacts) == (
        "550 <[contact]> refused; [contact] ([contact]) unknown; [contact] Al, also called Al"
    )
