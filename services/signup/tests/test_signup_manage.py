"""The manage link (see / cancel with the manage token), seats freeing up and growing, availability."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient

from gather_shared import testing, tokens
from gather_shared.service import Runtime
from gather_shared.testing import outbox_messages
from gather_signup.store import Signup

Publish = Callable[..., dict[str, Any]]
Register = Callable[..., Any]
Send = Callable[..., Any]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sent(rt: Runtime, type_: str) -> list[dict[str, Any]]:
    """The messages of `type_` the service emitted (validated), with ids as the API shows them."""
    return [
        m["data"] | {"signup_id": str(m["data"]["signup_id"])} for m in outbox_messages(rt.engine) if m["type"] == type_
    ]


def test_the_manage_token_shows_the_registration(publish: Publish, register: Register, client: FlaskClient) -> None:
    event = publish(title="Grief support evening")
    signup = register(event["id"], display_name="Robin").json
    response = client.get(f"/v1/signups/{signup['id']}", headers=bearer(signup["manage_token"]))
    assert response.status_code == 200
    assert response.json["display_name"] == "Robin"
    assert response.json["status"] == "confirmed"
    assert response.json["event"]["title"] == "Grief support evening"
    assert "manage_token" not in response.json


def test_without_the_right_manage_token_a_registration_is_not_shown(
    publish: Publish, register: Register, client: FlaskClient
) -> None:
    event = publish()
    mine, theirs = register(event["id"], 1).json, register(event["id"], 2).json
    assert client.get(f"/v1/signups/{mine['id']}").status_code == 401
    assert client.get(f"/v1/signups/{mine['id']}", headers=bearer("guess")).status_code == 401
    response = client.get(f"/v1/signups/{mine['id']}", headers=bearer(theirs["manage_token"]))
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"


def test_a_manage_token_opens_its_own_registration_only_and_no_stored_copy_exists(
    publish: Publish, register: Register, client: FlaskClient, database_text: Callable[..., str]
) -> None:
    event = publish()
    mine, theirs = register(event["id"], 1).json, register(event["id"], 2).json
    for signup_id, token in ((mine["id"], theirs["manage_token"]), (theirs["id"], mine["manage_token"])):
        assert client.get(f"/v1/signups/{signup_id}", headers=bearer(token)).status_code == 401
        assert (
            client.patch(f"/v1/signups/{signup_id}", json={"display_name": "X"}, headers=bearer(token)).status_code
            == 401
        )
        assert client.delete(f"/v1/signups/{signup_id}", headers=bearer(token)).status_code == 401
    # A verify link of the very registration is no manage token either: each purpose signs its own.
    verify = tokens.verify_token(testing.SECRET_KEY, uuid.UUID(mine["id"]))
    assert client.get(f"/v1/signups/{mine['id']}", headers=bearer(verify)).status_code == 401
    # Nor is a token signed with another secret.
    forged = tokens.manage_token("not-the-secret", uuid.UUID(mine["id"]), 1)
    assert client.get(f"/v1/signups/{mine['id']}", headers=bearer(forged)).status_code == 401
    # Signed, not stored: no token is anywhere in the database, hashed or not.
    text = database_text()
    for token in (mine["manage_token"], theirs["manage_token"]):
        assert token not in text
        assert hashlib.sha256(token.encode()).hexdigest() not in text


def test_a_bumped_token_version_kills_every_older_link(
    publish: Publish, register: Register, client: FlaskClient, rt: Runtime
) -> None:
    event = publish()
    signup = register(event["id"]).json
    assert client.get(f"/v1/signups/{signup['id']}", headers=bearer(signup["manage_token"])).status_code == 200
    with rt.sessions.begin() as session:
        session.get(Signup, uuid.UUID(signup["id"])).token_version += 1
    assert client.get(f"/v1/signups/{signup['id']}", headers=bearer(signup["manage_token"])).status_code == 401
    newer = tokens.manage_token(testing.SECRET_KEY, uuid.UUID(signup["id"]), 2)
    assert client.get(f"/v1/signups/{signup['id']}", headers=bearer(newer)).status_code == 200


def test_erasure_kills_the_manage_link(publish: Publish, register: Register, client: FlaskClient) -> None:
    event = publish()
    signup = register(event["id"]).json
    response = client.delete(f"/v1/signups/{signup['id']}?erase=true", headers=bearer(signup["manage_token"]))
    assert response.status_code == 200
    assert client.get(f"/v1/signups/{signup['id']}", headers=bearer(signup["manage_token"])).status_code == 401


def test_cancelling_frees_the_seat_for_the_longest_waiting_in_the_same_answer(
    publish: Publish, register: Register, client: FlaskClient, rt: Runtime
) -> None:
    event = publish(capacity=1)
    seated, first_waiting, second_waiting = (register(event["id"], n).json for n in (1, 2, 3))
    response = client.delete(f"/v1/signups/{seated['id']}", headers=bearer(seated["manage_token"]))
    assert response.status_code == 200
    assert response.json["status"] == "cancelled"
    assert client.get(f"/v1/events/{event['id']}/availability").json == {
        "capacity": 1,
        "confirmed": 1,
        "waitlisted": 1,
        "remaining": 0,
        "waitlist_enabled": True,
        "accepting": True,
    }
    promoted = client.get(f"/v1/signups/{first_waiting['id']}", headers=bearer(first_waiting["manage_token"])).json
    assert promoted["status"] == "confirmed"
    still_waiting = client.get(f"/v1/signups/{second_waiting['id']}", headers=bearer(second_waiting["manage_token"]))
    assert still_waiting.json["waitlist_position"] == 1
    assert [m["signup_id"] for m in sent(rt, "signup.cancelled.v1")] == [seated["id"]]
    assert [(m["signup_id"], m["status"]) for m in sent(rt, "signup.promoted.v1")] == [
        (first_waiting["id"], "confirmed")
    ]


def test_cancelling_twice_is_harmless(publish: Publish, register: Register, client: FlaskClient, rt: Runtime) -> None:
    event = publish(capacity=1)
    seated, waiting = register(event["id"], 1).json, register(event["id"], 2).json
    for _ in range(2):
        response = client.delete(f"/v1/signups/{seated['id']}", headers=bearer(seated["manage_token"]))
        assert response.status_code == 200
        assert response.json["status"] == "cancelled"
    assert len(sent(rt, "signup.cancelled.v1")) == 1
    assert [m["signup_id"] for m in sent(rt, "signup.promoted.v1")] == [waiting["id"]]


def test_cancelling_a_waitlisted_registration_moves_the_others_up(
    publish: Publish, register: Register, client: FlaskClient
) -> None:
    event = publish(capacity=1)
    _, first, second = (register(event["id"], n).json for n in (1, 2, 3))
    client.delete(f"/v1/signups/{first['id']}", headers=bearer(first["manage_token"]))
    view = client.get(f"/v1/signups/{second['id']}", headers=bearer(second["manage_token"])).json
    assert (view["status"], view["waitlist_position"]) == ("waitlisted", 1)


def test_more_seats_promote_the_longest_waiting_in_arrival_order(
    publish: Publish, register: Register, client: FlaskClient, rt: Runtime
) -> None:
    event = publish(capacity=1)
    answers = [register(event["id"], n).json for n in range(1, 5)]
    publish("event.updated.v1", id=event["id"], version=2, capacity=3)
    assert [m["signup_id"] for m in sent(rt, "signup.promoted.v1")] == [answers[1]["id"], answers[2]["id"]]
    counts = client.get(f"/v1/events/{event['id']}/availability").json
    assert (counts["confirmed"], counts["waitlisted"], counts["remaining"]) == (3, 1, 0)


def test_an_unlimited_capacity_promotes_everyone_waiting(
    publish: Publish, register: Register, client: FlaskClient
) -> None:
    event = publish(capacity=1)
    for n in range(1, 4):
        register(event["id"], n)
    publish("event.updated.v1", id=event["id"], version=2, capacity=None)
    counts = client.get(f"/v1/events/{event['id']}/availability").json
    assert (counts["confirmed"], counts["waitlisted"], counts["remaining"]) == (3, 0, None)


def test_fewer_seats_remove_nobody_and_give_no_seat_until_enough_cancel(
    publish: Publish, register: Register, client: FlaskClient, rt: Runtime
) -> None:
    event = publish(capacity=3)
    seated = [register(event["id"], n).json for n in (1, 2, 3)]
    publish("event.updated.v1", id=event["id"], version=2, capacity=1)
    waiting = register(event["id"], 4).json
    assert waiting["status"] == "waitlisted"
    counts = client.get(f"/v1/events/{event['id']}/availability").json
    assert (counts["confirmed"], counts["remaining"]) == (3, 0)

    client.delete(f"/v1/signups/{seated[0]['id']}", headers=bearer(seated[0]["manage_token"]))
    client.delete(f"/v1/signups/{seated[1]['id']}", headers=bearer(seated[1]["manage_token"]))
    assert sent(rt, "signup.promoted.v1") == []  # still one confirmed for one seat
    client.delete(f"/v1/signups/{seated[2]['id']}", headers=bearer(seated[2]["manage_token"]))
    assert [m["signup_id"] for m in sent(rt, "signup.promoted.v1")] == [waiting["id"]]


def test_an_older_event_version_arriving_late_changes_nothing(
    publish: Publish, register: Register, client: FlaskClient
) -> None:
    event = publish(capacity=1)
    register(event["id"], 1)
    register(event["id"], 2)
    publish("event.updated.v1", id=event["id"], version=3, capacity=1)
    publish("event.updated.v1", id=event["id"], version=2, capacity=5)
    assert client.get(f"/v1/events/{event['id']}/availability").json["capacity"] == 1


def test_a_redelivered_capacity_change_promotes_only_once(
    publish: Publish, register: Register, send: Send, rt: Runtime
) -> None:
    event = publish(capacity=1)
    for n in range(1, 4):
        register(event["id"], n)
    grown = {"event": event | {"version": 2, "capacity": 2}, "changes": {"capacity": {"old": 1, "new": 2}}}
    send("event.updated.v1", grown, message_id="same-id")
    send("event.updated.v1", grown, message_id="same-id")
    assert len(sent(rt, "signup.promoted.v1")) == 1


def test_a_cancelled_event_promotes_nobody(
    publish: Publish, register: Register, client: FlaskClient, rt: Runtime
) -> None:
    event = publish(capacity=1)
    seated, _ = register(event["id"], 1).json, register(event["id"], 2).json
    publish("event.cancelled.v1", id=event["id"], version=2, status="cancelled")
    client.delete(f"/v1/signups/{seated['id']}", headers=bearer(seated["manage_token"]))
    assert sent(rt, "signup.promoted.v1") == []


def test_availability_shows_counts_only_and_whether_registration_is_open(
    publish: Publish, register: Register, client: FlaskClient
) -> None:
    event = publish(capacity=2, waitlist_enabled=False)
    register(event["id"], 1)
    response = client.get(f"/v1/events/{event['id']}/availability")
    assert response.json == {
        "capacity": 2,
        "confirmed": 1,
        "waitlisted": 0,
        "remaining": 1,
        "waitlist_enabled": False,
        "accepting": True,
    }
    register(event["id"], 2)
    assert client.get(f"/v1/events/{event['id']}/availability").json["accepting"] is False


def test_availability_of_a_draft_or_unknown_event_is_not_found(publish: Publish, client: FlaskClient) -> None:
    draft = publish(status="draft")
    assert client.get(f"/v1/events/{draft['id']}/availability").status_code == 404


def test_every_change_of_the_seats_is_announced_with_a_growing_seq_and_no_contact_details(
    publish: Publish, register: Register, client: FlaskClient, rt: Runtime
) -> None:
    event = publish(capacity=1)
    seated, waiting = register(event["id"], 1).json, register(event["id"], 2).json
    client.delete(f"/v1/signups/{seated['id']}", headers=bearer(seated["manage_token"]))
    publish("event.updated.v1", id=event["id"], version=2, capacity=5)
    counts = [
        (m["data"]["seq"], m["data"]["capacity"], m["data"]["confirmed"], m["data"]["waitlisted"])
        for m in outbox_messages(rt.engine)
        if m["type"] == "signup.availability_changed.v1"
    ]
    # published; the first takes the seat; the second waits; the first cancels and the second moves up;
    # the capacity grows
    assert counts == [(1, 1, 0, 0), (2, 1, 1, 0), (3, 1, 1, 1), (4, 1, 1, 0), (5, 5, 1, 0)]
    assert waiting["status"] == "waitlisted"
    announced = [m["data"] for m in outbox_messages(rt.engine) if m["type"] == "signup.availability_changed.v1"]
    assert not any("attendee" in repr(data) for data in announced)


def test_the_manage_token_changes_the_name_channels_time_zone_and_reminders_and_says_so(
    publish: Publish, register: Register, client: FlaskClient, rt: Runtime
) -> None:
    event = publish()
    signup = register(event["id"], phone="+447911123456", channels=["email"]).json
    response = client.patch(
        f"/v1/signups/{signup['id']}",
        json={
            "display_name": " Robin ",
            "channels": ["sms", "email", "sms"],
            "timezone": "Europe/Madrid",
            "consent": {"reminders": True},
        },
        headers=bearer(signup["manage_token"]),
    )
    assert response.status_code == 200, response.json
    view = response.json
    assert (view["display_name"], view["channels"], view["timezone"]) == ("Robin", ["email", "sms"], "Europe/Madrid")
    assert view["consent"] == {"reminders": True}
    [told] = sent(rt, "signup.updated.v1")
    assert (told["display_name"], told["channels"], told["consent_reminders"]) == ("Robin", ["email", "sms"], True)
    only_name = client.patch(
        f"/v1/signups/{signup['id']}", json={"display_name": "Rob"}, headers=bearer(signup["manage_token"])
    )
    assert (only_name.json["display_name"], only_name.json["channels"]) == ("Rob", ["email", "sms"])


def test_a_change_is_refused_without_the_manage_token_for_a_channel_without_contact_or_once_cancelled(
    publish: Publish, register: Register, client: FlaskClient
) -> None:
    event = publish()
    mine, theirs = register(event["id"], 1).json, register(event["id"], 2).json
    url = f"/v1/signups/{mine['id']}"
    assert client.patch(url, json={"display_name": "X"}, headers=bearer(theirs["manage_token"])).status_code == 401
    no_phone = client.patch(url, json={"channels": ["sms"]}, headers=bearer(mine["manage_token"]))
    assert no_phone.status_code == 422
    assert list(no_phone.json["errors"]) == ["channels"]
    blank = client.patch(url, json={"display_name": "   "}, headers=bearer(mine["manage_token"]))
    assert blank.status_code == 422
    assert list(blank.json["errors"]) == ["display_name"]
    client.delete(url, headers=bearer(mine["manage_token"]))
    cancelled = client.patch(url, json={"display_name": "Back"}, headers=bearer(mine["manage_token"]))
    assert cancelled.status_code == 409
    assert cancelled.json["code"] == "registration_cancelled"
