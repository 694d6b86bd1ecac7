"""Crashes cost seconds, not minutes: a notifications sender killed (SIGKILL) in the middle of its batch
leaves nothing behind for long, and resends at most the one email each of its threads had in flight,
with the same Message-ID."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gather_notifications import sender
from gather_shared.testing import Client, Platform, running_platform, wait_for
from gather_shared.testing.smtp import Mailbox, smtp_sink

AT_ONCE = {"kind": "workshop", "verification": "none", "capacity": None}
REGISTRATIONS = 20


@pytest.fixture
def slow_mailbox() -> Iterator[Mailbox]:
    # Each email takes the server a while to answer: the sender is killed while a batch is under way.
    with smtp_sink(answer_after=0.3) as mailbox:
        yield mailbox


@pytest.fixture
def platform(tmp_path: Path, slow_mailbox: Mailbox) -> Iterator[Platform]:
    with running_platform(tmp_path, None, None, extra_env={"GATHER_SMTP_URL": slow_mailbox.url}) as platform:
        yield platform


def test_a_sender_killed_mid_batch_is_taken_over_in_seconds_resending_only_what_was_in_flight(
    platform: Platform, slow_mailbox: Mailbox, report: Callable[[str], None]
) -> None:
    client = Client(platform)
    event = client.published_event(client.organizer()["api_key"], **AT_ONCE)
    addresses = {}  # signup id -> email address
    for i in range(REGISTRATIONS):
        response = client.register(event["id"], email=f"attendee{i}@example.org")
        assert response.status_code == 201, response.text
        addresses[response.json()["id"]] = f"attendee{i}@example.org"
    wait_for(lambda: len(slow_mailbox.received) >= 3, message="the sender to be under way")

    platform.kill("notifications-sender")  # SIGKILL, in the middle of its batch
    received_before = len(slow_mailbox.received)
    left_sending = client.notifications(event_id=event["id"], status="sending")
    assert left_sending, "the sender died holding claimed notifications"
    # Those it had recorded before it died stay recorded: nothing of them goes again.
    sent_before = {n["signup_id"] for n in client.notifications(event_id=event["id"], status="sent")}

    platform.start("notifications-sender")  # as a supervisor would
    # The old claim ran for 5 minutes; now a dead sender's claims run out in seconds.
    wait_for(
        lambda: set(slow_mailbox.recipients()) == set(addresses.values()),
        timeout=sender.LEASE.total_seconds() + 20,
        message="every confirmation after the crash",
    )
    wait_for(lambda: not client.notifications(event_id=event["id"], status="sending"), message="no claim left")

    twice = {address: count for address, count in slow_mailbox.recipients().items() if count > 1}
    report(
        f"sender killed after {received_before} of {REGISTRATIONS} emails had reached the server, "
        f"{len(left_sending)} left `sending`, {len(twice)} sent twice"
    )
    assert all(count == 2 for count in twice.values())
    assert len(twice) <= sender.SEND_WORKERS, "at most the one email in flight per thread goes again"
    for address in twice:
        first, again = slow_mailbox.message_ids(address)
        assert first == again, "a resend carries the Message-ID of the first copy"
    assert not any(addresses[signup_id] in twice for signup_id in sent_before)
    assert all(n["status"] == "sent" for n in client.notifications(event_id=event["id"]))
