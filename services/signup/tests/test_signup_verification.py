"""Verified registration (double opt-in): the answer to a request tells nobody whether a contact is
registered; only following the link sent to the contact takes the place; unverified requests lapse."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from gather_shared import testing, tokens, web
from gather_shared.db import utcnow
from gather_shared.service import Runtime
from gather_shared.testing import outbox_messages
from gather_signup import verification
from gather_signup.store import Signup

Publish = Callable[..., dict[str, Any]]
Register = Callable[..., Any]
VerifyToken = Callable[[str], str]
VERIFY = {"verification": "contact", "kind": "support_group"}


def about_people(rt: Runtime) -> list[dict[str, Any]]:
    """The messages about registrations (not the seat counts), oldest first."""
    return [m for m in outbox_messages(rt.engine) if m["type"] != "signup.availability_changed.v1"]


def shape(response: Any) -> tuple[int, list[str], str]:
    """What a caller can compare between two answers: status, fields, and the body's status word."""
    return response.status_code, sorted(response.json), response.json["status"]


def test_the_answer_is_the_same_whether_the_contact_is_new_pending_or_registered(
    publish: Publish, register: Register, rt: Runtime, verify_token: VerifyToken, client: FlaskClient
) -> None:
    event = publish(**VERIFY)
    registered = register(event["id"], 1)
    client.post(f"/v1/verifications/{verify_token('attendee1@example.org')}")
    pending = register(event["id"], 2)
    before = len(about_people(rt))

    answers = {
        "new": register(event["id"], 3),
        "pending": register(event["id"], 2),
        "registered": register(event["id"], 1, email="ATTENDEE1@example.org"),
    }
    assert {who: shape(answer) for who, answer in answers.items()} == {
        who: (202, ["expires_at", "status"], "check_your_messages") for who in answers
    }
    assert shape(registered) == shape(pending) == shape(answers["new"])
    for answer in answers.values():
        assert datetime.fromisoformat(answer.json["expires_at"]) > utcnow() + timedelta(minutes=29)
    # Each request sends one message, to the registration that holds the contact: a verify link to the
    # new and the pending one, a manage link to the registered one (its contact alone hears of it).
    sent = about_people(rt)[before:]
    assert [(m["type"], m["data"]["email"], m["data"]["link_request"]) for m in sent] == [
        ("signup.verification_requested.v1", "attendee3@example.org", 1),
        ("signup.verification_requested.v1", "attendee2@example.org", 2),
        ("signup.manage_link_requested.v1", "attendee1@example.org", 2),
    ]
    availability = client.get(f"/v1/events/{event['id']}/availability").json
    assert (availability["confirmed"], availability["waitlisted"]) == (1, 0)  # pending ones count nowhere


def test_a_second_request_never_changes_the_registration_it_finds(
    publish: Publish, register: Register, rt: Runtime
) -> None:
    event = publish(**VERIFY)
    register(event["id"], 1, display_name="Robin")
    # Someone else types the same email with their own phone: the link still goes to Robin's contact only.
    register(event["id"], 9, email="attendee1@example.org", phone="+447911123456", channels=["sms"])
    first, second = (m["data"] for m in about_people(rt))
    assert first["signup_id"] == second["signup_id"]
    assert (second["display_name"], second["phone"], second["channels"]) == ("Robin", None, ["email"])


def test_following_the_link_takes_the_place_by_the_seat_rule_once(
    publish: Publish, register: Register, rt: Runtime, verify_token: VerifyToken, client: FlaskClient
) -> None:
    event = publish(capacity=1, **VERIFY)
    for n in (1, 2):
        register(event["id"], n)
    # The second to ask is the first to verify: the seat goes to whoever verifies first.
    seated = client.post(f"/v1/verifications/{verify_token('attendee2@example.org')}")
    assert seated.status_code == 200, seated.json
    assert (seated.json["status"], seated.json["waitlist_position"]) == ("confirmed", None)
    assert tokens.read_manage_token(testing.SECRET_KEY, seated.json["manage_token"]) == (
        uuid.UUID(seated.json["id"]),
        1,
    )
    waiting = client.post(f"/v1/verifications/{verify_token('attendee1@example.org')}").json
    assert (waiting["status"], waiting["waitlist_position"]) == ("waitlisted", 1)
    assert [m["type"] for m in about_people(rt)][-2:] == ["signup.confirmed.v1", "signup.waitlisted.v1"]

    again = client.post(f"/v1/verifications/{verify_token('attendee2@example.org')}")
    assert again.status_code == 410
    assert again.mimetype == "application/problem+json"
    assert again.json["code"] == "link_expired"
    view = client.get(
        f"/v1/signups/{seated.json['id']}", headers={"Authorization": f"Bearer {seated.json['manage_token']}"}
    )
    assert view.json["status"] == "confirmed"


