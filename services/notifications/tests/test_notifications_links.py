"""The links a person asked for a moment ago: `verify_contact` (to a registration waiting for its contact)
and `manage_link` (to one already registered). Transactional and awaited: never kept back by an opt-out
nor by quiet hours; sent once per request; signed as they are sent, and kept nowhere."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from flask.testing import FlaskClient

from gather_notifications.store import SmsOptOut, contact_hash, metadata
from gather_shared import testing, tokens

if TYPE_CHECKING:
    from conftest import Mailbox, World

PHONE = "+447700900123"


def sms_sent(workdir: Path) -> list[dict[str, str]]:
    path = workdir / "var/outbox/sms.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_pending_registration_gets_a_verify_link_that_names_it_and_nothing_else(
    world: World, mailbox: Mailbox
) -> None:
    world.publish(title="Grief circle")
    pending = world.pending(display_name="Someone's words")
    world.run_sender(world.now)

    [mail] = mailbox.messages
    assert mail["Subject"] == "Confirm your place: Grief circle"
    assert mail["List-Unsubscribe"] is None  # transactional
    text = mail.get_body(("plain",)).get_content()
    [link] = re.findall(r"http://pages\.test/verify/(\S+)", text)
    assert tokens.read_verify_token(testing.SECRET_KEY, link, 60) == pending["signup_id"]
    assert "30 minutes" in text
    assert "/manage/" not in text  # the place is not theirs yet
    assert "Someone's words" not in text  # whoever asked typed the name: it is not shown to the contact


def test_each_request_sends_a_link_once_whatever_the_redeliveries(world: World, mailbox: Mailbox) -> None:
    world.publish()
    pending = world.pending()
    world.send(
        "signup.verification_requested.v1", pending | {"link_request": 1, "expires_at": world.now}, world.now
    )  # the same request again: a redelivery
    world.ask_for_a_place(pending, link_request=2, at=world.now + timedelta(minutes=5))  # asked again
    world.run_sender(world.now + timedelta(minutes=5))
    assert world.kinds(world.notifications()) == [("verify_contact", "email", "sent")] * 2
    assert len(mailbox.messages) == 2


def test_an_active_registration_asked_for_again_gets_its_manage_link(world: World, mailbox: Mailbox) -> None:
    world.publish(title="Walk and talk")
    registration = world.register(consent_reminders=False)
    world.ask_for_a_place(registration, link_request=1, at=world.now + timedelta(minutes=1))
    world.run_sender(world.now + timedelta(minutes=1))

    confirmation, again = mailbox.messages
    assert again["Subject"] == "Your registration: Walk and talk"
    manage_url = tokens.manage_url(world.rt.settings.public_url, testing.SECRET_KEY, registration["signup_id"], 1)
    assert manage_url in again.get_body(("plain",)).get_content()
    assert world.kinds(world.notifications(kind="manage_link")) == [("manage_link", "email", "sent")]


def test_a_verify_link_is_not_sent_once_the_contact_is_verified(world: World, mailbox: Mailbox) -> None:
    world.publish()
    pending = world.pending()
    world.registration_changed(pending, "promoted", world.now + timedelta(seconds=1))  # verified: now confirmed
    world.run_sender(world.now + timedelta(seconds=2))
    assert [(n.status, n.last_error) for n in world.notifications(kind="verify_contact")] == [
        ("cancelled", "no longer due: the contact is verified already")
    ]


def test_a_verify_sms_goes_at_once_in_quiet_hours_and_to_a_number_that_replied_stop(
    world: World, client: FlaskClient, tmp_path: Path
) -> None:
    late = datetime(2026, 6, 10, 22, 0, tzinfo=UTC)  # 23:00 in London: quiet hours
    world.publish(starts_at=late + timedelta(days=3))
    with world.rt.sessions.begin() as session:  # the number replied STOP before
        session.add(SmsOptOut(number_hash=contact_hash(testing.SECRET_KEY, PHONE), created_at=late))
    world.pending(email=None, phone=PHONE, channels=["sms"], at=late)
    world.run_sender(late)

    [sms] = sms_sent(tmp_path)
    assert sms["to"] == PHONE
    assert "/verify/" in sms["body"]
    assert world.kinds(world.notifications()) == [("verify_contact", "sms", "sent")]


def test_no_link_nor_token_is_kept_in_any_table(world: World, mailbox: Mailbox, tmp_path: Path) -> None:
    event = world.publish()
    pending = world.pending(phone=PHONE, channels=["email", "sms"])
    registration = world.register(email="other@example.org", consent_reminders=True)
    world.ask_for_a_place(registration, link_request=1)
    world.run_sender(event["starts_at"] - timedelta(hours=1))

    sent = [m.get_body(("plain",)).get_content() for m in mailbox.messages] + [m["body"] for m in sms_sent(tmp_path)]
    found = {token for text in sent for token in re.findall(r"/(?:verify|manage/[\w-]+|unsubscribe)/([\w.-]+)", text)}
    assert len(found) >= 3  # a verify link, a manage link, an unsubscribe link
    assert {tokens.read_verify_token(testing.SECRET_KEY, t, 60) for t in found if t.count(".") == 2} == {
        pending["signup_id"]
    }
    with world.rt.engine.connect() as conn:
        stored = "\n".join(
            repr(tuple(row)) for table in metadata.sorted_tables for row in conn.execute(sa.select(table))
        )
    assert not any(token in stored for token in found)
    assert "/verify/" not in stored and "/manage/" not in stored and "/unsubscribe/" not in stored
