"""Registering: seats, waitlist, duplicates, closed events, validation and Idempotency-Key."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.exc import IntegrityError

from gather_shared import testing, tokens
from gather_shared.service import Runtime
from gather_shared.testing import outbox_messages
from gather_signup import seats
from gather_signup.store import Event, Signup

Publish = Callable[..., dict[str, Any]]
Register = Callable[..., Any]


def test_a_registration_within_capacity_is_confirmed_and_announced_without_any_token(
    publish: Publish, register: Register, rt: Runtime
) -> None:
    event = publish()
    response = register(event["id"], display_name=" Robin ", email="Robin@Example.ORG", consent={"reminders": True})
    assert response.status_code == 201, response.json
    signup = response.json
    assert signup["status"] == "confirmed"
    assert signup["waitlist_position"] is None
    assert tokens.read_manage_token(testing.SECRET_KEY, signup["manage_token"]) == (uuid.UUID(signup["id"]), 1)

    [message] = [m for m in outbox_messages(rt.engine) if m["type"] != "signup.availability_changed.v1"]
    assert message["type"] == "signup.confirmed.v1"
    assert message["data"]["display_name"] == "Robin"
    assert message["data"]["email"] == "Robin@example.org"  # the domain part is case-insensitive
    assert message["data"]["consent_reminders"] is True
    # The message names the registration and its token version; the notifications service signs the link.
    assert message["data"]["token_version"] == 1
    assert signup["manage_token"] not in json.dumps(message, default=str)


def test_registrations_beyond_capacity_are_waitlisted_with_their_place_in_the_queue(
    publish: Publish, register: Register, rt: Runtime
) -> None:
    event = publish(capacity=2)
    answers = [register(event["id"], n).json for n in range(1, 6)]
    assert [(a["status"], a["waitlist_position"]) for a in answers] == [
        ("confirmed", None),
        ("confirmed", None),
        ("waitlisted", 1),
        ("waitlisted", 2),
        ("waitlisted", 3),
    ]
    waitlisted = [m["data"] for m in outbox_messages(rt.engine) if m["type"] == "signup.waitlisted.v1"]
    assert [m["waitlist_position"] for m in waitlisted] == [1, 2, 3]


def test_registrations_announce_the_same_whichever_way_their_seat_was_decided(
    publish: Publish, register: Register, rt: Runtime
) -> None:
    # On PostgreSQL a public registration is decided by one statement (seats.register_at_once); one sent
    # with an Idempotency-Key goes the general way. Mixed on one event, their messages must not differ.
    event = publish(capacity=1)
    register(event["id"], 1)
    register(event["id"], 2, headers={"Idempotency-Key": "second"})
    register(event["id"], 3)
    register(event["id"], 4, headers={"Idempotency-Key": "fourth"})
    sent = outbox_messages(rt.engine)[1:]  # after the counts announced when the event was published
    registered = [(m["type"], m["data"]["display_name"], m["data"]["waitlist_position"]) for m in sent[::2]]
    assert registered == [
        ("signup.confirmed.v1", "Attendee 1", None),
        ("signup.waitlisted.v1", "Attendee 2", 1),
        ("signup.waitlisted.v1", "Attendee 3", 2),
        ("signup.waitlisted.v1", "Attendee 4", 3),
    ]
    for message in sent[::2]:
        assert set(message["data"]) == set(sent[0]["data"])
        assert str(message["data"]["event_id"]) == str(event["id"])
        assert message["data"]["status"] == message["type"].split(".")[1]
        assert message["data"]["channels"] == ["email"] and message["data"]["token_version"] == 1
    availability = [m["data"] for m in sent[1::2]]
    assert {m["type"] for m in sent[1::2]} == {"signup.availability_changed.v1"}
    assert [
        (a["capacity"], a["confirmed"], a["waitlisted"], a["waitlist_enabled"], a["seq"]) for a in availability
    ] == [
        (1, 1, 0, True, 2),
        (1, 1, 1, True, 3),
        (1, 1, 2, True, 4),
        (1, 1, 3, True, 5),
    ]
    assert {str(a["event_id"]) for a in availability} == {str(event["id"])}
    with rt.engine.connect() as conn:
        arrivals = conn.execute(sa.select(Signup.display_name, Signup.arrival).order_by(Signup.arrival)).all()
    assert [tuple(row) for row in arrivals] == [(f"Attendee {n}", n) for n in range(1, 5)]


# PostgreSQL only: on SQLite every registration goes the general way. Without this test a statement that
# never matched would pass every other one, each registration quietly taking the general way.
@pytest.mark.parametrize("module_app", ["postgresql"], indirect=True)
def test_one_statement_takes_a_registration_that_needs_no_verification_and_leaves_the_rest_alone(
    publish: Publish, rt: Runtime
) -> None:
    now = datetime.now(UTC)

    def details(n: int) -> dict[str, Any]:
        return {
            "display_name": f"Attendee {n}",
            "email": f"attendee{n}@example.org",
            "phone": None,
            "channels": ["email"],
            "timezone": None,
            "consent_reminders": False,
        }

    def counts(event_id: Any) -> tuple[Any, ...]:
        query = sa.select(Event.confirmed, Event.waitlisted, Event.arrivals).where(Event.id == event_id)
        with rt.engine.connect() as conn:
            return tuple(conn.execute(query).one())

    open_ = publish(capacity=1)
    first = seats.register_at_once(rt.engine, open_["id"], details(1), now)
    second = seats.register_at_once(rt.engine, open_["id"], details(2), now)
    assert first is not None and (first.signup.status, first.waitlist_position) == ("confirmed", None)
    assert second is not None and (second.signup.status, second.waitlist_position) == ("waitlisted", 1)
    assert counts(open_["id"]) == (1, 1, 2)
    with pytest.raises(seats.AlreadyRegistered):
        seats.register_at_once(rt.engine, open_["id"], details(1), now)
    assert counts(open_["id"]) == (1, 1, 2)

    # What it does not take it leaves untouched, for the general way to refuse or to ask for a link.
    verified = publish(verification="contact")
    full = publish(capacity=1, waitlist_enabled=False)
    assert seats.register_at_once(rt.engine, full["id"], details(3), now) is not None
    for event in (verified, full, publish(status="draft")):
        before = counts(event["id"])
        assert seats.register_at_once(rt.engine, event["id"], details(4), now) is None
        assert counts(event["id"]) == before


def test_an_event_without_capacity_confirms_everyone(publish: Publish, register: Register) -> None:
    event = publish(capacity=None)
    assert {register(event["id"], n).json["status"] for n in range(1, 5)} == {"confirmed"}


def test_a_full_event_without_waitlist_refuses_with_event_full(publish: Publish, register: Register) -> None:
    event = publish(capacity=1, waitlist_enabled=False)
    assert register(event["id"], 1).status_code == 201
    response = register(event["id"], 2)
    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    assert response.json["code"] == "event_full"


def test_the_same_email_in_other_letter_case_is_already_registered(publish: Publish, register: Register) -> None:
    event = publish()
    assert register(event["id"], email="sam@example.org").status_code == 201
    response = register(event["id"], email="SAM@EXAMPLE.ORG")
    assert response.status_code == 409
    assert response.json["code"] == "already_registered"


def test_the_same_phone_written_differently_is_already_registered(publish: Publish, register: Register) -> None:
    event = publish()
    first = register(event["id"], 1, email=None, phone="+44 7911 123456", channels=["sms"])
    assert first.status_code == 201, first.json
    response = register(event["id"], 2, email=None, phone="+447911123456", channels=["sms"])
    assert response.status_code == 409
    assert response.json["code"] == "already_registered"


def test_the_same_person_may_register_again_after_cancelling(
    publish: Publish, register: Register, client: FlaskClient
) -> None:
    event = publish()
    first = register(event["id"]).json
    client.delete(f"/v1/signups/{first['id']}", headers={"Authorization": f"Bearer {first['manage_token']}"})
    assert register(event["id"]).status_code == 201


def test_the_same_email_may_register_for_two_events(publish: Publish, register: Register) -> None:
    assert register(publish()["id"]).status_code == 201
    assert register(publish()["id"]).status_code == 201


def test_an_unknown_or_draft_event_is_not_found(publish: Publish, register: Register) -> None:
    assert register(uuid.uuid4()).status_code == 404
    draft = publish(status="draft")
    response = register(draft["id"])
    assert response.status_code == 404
    assert response.json["code"] == "not_found"


@pytest.mark.parametrize("type_, status", [("event.cancelled.v1", "cancelled"), ("event.postponed.v1", "postponed")])
def test_a_cancelled_or_postponed_event_closes_registration_and_keeps_existing_ones(
    publish: Publish, register: Register, client: FlaskClient, type_: str, status: str
) -> None:
    event = publish()
    assert register(event["id"], 1).status_code == 201
    publish(type_, id=event["id"], version=2, status=status)
    response = register(event["id"], 2)
    assert response.status_code == 409
    assert response.json["code"] == "registration_closed"
    assert client.get(f"/v1/events/{event['id']}/availability").json["confirmed"] == 1


def test_an_event_that_has_started_closes_registration(publish: Publish, register: Register) -> None:
    started = datetime.now(UTC) - timedelta(minutes=5)
    event = publish(starts_at=started, ends_at=started + timedelta(hours=1))
    response = register(event["id"])
    assert response.status_code == 409
    assert response.json["code"] == "registration_closed"


INVALID = [
    ({"email": "not-an-email"}, "email"),
    ({"email": "sam@localhost"}, "email"),
    ({"phone": "07911 123456", "email": None, "channels": ["sms"]}, "phone"),
    ({"phone": "+44 12", "email": None, "channels": ["sms"]}, "phone"),
    ({"email": None}, "email"),
    ({"channels": ["sms"]}, "channels"),
    ({"channels": ["pigeon"]}, "channels.0"),
    ({"channels": []}, "channels"),
    ({"display_name": ""}, "display_name"),
    ({"display_name": "   "}, "display_name"),
    ({"display_name": "x" * 61}, "display_name"),
    ({"display_name": "Sam\x00"}, "display_name"),
    ({"display_name": "\ud800"}, "display_name"),
    ({"email": "sam\ud800@example.org"}, "email"),
    ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
    ({"timezone": "localtime"}, "timezone"),
    ({"consent": {"reminders": "perhaps"}}, "consent.reminders"),
]


def test_invalid_input_is_a_422_naming_the_field(publish: Publish, register: Register) -> None:
    event = publish()
    for body, field in INVALID:
        response = register(event["id"], **body)
        assert response.status_code == 422, body
        assert response.mimetype == "application/problem+json"
        assert field in response.json["errors"], (body, response.json)


def test_a_phone_is_normalised_to_e164_and_a_real_timezone_kept(
    publish: Publish, register: Register, client: FlaskClient
) -> None:
    event = publish()
    signup = register(
        event["id"], phone="+44 (0)7911 123-456", channels=["email", "sms"], timezone="America/New_York"
    ).json
    view = client.get(f"/v1/signups/{signup['id']}", headers={"Authorization": f"Bearer {signup['manage_token']}"})
    assert view.json["phone"] == "+447911123456"
    assert view.json["timezone"] == "America/New_York"
    assert view.json["channels"] == ["email", "sms"]


def test_the_same_idempotency_key_and_body_replays_the_first_answer_and_creates_nothing(
    publish: Publish, register: Register, client: FlaskClient
) -> None:
    event = publish()
    first = register(event["id"], headers={"Idempotency-Key": "k-1"})
    again = register(event["id"], headers={"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 201
    assert again.json == first.json
    assert again.headers["Idempotent-Replayed"] == "true"
    assert client.get(f"/v1/events/{event['id']}/availability").json["confirmed"] == 1
    # The replayed manage token works: it is the real one.
    view = client.get(
        f"/v1/signups/{first.json['id']}", headers={"Authorization": f"Bearer {again.json['manage_token']}"}
    )
    assert view.status_code == 200


def test_a_key_the_organizer_used_is_never_replayed_to_anyone_else(
    publish: Publish, register: Register, organizer_key: str
) -> None:
    """A replay carries the registration's manage token: someone who learnt the organizer's key and the
    body it sent (say, a guessable key) gets no replay, only the answer anyone gets for that contact."""
    event = publish()
    organizer = {"Authorization": f"Bearer {organizer_key}", "Idempotency-Key": "row-1"}
    added = register(event["id"], headers=organizer)
    assert added.status_code == 201, added.json
    assert register(event["id"], headers=organizer).headers["Idempotent-Replayed"] == "true"

    someone = register(event["id"], headers={"Idempotency-Key": "row-1"})
    assert "Idempotent-Replayed" not in someone.headers
    assert someone.status_code == 409, someone.json  # the contact holds a place: a public request says so
    assert added.json["manage_token"] not in someone.get_data(as_text=True)
    assert "manage_token" not in someone.json


def test_the_same_idempotency_key_with_another_body_is_a_422(publish: Publish, register: Register) -> None:
    event = publish()
    assert register(event["id"], 1, headers={"Idempotency-Key": "k-1"}).status_code == 201
    response = register(event["id"], 2, headers={"Idempotency-Key": "k-1"})
    assert response.status_code == 422
    assert response.json["code"] == "idempotency_key_reused"


def test_no_manage_token_is_stored_in_the_clear_even_for_idempotent_replays(
    publish: Publish, register: Register, database_text: Callable[..., str]
) -> None:
    event = publish()
    signup = register(event["id"], headers={"Idempotency-Key": "k-1"}).json
    stored = database_text()  # the outbox too: messages carry no token (gather_shared.tokens)
    assert signup["manage_token"] not in stored
    assert "k-1" not in stored


def test_the_database_itself_refuses_a_second_active_registration_of_an_email_or_phone(
    publish: Publish, register: Register, rt: Runtime
) -> None:
    event = publish()
    first = register(event["id"], phone="+447911123456", channels=["email", "sms"]).json
    with rt.engine.connect() as conn:
        row = dict(conn.execute(sa.select(Signup.__table__).where(Signup.id == uuid.UUID(first["id"]))).one()._mapping)
    for same_contact in ({"email": row["email"].upper(), "phone": None}, {"email": None, "phone": row["phone"]}):
        copy = row | same_contact | {"id": uuid.uuid4(), "arrival": 99}
        with pytest.raises(IntegrityError), rt.engine.begin() as conn:
            conn.execute(sa.insert(Signup.__table__).values(copy))
    cancelled = row | {"id": uuid.uuid4(), "arrival": 98, "status": "cancelled"}
    with rt.engine.begin() as conn:  # a cancelled registration does not count
        conn.execute(sa.insert(Signup.__table__).values(cancelled))
