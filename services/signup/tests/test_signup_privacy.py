"""Erasure on request and the retention job: no contact detail left anywhere in the service's database,
counts kept, and the notifications service told to forget (signup.erased.v1)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from flask.testing import FlaskClient

from gather_shared.service import Runtime
from gather_shared.testing import outbox_messages
from gather_signup import privacy

Publish = Callable[..., dict[str, Any]]
Register = Callable[..., Any]

CONTACT = {
    "display_name": "Robin Quill",
    "email": "robin.quill@example.org",
    "phone": "+447911123456",
    "channels": ["email", "sms"],
    "timezone": "Europe/Paris",
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def about_people(rt: Runtime) -> list[str]:
    """The types of the queued messages that concern people (seat counts concern none)."""
    return [m["type"] for m in outbox_messages(rt.engine) if m["type"] != "signup.availability_changed.v1"]


def anonymise(rt: Runtime, now: datetime, retention_days: int = 30) -> int:
    """One run of the retention job at `now`; how many events it anonymised."""
    with rt.sessions.begin() as session:
        return privacy.anonymise_ended_events(session, now, retention_days=retention_days)


def assert_kept_at(rt: Runtime, now: datetime, database_text: Callable[..., str]) -> None:
    """A run of the retention job at `now` anonymises no event: the contact is still there."""
    assert anonymise(rt, now) == 0
    assert "robin.quill" in database_text()


def assert_forgotten_at(rt: Runtime, now: datetime, database_text: Callable[..., str]) -> None:
    """A run of the retention job at `now` anonymises the event: its contacts are gone."""
    assert anonymise(rt, now) == 1
    assert_forgotten(database_text)


def assert_forgotten(database_text: Callable[..., str]) -> None:
    stored = database_text().lower()
    for detail in ("Robin Quill", "robin.quill", "example.org", "7911123456", "Europe/Paris"):
        assert detail.lower() not in stored, detail


def test_erasure_leaves_no_contact_detail_anywhere_and_tells_the_notifications_service(
    publish: Publish, register: Register, client: FlaskClient, rt: Runtime, database_text: Callable[..., str]
) -> None:
    event = publish()
    signup = register(event["id"], **CONTACT, headers={"Idempotency-Key": "k-1"}).json
    assert "robin.quill" in database_text()

    response = client.delete(
        f"/v1/signups/{signup['id']}", query_string={"erase": "true"}, headers=bearer(signup["manage_token"])
    )
    assert response.status_code == 200
    assert response.json["status"] == "cancelled"
    assert response.json["erased"] is True
    assert (response.json["display_name"], response.json["email"], response.json["phone"]) == (None, None, None)
    assert_forgotten(database_text)
    assert about_people(rt) == ["signup.erased.v1"]


def test_erasing_a_confirmed_registration_still_gives_its_seat_to_the_next_in_line(
    publish: Publish, register: Register, client: FlaskClient, rt: Runtime
) -> None:
    event = publish(capacity=1)
    seated, waiting = register(event["id"], 1, **CONTACT).json, register(event["id"], 2).json
    client.delete(f"/v1/signups/{seated['id']}?erase=true", headers=bearer(seated["manage_token"]))
    promoted = [m["data"] for m in outbox_messages(rt.engine) if m["type"] == "signup.promoted.v1"]
    assert [str(m["signup_id"]) for m in promoted] == [waiting["id"]]


def test_erasing_after_cancelling_and_erasing_twice_are_harmless(
    publish: Publish, register: Register, client: FlaskClient, rt: Runtime, database_text: Callable[..., str]
) -> None:
    event = publish()
    signup = register(event["id"], **CONTACT).json
    client.delete(f"/v1/signups/{signup['id']}", headers=bearer(signup["manage_token"]))
    response = client.delete(f"/v1/signups/{signup['id']}?erase=true", headers=bearer(signup["manage_token"]))
    assert response.status_code == 200
    # Erasure kills the link (a new token_version): asking again is refused and changes nothing.
    response = client.delete(f"/v1/signups/{signup['id']}?erase=true", headers=bearer(signup["manage_token"]))
    assert response.status_code == 401
    assert_forgotten(database_text)
    assert about_people(rt) == ["signup.erased.v1"]


def test_retention_anonymises_attendees_of_events_ended_long_enough_ago_and_keeps_counts(
    publish: Publish, register: Register, client: FlaskClient, rt: Runtime, database_text: Callable[..., str]
) -> None:
    event = publish(capacity=1)
    register(event["id"], 1, **CONTACT)
    register(event["id"], 2)
    same_time = publish(starts_at=event["starts_at"], ends_at=event["ends_at"])
    register(same_time["id"], 3, display_name="Also Over")
    ends = event["ends_at"]

    assert_kept_at(rt, ends + timedelta(days=29), database_text)

    assert anonymise(rt, ends + timedelta(days=30)) == 2
    assert_forgotten(database_text)
    assert "Also Over" not in database_text()
    counts = client.get(f"/v1/events/{event['id']}/availability").json
    assert (counts["confirmed"], counts["waitlisted"]) == (1, 1)
    erased = [m for m in outbox_messages(rt.engine) if m["type"] == "signup.erased.v1"]
    assert len(erased) == 3

    assert anonymise(rt, ends + timedelta(days=31)) == 0  # a second run finds nothing left to do


def test_retention_keeps_attendees_of_events_not_yet_over(
    publish: Publish, register: Register, rt: Runtime, database_text: Callable[..., str]
) -> None:
    event = publish()
    register(event["id"], **CONTACT)
    anonymise(rt, datetime.now(UTC), retention_days=0)
    assert "robin.quill" in database_text()


def test_an_idempotency_key_is_forgotten_after_a_day(publish: Publish, register: Register, rt: Runtime) -> None:
    event = publish()
    register(event["id"], headers={"Idempotency-Key": "k-1"})
    anonymise(rt, datetime.now(UTC) + timedelta(hours=25))
    response = register(event["id"], headers={"Idempotency-Key": "k-1"})
    assert response.status_code == 409  # no replay any more: the same person is simply registered already
    assert response.json["code"] == "already_registered"


def test_retention_keeps_the_attendees_of_a_postponed_event_whatever_its_old_date(
    publish: Publish, register: Register, rt: Runtime, database_text: Callable[..., str]
) -> None:
    event = publish()
    register(event["id"], **CONTACT)
    publish("event.postponed.v1", id=event["id"], version=2, status="postponed", starts_at=event["starts_at"])
    assert_kept_at(rt, event["ends_at"] + timedelta(days=90), database_text)


def test_retention_judges_an_event_moved_later_by_its_new_end(
    publish: Publish, register: Register, rt: Runtime, database_text: Callable[..., str]
) -> None:
    event = publish()
    register(event["id"], **CONTACT)
    later = publish("event.updated.v1", id=event["id"], version=2, starts_at=event["starts_at"] + timedelta(days=60))
    assert_kept_at(rt, event["ends_at"] + timedelta(days=30), database_text)
    assert_forgotten_at(rt, later["ends_at"] + timedelta(days=30), database_text)


def test_retention_covers_registrations_made_after_the_event_was_first_examined(
    publish: Publish, register: Register, rt: Runtime, database_text: Callable[..., str]
) -> None:
    event = publish()
    register(event["id"], 1)
    due = event["ends_at"] + timedelta(days=30)
    assert anonymise(rt, due) == 1
    # Registered afterwards (the clock of this test's job runs ahead of the registrations' own).
    register(event["id"], 2, **CONTACT)
    assert_forgotten_at(rt, due + timedelta(hours=1), database_text)


def test_an_event_moved_later_after_its_attendees_were_anonymised_is_examined_again(
    publish: Publish, register: Register, rt: Runtime, database_text: Callable[..., str]
) -> None:
    event = publish()
    register(event["id"], 1)
    assert anonymise(rt, event["ends_at"] + timedelta(days=30)) == 1
    later = publish("event.updated.v1", id=event["id"], version=2, starts_at=event["starts_at"] + timedelta(days=60))
    register(event["id"], 2, **CONTACT)  # someone who comes on the new date
    assert_kept_at(rt, event["ends_at"] + timedelta(days=31), database_text)
    assert_forgotten_at(rt, later["ends_at"] + timedelta(days=30), database_text)
