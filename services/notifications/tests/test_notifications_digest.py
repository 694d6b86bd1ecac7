"""The organizer's opt-ins on an event: the daily digest (new registrations and cancellations of a day, as
counts, the next morning in the event's time zone) and the waitlist alert (once, when the waitlist reaches
`waitlist_alert_at`). Both go to the organizer's address, and never name or reach an attendee."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa

from gather_notifications import digest
from gather_notifications.store import EventActivity, OrganizerNotice
from gather_shared.db import is_postgresql
from gather_shared.web import hash_secret

if TYPE_CHECKING:
    from conftest import World

#: The time World's messages carry unless told otherwise (conftest.NOW): a Wednesday noon in June.
NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
ORGANIZER_EMAIL = "team@mindmatters.example"
#: NOW is 13:00 in London on 10 June: that day's digest goes at 08:00 London time on 11 June.
MORNING_AFTER = datetime(2026, 6, 11, 7, 0, tzinfo=UTC)
PEOPLE = ("Alice", "alice@example.org", "Bob", "bob@example.org", "Carol", "carol@example.org", "+4477009001")


def organizer_with_address(world: World, email: str | None = ORGANIZER_EMAIL) -> None:
    data: dict[str, Any] = {
        "organizer_id": world.organizer_id,
        "name": "Mind Matters",
        "api_key_hash": hash_secret("k"),
    }
    if email is not None:
        data["email"] = email
    world.send("organizer.key_issued.v1", data, NOW - timedelta(days=30))


def emails(workdir: Path) -> list[EmailMessage]:
    """The emails the file outbox wrote."""
    return [
        BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        for path in sorted((workdir / "var/outbox/email").glob("*.eml"))
    ]


def to_organizer(workdir: Path) -> list[EmailMessage]:
    return [message for message in emails(workdir) if message["To"] == ORGANIZER_EMAIL]


def a_busy_day(world: World) -> None:
    """Three new registrations (one of them waitlisted, later promoted: not a new one) and two cancellations
    (one by the attendee, one by the organizer)."""
    alice = world.register(at=NOW, display_name="Alice", email="alice@example.org")
    bob = world.register(at=NOW + timedelta(hours=1), status="waitlisted", display_name="Bob", email="bob@example.org")
    carol = world.register(
        at=NOW + timedelta(hours=2), display_name="Carol", email="carol@example.org", phone="+447700900123"
    )
    world.registration_changed(carol, "cancelled", NOW + timedelta(hours=3))
    world.send("signup.promoted.v1", bob | {"status": "confirmed"}, NOW + timedelta(hours=3))
    world.send(
        "signup.removed.v1", alice | {"status": "cancelled", "reason": "Double booking"}, NOW + timedelta(hours=4)
    )


def test_an_organizer_who_opted_in_gets_one_digest_the_next_morning_with_counts_and_no_attendee(
    world: World, tmp_path: Path
) -> None:
    organizer_with_address(world)
    world.publish(digest=True)
    a_busy_day(world)
    # The same message redelivered (same id) is counted once.
    repeat = world.registration("confirmed", NOW, display_name="Dan", email="dan@example.org")
    world.send("signup.confirmed.v1", repeat, NOW, message_id="same")
    world.send("signup.confirmed.v1", repeat, NOW, message_id="same")

    digest.send_due(world.rt, MORNING_AFTER - timedelta(minutes=1))
    assert to_organizer(tmp_path) == []  # the day is over, but not yet the morning after

    for _ in range(3):
        digest.send_due(world.rt, MORNING_AFTER)
    digest.send_due(world.rt, MORNING_AFTER + timedelta(days=2))
    [email] = to_organizer(tmp_path)
    text = email.get_content()
    assert "Peer support circle" in email["Subject"]
    assert "Wednesday 10 June 2026" in email["Subject"]
    assert "New registrations: 4" in text  # alice, bob (waitlisted), carol, dan
    assert "Cancellations: 2" in text
    for detail in PEOPLE + ("Dan", "dan@example.org", "Double booking"):
        assert detail not in email.as_string()
    with world.rt.sessions() as session:
        assert session.scalars(sa.select(EventActivity)).all() == []  # the counts went into the digest
        [notice] = session.scalars(sa.select(OrganizerNotice)).all()
        assert (notice.kind, notice.status) == ("organizer_digest", "sent")


def test_the_day_is_the_events_own(world: World, tmp_path: Path) -> None:
    """Half past midnight in Auckland on 11 June is still 10 June in UTC: it counts for 11 June there."""
    organizer_with_address(world)
    world.publish(digest=True, timezone="Pacific/Auckland")
    world.register(at=datetime(2026, 6, 10, 12, 30, tzinfo=UTC))  # 00:30 on 11 June in Auckland
    digest.send_due(world.rt, datetime(2026, 6, 11, 19, 59, tzinfo=UTC))  # 07:59 on 12 June there
    assert to_organizer(tmp_path) == []
    digest.send_due(world.rt, datetime(2026, 6, 11, 20, 0, tzinfo=UTC))
    [email] = to_organizer(tmp_path)
    assert "Thursday 11 June 2026" in email["Subject"]


def test_an_organizer_who_did_not_opt_in_gets_no_digest(world: World, tmp_path: Path) -> None:
    organizer_with_address(world)
    world.publish()
    a_busy_day(world)
    digest.send_due(world.rt, MORNING_AFTER + timedelta(days=1))
    assert to_organizer(tmp_path) == []
    with world.rt.sessions() as session:
        assert session.scalars(sa.select(EventActivity)).all() == []  # the counts are not kept either
        assert session.scalars(sa.select(OrganizerNotice)).all() == []


def test_a_quiet_day_sends_no_digest(world: World, tmp_path: Path) -> None:
    organizer_with_address(world)
    world.publish(digest=True)
    world.register(at=NOW)
    digest.send_due(world.rt, MORNING_AFTER)
    digest.send_due(world.rt, MORNING_AFTER + timedelta(days=1))  # nothing happened on 11 June
    assert len(to_organizer(tmp_path)) == 1


def test_the_cancellations_of_a_cancelled_event_are_not_counted(world: World, tmp_path: Path) -> None:
    organizer_with_address(world)
    world.publish(digest=True)
    alice = world.register(at=NOW)
    world.change_status("cancelled", NOW + timedelta(hours=1), reason="Venue flooded")
    world.registration_changed(alice, "cancelled", NOW + timedelta(hours=1))
    digest.send_due(world.rt, MORNING_AFTER)
    [email] = to_organizer(tmp_path)
    assert "New registrations: 1" in email.get_content()
    assert "Cancellations: 0" in email.get_content()


def test_the_digest_speaks_the_events_language(world: World, tmp_path: Path) -> None:
    organizer_with_address(world)
    world.publish(digest=True, language="es")
    world.register(at=NOW)
    digest.send_due(world.rt, MORNING_AFTER)
    [email] = to_organizer(tmp_path)
    assert email["Content-Language"] == "es"
    assert "Nuevas inscripciones: 1" in email.get_content()


def test_without_the_organizers_address_nothing_is_sent(world: World, tmp_path: Path) -> None:
    """An organizer whose key message came before messages carried the address (an older events service)."""
    organizer_with_address(world, email=None)
    world.publish(digest=True)
    world.register(at=NOW)
    digest.send_due(world.rt, MORNING_AFTER)
    assert emails(tmp_path) == []
    with world.rt.sessions() as session:
        [notice] = session.scalars(sa.select(OrganizerNotice)).all()
        assert notice.status == "cancelled"


def availability(world: World, waitlisted: int, seq: int) -> None:
    data = {
        "event_id": world.event["id"],
        "capacity": 10,
        "confirmed": 10,
        "waitlisted": waitlisted,
        "waitlist_enabled": True,
        "seq": seq,
    }
    world.send("signup.availability_changed.v1", data, NOW + timedelta(minutes=seq))


def test_the_waitlist_alert_goes_once_when_the_waitlist_reaches_the_threshold(world: World, tmp_path: Path) -> None:
    organizer_with_address(world)
    world.publish(waitlist_alert_at=3)
    for seq, waitlisted in enumerate([1, 2], start=1):
        availability(world, waitlisted, seq)
    digest.send_due(world.rt, NOW + timedelta(hours=1))
    assert to_organizer(tmp_path) == []

    for seq, waitlisted in enumerate([3, 4, 2, 3, 5], start=3):
        availability(world, waitlisted, seq)
        digest.send_due(world.rt, NOW + timedelta(hours=1))
    [alert] = to_organizer(tmp_path)
    assert alert["Subject"] == "Peer support circle: 3 people on the waitlist"
    assert "reached 3 people" in alert.get_content()

    # A new threshold is a new alert.
    world.update(waitlist_alert_at=6)
    availability(world, 6, 20)
    digest.send_due(world.rt, NOW + timedelta(hours=1))
    assert sorted(m["Subject"] for m in to_organizer(tmp_path)) == [
        "Peer support circle: 3 people on the waitlist",
        "Peer support circle: 6 people on the waitlist",
    ]


def test_no_waitlist_alert_without_a_threshold(world: World, tmp_path: Path) -> None:
    organizer_with_address(world)
    world.publish(digest=True)
    availability(world, 50, 1)
    digest.send_due(world.rt, NOW + timedelta(hours=1))
    assert to_organizer(tmp_path) == []


def test_two_senders_at_once_send_the_digest_once(world: World, tmp_path: Path) -> None:
    """Two sender processes (here threads) pass at the same moment: one claims the digest, the other skips it."""
    if not is_postgresql(world.rt.engine):
        pytest.skip("SQLite lets one writer at a time: nothing to race")
    organizer_with_address(world)
    for _ in range(5):
        world.publish(digest=True, id=uuid.uuid4())
        world.register(at=NOW)
    start = threading.Barrier(2)

    def one_sender() -> None:
        start.wait()
        digest.send_due(world.rt, MORNING_AFTER)

    threads = [threading.Thread(target=one_sender) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(to_organizer(tmp_path)) == 5
