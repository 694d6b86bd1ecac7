"""What each message makes the service plan: which notifications, to whom, on which channel, when."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import World


def test_a_confirmed_registration_is_confirmed_on_each_chosen_channel(world: World) -> None:
    world.publish()
    world.register(phone="+447700900123", channels=["email", "sms"], consent_reminders=False)
    assert world.kinds(world.notifications()) == [
        ("signup_confirmed", "email", "pending"),
        ("signup_confirmed", "sms", "pending"),
    ]


def test_a_redelivered_message_plans_nothing_twice(world: World) -> None:
    world.publish()
    registration = world.register(consent_reminders=False)
    world.send("signup.confirmed.v1", registration, message_id="same")
    world.send("signup.confirmed.v1", registration, message_id="same")
    assert world.kinds(world.notifications()) == [("signup_confirmed", "email", "pending")]


def test_reminders_are_planned_at_each_offset_for_attendees_who_agreed(world: World) -> None:
    event = world.publish()
    world.register()
    world.register(email="sam@example.org", consent_reminders=False)
    reminders = world.notifications(kind="reminder")
    assert [n.scheduled_for for n in reminders] == [
        event["starts_at"] - timedelta(hours=24),
        event["starts_at"] - timedelta(hours=1),
    ]


def test_the_waitlisted_get_no_reminders_until_promoted(world: World) -> None:
    event = world.publish()
    registration = world.register(status="waitlisted")
    assert world.kinds(world.notifications()) == [("waitlisted", "email", "pending")]

    world.registration_changed(registration, "promoted", at=world.now + timedelta(days=1))
    assert [n.scheduled_for for n in world.notifications(kind="reminder")] == [
        event["starts_at"] - timedelta(hours=24),
        event["starts_at"] - timedelta(hours=1),
    ]
    assert len(world.notifications(kind="promoted")) == 1


def test_a_reminder_whose_time_passed_at_registration_is_not_planned(world: World) -> None:
    event = world.publish(starts_at=world.now + timedelta(hours=5))
    world.register()
    assert [n.scheduled_for for n in world.notifications(kind="reminder")] == [event["starts_at"] - timedelta(hours=1)]


def test_a_new_time_replans_reminders_and_tells_attendees(world: World) -> None:
    world.publish()
    world.register()
    world.register(email="sam@example.org", status="waitlisted")
    later = world.now + timedelta(days=14)
    world.update(starts_at=later, at=world.now + timedelta(hours=1))

    reminders = world.notifications(kind="reminder")
    assert {n.status for n in reminders if n.event_version == 1} == {"cancelled"}  # nothing at the old time
    assert [n.scheduled_for for n in reminders if n.status == "pending"] == [
        later - timedelta(hours=24),
        later - timedelta(hours=1),
    ]
    assert len(world.notifications(kind="event_changed")) == 2  # the confirmed and the waitlisted


def test_a_new_title_is_not_announced_and_leaves_reminders_alone(world: World) -> None:
    world.publish()
    world.register()
    before = [(n.id, n.scheduled_for) for n in world.notifications(kind="reminder")]
    world.update(title="Peer support circle (new room)")
    assert world.notifications(kind="event_changed") == []
    assert [(n.id, n.scheduled_for) for n in world.notifications(kind="reminder", status="pending")] == before


def test_a_new_online_link_is_announced_only_to_confirmed_attendees(world: World) -> None:
    world.publish(format="online", venue=None, online_url="https://meet.example/a")
    confirmed = world.register()
    world.register(email="sam@example.org", status="waitlisted")
    world.update(online_url="https://meet.example/b")
    assert [n.signup_id for n in world.notifications(kind="event_changed")] == [confirmed["signup_id"]]


def test_a_cancelled_event_is_announced_to_everyone_registered_and_its_reminders_vanish(world: World) -> None:
    world.publish()
    world.register()
    world.register(email="sam@example.org", status="waitlisted")
    cancelled = world.register(email="kim@example.org")
    world.registration_changed(cancelled, "cancelled", at=world.now + timedelta(minutes=5))
    world.change_status("cancelled", reason="The hall flooded", at=world.now + timedelta(hours=1))

    assert len(world.notifications(kind="event_cancelled")) == 2
    assert {n.status for n in world.notifications(kind="reminder")} == {"cancelled"}


def test_a_registration_cancelled_by_the_event_cancellation_gets_no_second_message(world: World) -> None:
    world.publish()
    registration = world.register(consent_reminders=False)
    world.change_status("cancelled", at=world.now + timedelta(hours=1))
    world.registration_changed(registration, "cancelled", at=world.now + timedelta(hours=1, seconds=1))
    assert [n.kind for n in world.notifications()] == ["signup_confirmed", "event_cancelled"]


def test_a_postponed_event_loses_its_reminders_until_it_has_a_new_time(world: World) -> None:
    world.publish()
    world.register()
    world.change_status("postponed", reason="Speaker ill", at=world.now + timedelta(hours=1))
    assert world.notifications(kind="reminder", status="pending") == []
    assert len(world.notifications(kind="event_postponed")) == 1

    later = world.now + timedelta(days=21)
    world.event["status"] = "published"  # a new time republishes it
    world.update(starts_at=later, at=world.now + timedelta(days=1))
    assert [n.scheduled_for for n in world.notifications(kind="reminder", status="pending")] == [
        later - timedelta(hours=24),
        later - timedelta(hours=1),
    ]


def test_a_cancelled_registration_loses_its_reminders(world: World) -> None:
    world.publish()
    registration = world.register()
    world.registration_changed(registration, "cancelled", at=world.now + timedelta(hours=1))
    assert {n.status for n in world.notifications(kind="reminder")} == {"cancelled"}
    assert len(world.notifications(kind="signup_cancelled")) == 1


def test_changed_details_send_nothing_but_reminders_follow_the_new_consent_and_channels(world: World) -> None:
    event = world.publish()
    registration = world.register(phone="+447700900123", channels=["email"], consent_reminders=False)
    assert world.notifications(kind="reminder") == []

    changed = registration | {"channels": ["email", "sms"], "consent_reminders": True}
    world.send("signup.updated.v1", changed, world.now + timedelta(hours=1))
    assert [(n.channel, n.scheduled_for) for n in world.notifications(kind="reminder")] == [
        ("email", event["starts_at"] - timedelta(hours=24)),
        ("sms", event["starts_at"] - timedelta(hours=24)),
        ("email", event["starts_at"] - timedelta(hours=1)),
        ("sms", event["starts_at"] - timedelta(hours=1)),
    ]
    world.send("signup.updated.v1", changed | {"consent_reminders": False}, world.now + timedelta(hours=2))
    assert {n.status for n in world.notifications(kind="reminder")} == {"cancelled"}
    assert world.kinds(world.notifications(kind="signup_confirmed")) == [("signup_confirmed", "email", "pending")]


def test_an_older_event_snapshot_arriving_late_changes_nothing(world: World) -> None:
    event = world.publish()
    world.register()
    world.update(starts_at=world.now + timedelta(days=14), at=world.now + timedelta(hours=1))
    soon = world.now + timedelta(days=3)
    stale = event | {"version": 2, "starts_at": soon, "ends_at": soon + timedelta(hours=1)}
    world.send("event.updated.v1", {"event": stale, "changes": {"starts_at": {"old": "a", "new": "b"}}})
    assert len(world.notifications(kind="event_changed")) == 1
    assert {n.scheduled_for for n in world.notifications(kind="reminder", status="pending")} == {
        world.now + timedelta(days=13),
        world.now + timedelta(days=14, hours=-1),
    }


def test_an_older_registration_message_arriving_late_changes_nothing(world: World) -> None:
    world.publish()
    registration = world.register(status="waitlisted", at=world.now)
    world.registration_changed(registration, "promoted", at=world.now + timedelta(hours=2))
    world.send("signup.waitlisted.v1", registration, at=world.now + timedelta(hours=1))  # a late retry
    assert [n.kind for n in world.notifications() if n.kind != "reminder"] == ["waitlisted", "promoted"]
    assert len(world.notifications(kind="reminder", status="pending")) == 2


def test_erasure_forgets_the_contact_and_what_was_waiting_for_it(world: World) -> None:
    world.publish()
    registration = world.register(phone="+447700900123", channels=["email", "sms"])
    world.send("signup.erased.v1", {"signup_id": registration["signup_id"], "event_id": registration["event_id"]})
    assert {n.status for n in world.notifications()} == {"cancelled"}

    world.send("signup.confirmed.v1", registration, at=world.now + timedelta(seconds=1))  # a late redelivery
    from gather_notifications.store import Recipient

    with world.rt.sessions() as session:
        recipient = session.get(Recipient, registration["signup_id"])
        assert (recipient.email, recipient.phone, recipient.display_name) == (None, None, None)
    assert {n.status for n in world.notifications()} == {"cancelled"}


def test_a_registration_that_overtakes_its_event_gets_reminders_when_the_event_arrives(world: World) -> None:
    event_id = world.publish()["id"]
    # A second event whose registration arrives first.
    world.event = world.event | {"id": uuid.uuid4()}
    registration = world.register(at=world.now - timedelta(minutes=1))
    assert world.kinds(world.notifications(signup_id=registration["signup_id"])) == [
        ("signup_confirmed", "email", "pending")
    ]
    world.send("event.published.v1", {"event": world.event}, at=world.now - timedelta(minutes=2))
    assert len(world.notifications(signup_id=registration["signup_id"], kind="reminder")) == 2
    assert event_id != world.event["id"]
