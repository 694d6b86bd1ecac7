"""The sender at an injected time, with a real SMTP server: what arrives, when, and what happens when
the server refuses."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from prometheus_client import REGISTRY

from gather_notifications import privacy, sender
from gather_notifications.store import Notification, Recipient
from gather_shared import testing, tokens
from gather_shared.db import utcnow
from gather_shared.testing import wait_for

if TYPE_CHECKING:
    from conftest import Mailbox, World


def test_an_email_arrives_multipart_with_its_headers_local_time_and_manage_link(world: World, mailbox: Mailbox) -> None:
    world.publish(title="<Tea & talk>")
    registration = world.register(timezone="America/New_York", consent_reminders=False)
    world.run_sender(world.now)

    [mail] = mailbox.messages
    # The text as plain and HTML alternatives, then the calendar invitation (test_notifications_invitations.py).
    assert mail.get_content_type() == "multipart/mixed"
    assert [part.get_content_type() for part in mail.iter_parts()] == ["multipart/alternative", "text/calendar"]
    assert mail["From"] == "Gather <no-reply@localhost>"  # GATHER_EMAIL_FROM's default
    assert mail["To"] == "robin@example.org"
    assert mail["Subject"] == "You're registered: <Tea & talk>"
    assert mail["Message-ID"] and mail["Date"]
    assert mail["List-Unsubscribe"] is None  # a confirmation is transactional
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    manage_url = tokens.manage_url(world.rt.settings.public_url, testing.SECRET_KEY, registration["signup_id"], 1)
    for part in (text, html):
        assert "Wednesday 17 June 2026 at 08:00 EDT" in part  # noon in London is 08:00 in New York
        assert "Community Hall" in part
        assert manage_url in part  # signed as it was sent: the link opens the attendee pages' manage page
    assert "&lt;Tea &amp; talk&gt;" in html and "<Tea" not in html
    assert world.kinds(world.notifications()) == [("signup_confirmed", "email", "sent")]


def test_a_title_in_any_language_reaches_the_subject_and_body_intact(world: World, mailbox: Mailbox) -> None:
    title = "Café des émotions — Ψυχική υγεία, 心の健康, and a long enough title to need a folded subject"
    world.publish(title=title)
    world.register(display_name="Zoë", consent_reminders=False)
    world.run_sender(world.now)

    [mail] = mailbox.messages
    assert mail["Subject"] == f"You're registered: {title}"
    raw = mail.as_bytes(policy=mail.policy.clone(max_line_length=None))
    assert all(line.isascii() and len(line) <= 998 for line in raw.splitlines())  # 7-bit, as any server takes
    for part in (mail.get_body(("plain",)).get_content(), mail.get_body(("html",)).get_content()):
        assert title in part and "Zoë" in part


def test_the_online_link_goes_only_to_confirmed_attendees(world: World, mailbox: Mailbox) -> None:
    world.publish(format="online", venue=None, online_url="https://meet.example/room-42")
    world.register(email="confirmed@example.org", consent_reminders=False)
    world.register(email="waiting@example.org", status="waitlisted")
    world.run_sender(world.now)

    [confirmed] = mailbox.to("confirmed@example.org")
    [waiting] = mailbox.to("waiting@example.org")
    assert "https://meet.example/room-42" in confirmed.get_body(("plain",)).get_content()
    assert "https://meet.example/room-42" in confirmed.get_body(("html",)).get_content()
    assert "meet.example" not in waiting.as_string()


def test_a_reminder_carries_one_click_unsubscribe_and_the_support_resources(world: World, mailbox: Mailbox) -> None:
    event = world.publish()
    world.register()
    world.run_sender(event["starts_at"] - timedelta(hours=24))

    [reminder] = [m for m in mailbox.messages if m["Subject"].startswith("Reminder")]
    assert reminder["List-Unsubscribe"].startswith("<http://notifications.test/v1/unsubscribe/")
    assert reminder["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    for part in (reminder.get_body(("plain",)).get_content(), reminder.get_body(("html",)).get_content()):
        assert "Samaritans" in part and "https://samaritans.example/" in part
        assert f"{world.rt.settings.public_url}/unsubscribe/" in part  # the attendee pages ask first


def test_a_reminder_goes_out_at_its_due_time_and_not_before(world: World, mailbox: Mailbox) -> None:
    event = world.publish()
    world.register()
    due = event["starts_at"] - timedelta(hours=1)
    world.run_sender(due - timedelta(seconds=1))
    assert [n.status for n in world.notifications(kind="reminder")] == ["sent", "pending"]
    world.run_sender(due)
    assert [n.status for n in world.notifications(kind="reminder")] == ["sent", "sent"]


def test_the_sender_counts_each_outcome_and_how_late_each_reminder_went(world: World, mailbox: Mailbox) -> None:
    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    def sent(kind: str) -> float:
        return sample("gather_notifications_total", kind=kind, channel="email", status="sent")

    def counts() -> list[float]:
        lateness = [sample("gather_reminder_lateness_seconds_bucket", le=le) for le in ("60.0", "120.0", "+Inf")]
        return [sent("signup_confirmed"), sent("reminder"), *lateness]

    before = counts()
    event = world.publish()
    world.register()
    world.run_sender(event["starts_at"] - timedelta(hours=1) + timedelta(seconds=90))

    # One confirmation and two reminders sent: the 1-hour one 90 s after its time (the run came late),
    # the 24-hour one almost a day late.
    assert [a - b for a, b in zip(counts(), before, strict=True)] == [1, 2, 0, 1, 2]


def test_after_a_downtime_overdue_reminders_still_go_before_the_start(world: World, mailbox: Mailbox) -> None:
    event = world.publish()
    world.register()
    world.run_sender(event["starts_at"] - timedelta(minutes=30))
    assert [n.status for n in world.notifications(kind="reminder")] == ["sent", "sent"]


def test_after_a_downtime_reminders_for_a_started_event_are_suppressed(world: World, mailbox: Mailbox) -> None:
    event = world.publish()
    world.register()
    world.run_sender(event["starts_at"] + timedelta(minutes=1))
    reminders = world.notifications(kind="reminder")
    assert [(n.status, n.last_error) for n in reminders] == [("suppressed", "the event had already started")] * 2
    assert not [m for m in mailbox.messages if m["Subject"].startswith("Reminder")]


def test_a_claimed_notification_is_not_claimed_again_while_its_lease_lasts(world: World) -> None:
    world.publish()
    world.register(consent_reminders=False)
    assert len(sender.claim_due(world.rt, world.now)) == 1
    assert sender.claim_due(world.rt, world.now) == []


# PostgreSQL only: SQLite lets one writer at a time, so there a second sender waits instead of skipping.
@pytest.mark.parametrize("module_app", ["postgresql"], indirect=True)
def test_a_second_sender_skips_what_the_first_is_claiming(world: World) -> None:
    world.publish()
    world.register(consent_reminders=False)
    world.register(email="sam@example.org", consent_reminders=False)
    with world.rt.sessions.begin() as first:
        locked = first.scalars(sa.select(Notification).limit(1).with_for_update()).one()
        assert [n.id for n in world.notifications() if n.id != locked.id] == sender.claim_due(world.rt, world.now)


# PostgreSQL only: the wake-up is its LISTEN/NOTIFY; on SQLite the sender only polls.
@pytest.mark.parametrize("module_app", ["postgresql"], indirect=True)
def test_the_consumer_wakes_the_idle_sender_when_a_notification_is_due_now(world: World, mailbox: Mailbox) -> None:
    now = utcnow()
    world.publish(at=now, starts_at=now + timedelta(days=7))
    stop = threading.Event()
    running = threading.Thread(target=sender.run, args=(world.rt, stop, 600), daemon=True)  # its clock: 10 min
    running.start()
    try:
        time.sleep(1)  # its threads found nothing to send and are waiting
        world.register(at=utcnow(), consent_reminders=False)
        wait_for(lambda: mailbox.messages, 30, message="the confirmation, sent without waiting for a poll")
    finally:
        stop.set()
        running.join(30)
    assert not running.is_alive(), "the sender stops when asked, even while its threads wait"


def test_the_sender_s_clock_wakes_it_when_a_planned_reminder_falls_due(world: World, mailbox: Mailbox) -> None:
    # Nobody rings for a reminder: the clock sleeps until the next planned notification falls due. It may
    # look on its own only every 10 minutes here, so a reminder due in seconds is sent by the clock or not at all.
    now = utcnow()
    world.publish(at=now, starts_at=now + timedelta(hours=1, seconds=3))  # the 1 h reminder is 3 s away
    world.register(at=now, consent_reminders=True)
    [reminder] = world.notifications(kind="reminder")
    stop = threading.Event()
    running = threading.Thread(target=sender.run, args=(world.rt, stop, 600), daemon=True)
    running.start()
    try:
        wait_for(lambda: len(mailbox.messages) == 2, 30, message="the confirmation, then the reminder at its time")
    finally:
        stop.set()
        running.join(30)
    [sent] = world.notifications(kind="reminder")
    assert (sent.id, sent.status) == (reminder.id, "sent")
    assert sent.sent_at is not None and sent.sent_at >= reminder.scheduled_for


def test_a_malformed_quiet_hours_setting_stops_the_sender_at_start(world: World) -> None:
    world.configure(sms_quiet_hours="after dark")
    with pytest.raises(ValueError, match="GATHER_SMS_QUIET_HOURS"):
        sender.run(world.rt, threading.Event())


def test_a_notification_whose_sender_died_is_sent_by_another_after_the_lease(world: World, mailbox: Mailbox) -> None:
    world.publish()
    world.register(consent_reminders=False)
    sender.claim_due(world.rt, world.now)  # …and the process dies here
    world.run_sender(world.now + sender.LEASE - timedelta(seconds=1))
    assert mailbox.messages == []
    world.run_sender(world.now + sender.LEASE)
    assert len(mailbox.messages) == 1
    assert world.kinds(world.notifications()) == [("signup_confirmed", "email", "sent")]


def first_attempt(world: World, mailbox: Mailbox, reply: str) -> Notification:
    """A registration's confirmation after the sender's first attempt, which the SMTP server answered `reply`."""
    world.publish()
    world.register(consent_reminders=False)
    mailbox.replies = [reply]
    world.run_sender(world.now)
    [notification] = world.notifications()
    return notification


def test_a_temporary_smtp_refusal_is_retried_later_with_backoff(world: World, mailbox: Mailbox) -> None:
    notification = first_attempt(world, mailbox, "451 4.3.0 Try again later")
    assert (notification.status, notification.attempts) == ("pending", 1)
    assert "451" in notification.last_error
    assert world.now + timedelta(seconds=15) <= notification.scheduled_for <= world.now + timedelta(seconds=30)

    world.run_sender(notification.scheduled_for)
    [notification] = world.notifications()
    assert (notification.status, notification.attempts, notification.last_error) == ("sent", 2, None)
    assert len(mailbox.messages) == 1


def test_a_permanent_smtp_refusal_fails_at_once(world: World, mailbox: Mailbox) -> None:
    notification = first_attempt(world, mailbox, "550 5.1.1 No such user")
    assert (notification.status, notification.attempts) == ("failed", 1)
    assert "550" in notification.last_error


def test_a_notification_fails_after_its_last_attempt(world: World, mailbox: Mailbox) -> None:
    world.publish()
    world.register(consent_reminders=False)
    mailbox.replies = ["421 4.7.0 Busy"] * 10
    for _ in range(10):
        [notification] = world.notifications()
        world.run_sender(notification.scheduled_for)
    [notification] = world.notifications()
    assert (notification.status, notification.attempts) == ("failed", 5)
    assert "421" in notification.last_error


def test_an_unreachable_smtp_server_is_retried(world: World) -> None:
    from gather_shared.testing import free_port

    world.configure(smtp_url=f"smtp://127.0.0.1:{free_port()}")
    world.publish()
    world.register(consent_reminders=False)
    world.run_sender(world.now)
    [notification] = world.notifications()
    assert (notification.status, notification.attempts) == ("pending", 1)
    assert "connection" in notification.last_error.lower()


def registered(world: World) -> tuple[dict[str, Any], str]:
    """An event with one registration, and the token of the unsubscribe link in its reminders (signed, not
    stored)."""
    event = world.publish()
    registration = world.register()
    return event, tokens.unsubscribe_token(world.rt.settings.secret_key, registration["signup_id"])


def test_an_unsubscribed_address_still_hears_that_the_event_was_cancelled(
    world: World, mailbox: Mailbox, client: FlaskClient
) -> None:
    event, token = registered(world)
    assert client.post(f"/v1/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"}).status_code == 200

    world.change_status("cancelled", at=event["starts_at"] - timedelta(hours=30))
    world.run_sender(event["starts_at"] - timedelta(hours=24))
    assert [m["Subject"] for m in mailbox.messages] == [
        "You're registered: Peer support circle",
        "Cancelled: Peer support circle",
    ]


def test_the_unsubscribe_page_suppresses_reminders_with_the_reason(
    world: World, mailbox: Mailbox, client: FlaskClient
) -> None:
    event, token = registered(world)
    page = client.get(f"/v1/unsubscribe/{token}")  # the link in the email, followed in a browser
    assert page.status_code == 200 and '<form method="post">' in page.text
    assert client.post(f"/v1/unsubscribe/{token}").status_code == 200  # its button
    world.run_sender(event["starts_at"] - timedelta(hours=1))
    assert [(n.status, n.last_error) for n in world.notifications(kind="reminder")] == [
        ("suppressed", "opted out: the address unsubscribed")
    ] * 2
    assert [m["Subject"] for m in mailbox.messages] == ["You're registered: Peer support circle"]


def test_following_the_unsubscribe_link_alone_unsubscribes_nobody(
    world: World, mailbox: Mailbox, client: FlaskClient
) -> None:
    # Mail scanners and link previews fetch every link of a message: only a POST may unsubscribe.
    event, token = registered(world)
    assert client.get(f"/v1/unsubscribe/{token}").status_code == 200
    world.run_sender(event["starts_at"] - timedelta(hours=1))
    assert [n.status for n in world.notifications(kind="reminder")] == ["sent"] * 2
    assert sum(m["Subject"].startswith("Reminder") for m in mailbox.messages) == 2


def test_an_unknown_unsubscribe_link_is_a_404(world: World, client: FlaskClient) -> None:
    response = client.post(f"/v1/unsubscribe/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_contact_details_are_erased_after_the_retention_period(world: World) -> None:
    event = world.publish()
    registration = world.register()
    expiry = event["ends_at"] + timedelta(days=world.rt.settings.retention_days)
    assert privacy.forget_expired_contacts(world.rt, expiry - timedelta(seconds=1)) == 0
    assert privacy.forget_expired_contacts(world.rt, expiry + timedelta(seconds=1)) == 1
    with world.rt.sessions() as session:
        recipient = session.get(Recipient, registration["signup_id"])
        assert (recipient.email, recipient.display_name, recipient.phone) == (None, None, None)


@pytest.mark.parametrize("kind", ["signup_confirmed", "waitlisted"])
def test_message_bodies_are_not_kept_after_sending(world: World, mailbox: Mailbox, kind: str) -> None:
    world.publish(title="Confidential circle")
    world.register(status="confirmed" if kind == "signup_confirmed" else "waitlisted", consent_reminders=False)
    world.run_sender(world.now)
    assert len(mailbox.messages) == 1
    with world.rt.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT * FROM notifications").all()
    assert all("Confidential" not in str(value) for row in rows for value in row)


def test_the_sender_logs_in_to_the_smtp_server_with_the_urls_credentials(
    world: World, mailbox_with_login: Mailbox
) -> None:
    world.publish()
    world.register(consent_reminders=False)
    world.run_sender(world.now)
    assert mailbox_with_login.logins == [("gather", "p@ss word")]
    assert len(mailbox_with_login.messages) == 1


def test_every_email_carries_a_manage_link_signed_at_its_token_version(world: World, mailbox: Mailbox) -> None:
    # The link is signed when the message is sent: a promotion carries a working one as the first email
    # did, and after erasure bumped the version, messages carry the new one (none does, once erased).
    world.publish()
    waiting = world.register(status="waitlisted", consent_reminders=False)
    world.run_sender(world.now)
    world.registration_changed(waiting | {"token_version": 2}, "promoted", world.now + timedelta(minutes=1))
    world.run_sender(world.now + timedelta(minutes=2))

    first, promoted = (m.get_body(("plain",)).get_content() for m in mailbox.messages)
    assert tokens.manage_url(world.rt.settings.public_url, testing.SECRET_KEY, waiting["signup_id"], 1) in first
    assert tokens.manage_url(world.rt.settings.public_url, testing.SECRET_KEY, waiting["signup_id"], 2) in promoted


def test_a_batch_of_emails_shares_one_smtp_connection_and_a_refusal_does_not_stop_the_rest(
    world: World, mailbox: Mailbox
) -> None:
    world.publish()
    for i in range(5):
        world.register(email=f"attendee-{i}@example.org", consent_reminders=False)
    mailbox.replies = ["250 OK", "250 OK", "451 4.3.0 Try again later"]  # the third is refused
    world.run_sender(world.now)
    assert len(mailbox.connections) == 2  # after the refusal, the sender reconnects
    statuses = sorted(n.status for n in world.notifications())
    assert statuses == ["pending", "sent", "sent", "sent", "sent"]


def test_a_bug_while_sending_one_email_fails_that_one_and_the_rest_still_go(
    world: World, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gather_notifications import delivery

    world.publish()
    world.register(email="broken@example.org", consent_reminders=False)
    world.register(email="fine@example.org", consent_reminders=False)
    send = delivery.Mailer.send

    def buggy(self: delivery.Mailer, message: Any, reference: str) -> None:
        if message["To"] == "broken@example.org":
            raise RuntimeError("a bug")
        send(self, message, reference)

    monkeypatch.setattr(delivery.Mailer, "send", buggy)
    world.run_sender(world.now)
    statuses = {n.status: n.last_error for n in world.notifications()}
    assert statuses == {"failed": "RuntimeError: a bug", "sent": None}
    assert [m["To"] for m in mailbox.messages] == ["fine@example.org"]