def test_an_expired_or_foreign_link_takes_nothing(
    publish: Publish, register: Register, rt: Runtime, verify_token: VerifyToken, client: FlaskClient
) -> None:
    event = publish(**VERIFY)
    register(event["id"], 1)
    signup_id = about_people(rt)[0]["data"]["signup_id"]

    class HourOld(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 3600

    old = URLSafeTimedSerializer(testing.SECRET_KEY, salt="verify", signer=HourOld).dumps({"s": str(signup_id)})
    assert client.post(f"/v1/verifications/{old}").status_code == 410
    forged = URLSafeTimedSerializer("another secret", salt="verify").dumps({"s": str(signup_id)})
    assert client.post(f"/v1/verifications/{forged}").status_code == 404
    manage = tokens.manage_token(testing.SECRET_KEY, signup_id, 1)  # a token for another purpose
    assert client.post(f"/v1/verifications/{manage}").status_code == 404
    assert client.post("/v1/verifications/%C3%A9").status_code == 404
    assert client.get(f"/v1/events/{event['id']}/availability").json["confirmed"] == 0
    assert client.post(f"/v1/verifications/{verify_token('attendee1@example.org')}").status_code == 200


def test_an_unverified_registration_lapses_and_frees_its_contact(
    publish: Publish, register: Register, rt: Runtime, verify_token: VerifyToken, client: FlaskClient
) -> None:
    event = publish(capacity=1, **VERIFY)
    register(event["id"], 1, phone="+447911123456", channels=["email", "sms"])
    link = verify_token("attendee1@example.org")
    asked_at = utcnow()

    with rt.sessions.begin() as session:
        assert verification.lapse_expired(session, asked_at + timedelta(minutes=29), 30) == 0
    with rt.sessions.begin() as session:
        assert verification.lapse_expired(session, asked_at + timedelta(minutes=31), 30) == 1
    with rt.sessions() as session:
        [lapsed] = session.scalars(sa.select(Signup)).all()
        assert lapsed.status == "lapsed"
        # The contact nobody proved is not kept: here, nor in the notifications service (told to forget).
        assert (lapsed.email, lapsed.phone, lapsed.display_name) == (None, None, None)
    assert about_people(rt)[-1]["type"] == "signup.erased.v1"
    assert client.post(f"/v1/verifications/{link}").status_code == 410

    # The contact is free again: asking anew starts a new registration, which may take the seat.
    assert register(event["id"], 1).status_code == 202
    answer = client.post(f"/v1/verifications/{verify_token('attendee1@example.org')}")
    assert (answer.status_code, answer.json["status"]) == (200, "confirmed")
    assert answer.json["id"] != str(lapsed.id)
    availability = client.get(f"/v1/events/{event['id']}/availability").json
    assert (availability["confirmed"], availability["remaining"]) == (1, 0)


def test_a_link_followed_after_its_registration_should_have_lapsed_is_refused(
    publish: Publish, register: Register, rt: Runtime, verify_token: VerifyToken
) -> None:
    event = publish(**VERIFY)
    register(event["id"], 1)
    link = verify_token("attendee1@example.org")
    with rt.sessions.begin() as session, pytest.raises(verification.LinkGone):
        verification.verify(session, testing.SECRET_KEY, link, utcnow() + timedelta(minutes=31), 30)


def test_pending_and_lapsed_registrations_are_on_no_attendee_list(
    publish: Publish,
    register: Register,
    rt: Runtime,
    verify_token: VerifyToken,
    client: FlaskClient,
    organizer_key: str,
) -> None:
    event = publish(**VERIFY)
    for n in (1, 2, 3):
        register(event["id"], n)
    client.post(f"/v1/verifications/{verify_token('attendee1@example.org')}")
    with rt.sessions.begin() as session:
        session.execute(
            sa.update(Signup)
            .where(Signup.email == "attendee3@example.org")
            .values(link_requested_at=datetime(2020, 1, 1, tzinfo=UTC))
        )
        verification.lapse_expired(session, utcnow(), 30)
    headers = {"Authorization": f"Bearer {organizer_key}"}
    listed = client.get(f"/v1/events/{event['id']}/signups", headers=headers).json["items"]
    assert [(a["email"], a["status"]) for a in listed] == [("attendee1@example.org", "confirmed")]
    csv = client.get(f"/v1/events/{event['id']}/signups", headers=headers | {"Accept": "text/csv"}).text
    assert "attendee2" not in csv and "attendee3" not in csv
    assert client.get(f"/v1/events/{event['id']}/signups?status=pending", headers=headers).status_code == 422


def test_the_organizer_adds_someone_at_once_and_only_to_their_own_event(
    publish: Publish, register: Register, organizer_key: str, send: Callable[..., Any]
) -> None:
    event = publish(**VERIFY)
    added = register(event["id"], 1, headers={"Authorization": f"Bearer {organizer_key}"})
    assert (added.status_code, added.json["status"]) == (201, "confirmed")
    again = register(event["id"], 1, headers={"Authorization": f"Bearer {organizer_key}"})
    assert (again.status_code, again.json["code"]) == (409, "already_registered")  # organizers may know

    assert register(event["id"], 2, headers={"Authorization": "Bearer not-a-key"}).status_code == 401
    other = {"organizer_id": uuid.uuid4(), "name": "Other", "api_key_hash": web.hash_secret("other-key")}
    send("organizer.key_issued.v1", other)
    assert register(event["id"], 2, headers={"Authorization": "Bearer other-key"}).status_code == 403


def test_an_event_without_verification_takes_registrations_at_once(publish: Publish, register: Register) -> None:
    event = publish(kind="workshop", verification="none")
    assert register(event["id"], 1).status_code == 201
    assert register(event["id"], 1).json["code"] == "already_registered"


@pytest.mark.parametrize("mode", [VERIFY, {"verification": "none", "kind": "workshop"}])
def test_registration_is_closed_before_it_opens(
    publish: Publish, register: Register, client: FlaskClient, mode: dict[str, str]
) -> None:
    event = publish(registration_opens_at=utcnow() + timedelta(days=1), **mode)
    response = register(event["id"])
    assert (response.status_code, response.json["code"]) == (409, "registration_closed")
    assert "not opened yet" in response.json["detail"]
    assert client.get(f"/v1/events/{event['id']}/availability").json["accepting"] is False
    publish(
        "event.updated.v1", id=event["id"], version=2, registration_opens_at=utcnow() - timedelta(minutes=1), **mode
    )
    assert register(event["id"]).status_code in (201, 202)


def test_a_full_event_without_a_waitlist_refuses_everyone_alike(
    publish: Publish, register: Register, verify_token: VerifyToken, client: FlaskClient
) -> None:
    event = publish(capacity=1, waitlist_enabled=False, **VERIFY)
    register(event["id"], 1)
    register(event["id"], 2)
    assert client.post(f"/v1/verifications/{verify_token('attendee1@example.org')}").status_code == 200
    # The second to verify meets the full event; the link stays usable should a seat free up.
    full = client.post(f"/v1/verifications/{verify_token('attendee2@example.org')}")
    assert (full.status_code, full.json["code"]) == (409, "event_full")
    # Asking now is refused for a registered, a pending and a new contact alike.
    for n in (1, 2, 3):
        response = register(event["id"], n)
        assert (response.status_code, response.json["code"]) == (409, "event_full")
