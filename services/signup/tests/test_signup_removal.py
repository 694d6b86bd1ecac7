"""The organizer removes an attendee: only that event's organizer, with a reason the attendee is told; the
freed seat goes to the longest-waiting in the same transaction."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient

from gather_shared import web
from gather_shared.service import Runtime
from gather_shared.testing import outbox_messages

Publish = Callable[..., dict[str, Any]]
Register = Callable[..., Any]
Send = Callable[..., Any]

REASON = {"reason": "The group is for carers, and you told us you are not caring for anyone just now."}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def sent(rt: Runtime, type_: str) -> list[dict[str, Any]]:
    return [m["data"] for m in outbox_messages(rt.engine) if m["type"] == type_]


def remove(client: FlaskClient, event_id: Any, signup_id: Any, key: str | None, body: Any = REASON) -> Any:
    headers = bearer(key) if key else {}
    return client.delete(f"/v1/events/{event_id}/signups/{signup_id}", json=body, headers=headers)


def test_removing_an_attendee_gives_their_seat_to_the_longest_waiting_in_the_same_answer(
    publish: Publish, register: Register, client: FlaskClient, organizer_key: str, rt: Runtime
) -> None:
    event = publish(capacity=1)
    seated, first_waiting, second_waiting = (register(event["id"], n).json for n in (1, 2, 3))

    response = remove(client, event["id"], seated["id"], organizer_key)

    assert response.status_code == 200, response.json
    assert response.json["status"] == "cancelled"
    assert response.json["promoted"] == [first_waiting["id"]]
    assert response.headers["Cache-Control"] == "no-store"
    listed = client.get(f"/v1/events/{event['id']}/signups", headers=bearer(organizer_key)).json["items"]
    assert [(i["id"], i["status"], i["waitlist_position"]) for i in listed] == [
        (seated["id"], "cancelled", None),
        (first_waiting["id"], "confirmed", None),
        (second_waiting["id"], "waitlisted", 1),
    ]
    assert client.get(f"/v1/events/{event['id']}/availability").json["confirmed"] == 1


def test_the_attendee_is_told_with_the_reason_and_no_more_than_other_registration_messages_carry(
    publish: Publish, register: Register, client: FlaskClient, organizer_key: str, rt: Runtime
) -> None:
    event = publish(capacity=1)
    seated, waiting = register(event["id"], 1).json, register(event["id"], 2).json
    remove(client, event["id"], seated["id"], organizer_key)

    [removed] = sent(rt, "signup.removed.v1")
    assert removed["signup_id"] == uuid.UUID(seated["id"])
    assert removed["status"] == "cancelled"
    assert removed["reason"] == REASON["reason"]
    [confirmed] = [m for m in sent(rt, "signup.confirmed.v1") if m["signup_id"] == uuid.UUID(seated["id"])]
    assert set(removed) - set(confirmed) == {"reason"}
    assert [m["signup_id"] for m in sent(rt, "signup.promoted.v1")] == [uuid.UUID(waiting["id"])]
    assert sent(rt, "signup.cancelled.v1") == []  # one notice, the kind one, not a second "you cancelled"


def test_removing_twice_is_harmless_and_tells_the_attendee_once(
    publish: Publish, register: Register, client: FlaskClient, organizer_key: str, rt: Runtime
) -> None:
    event = publish(capacity=1)
    seated, waiting = register(event["id"], 1).json, register(event["id"], 2).json
    assert remove(client, event["id"], seated["id"], organizer_key).json["promoted"] == [waiting["id"]]
    again = remove(client, event["id"], seated["id"], organizer_key)
    assert again.status_code == 200
    assert again.json["promoted"] == []
    assert len(sent(rt, "signup.removed.v1")) == 1
    assert len(sent(rt, "signup.promoted.v1")) == 1


def test_removing_a_waitlisted_attendee_moves_the_others_up(
    publish: Publish, register: Register, client: FlaskClient, organizer_key: str
) -> None:
    event = publish(capacity=1)
    _, first_waiting, second_waiting = (register(event["id"], n).json for n in (1, 2, 3))
    assert remove(client, event["id"], first_waiting["id"], organizer_key).json["promoted"] == []
    listed = client.get(
        f"/v1/events/{event['id']}/signups", query_string={"status": "waitlisted"}, headers=bearer(organizer_key)
    ).json["items"]
    assert [(i["id"], i["waitlist_position"]) for i in listed] == [(second_waiting["id"], 1)]


def test_only_the_events_organizer_may_remove_an_attendee(
    publish: Publish, register: Register, send: Send, client: FlaskClient, organizer_key: str, rt: Runtime
) -> None:
    event = publish(capacity=1)
    seated = register(event["id"], 1).json
    send(
        "organizer.key_issued.v1",
        {"organizer_id": uuid.uuid4(), "name": "Other", "api_key_hash": web.hash_secret("other-organizer-key")},
    )
    # Checked before the body: a caller without the right key learns nothing, not even what input is valid.
    for key, body, status in (
        (None, REASON, 401),
        ("not-a-key", {}, 401),
        (seated["manage_token"], REASON, 401),  # the attendee's own token cancels at /v1/signups/{id} only
        ("other-organizer-key", {}, 403),
        ("other-organizer-key", REASON, 403),
    ):
        response = remove(client, event["id"], seated["id"], key, body)
        assert response.status_code == status, (key, response.json)
        assert response.mimetype == "application/problem+json"
    assert sent(rt, "signup.removed.v1") == []
    assert client.get(f"/v1/events/{event['id']}/availability").json["confirmed"] == 1


def test_an_unknown_registration_or_another_events_is_a_404(
    publish: Publish, register: Register, client: FlaskClient, organizer_key: str, rt: Runtime
) -> None:
    event, other_event = publish(capacity=5), publish(capacity=5)
    elsewhere = register(other_event["id"], 1).json
    assert remove(client, event["id"], uuid.uuid4(), organizer_key).status_code == 404
    assert remove(client, event["id"], elsewhere["id"], organizer_key).status_code == 404
    assert remove(client, uuid.uuid4(), elsewhere["id"], organizer_key).status_code == 404
    assert sent(rt, "signup.removed.v1") == []
    assert client.get(f"/v1/events/{other_event['id']}/availability").json["confirmed"] == 1


def test_a_registration_whose_contact_was_never_verified_cannot_be_removed(
    publish: Publish, register: Register, client: FlaskClient, organizer_key: str, rt: Runtime
) -> None:
    """The attendee list never shows a pending registration: removing one is a 404 like an unknown id."""
    event = publish(verification="contact", kind="support_group")
    assert register(event["id"], 1).status_code == 202
    [asked] = sent(rt, "signup.verification_requested.v1")
    assert remove(client, event["id"], asked["signup_id"], organizer_key).status_code == 404


def test_a_removal_without_a_reason_is_a_422_naming_the_field(
    publish: Publish, register: Register, client: FlaskClient, organizer_key: str
) -> None:
    event = publish()
    seated = register(event["id"], 1).json
    for body in ({}, {"reason": ""}, {"reason": "x" * 501}, {"reason": "two\nlines"}, {"reason": 7}):
        response = remove(client, event["id"], seated["id"], organizer_key, body)
        assert response.status_code == 422, body
        assert list(response.json["errors"]) == ["reason"]
    response = client.delete(
        f"/v1/events/{event['id']}/signups/{seated['id']}", data="not json", headers=bearer(organizer_key)
    )
    assert response.status_code == 422
