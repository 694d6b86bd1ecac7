"""The organizer's attendee list: only for that event's organizer, JSON pages or CSV."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from flask.testing import FlaskClient

from gather_shared import web

Publish = Callable[..., dict[str, Any]]
Register = Callable[..., Any]
Send = Callable[..., Any]


def bearer(key: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} | headers


def key_issued(send: Send, key: str, at: datetime | None = None) -> None:
    """The events service issued `key` to the organizer of the published events (at `at`, if given)."""
    data = {"organizer_id": uuid.UUID(int=1), "name": "Mind Matters", "api_key_hash": web.hash_secret(key)}
    send("organizer.key_issued.v1", data, **({"time": at} if at else {}))


def test_the_organizer_sees_every_registration_with_contacts_and_status(
    publish: Publish, register: Register, client: FlaskClient, organizer_key: str
) -> None:
    event = publish(capacity=1)
    register(event["id"], 1, display_name="Robin", phone="+447911123456", channels=["email", "sms"])
    register(event["id"], 2, display_name="Sam")
    response = client.get(f"/v1/events/{event['id']}/signups", headers=bearer(organizer_key))
    assert response.status_code == 200
    items = response.json["items"]
    assert [(i["display_name"], i["status"], i["waitlist_position"]) for i in items] == [
        ("Robin", "confirmed", None),
        ("Sam", "waitlisted", 1),
    ]
    assert items[0]["email"] == "attendee1@example.org"
    assert items[0]["phone"] == "+447911123456"
    assert "manage_token" not in items[0]
    assert response.json["next_cursor"] is None


def test_the_attendee_list_comes_in_pages_in_arrival_order(
    publish: Publish, register: Register, client: FlaskClient, organizer_key: str
) -> None:
    event = publish(capacity=None)
    for n in range(1, 6):
        register(event["id"], n)
    names, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.get(f"/v1/events/{event['id']}/signups", query_string=params, headers=bearer(organizer_key)).json
        names += [i["display_name"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert names == [f"Attendee {n}" for n in range(1, 6)]


def test_the_attendee_list_can_be_filtered_by_status(
    publish: Publish, register: Register, client: FlaskClient, organizer_key: str
) -> None:
    event = publish(capacity=1)
    register(event["id"], 1)
    register(event["id"], 2)
    response = client.get(
        f"/v1/events/{event['id']}/signups", query_string={"status": "waitlisted"}, headers=bearer(organizer_key)
    )
    assert [i["display_name"] for i in response.json["items"]] == ["Attendee 2"]


def test_a_bad_cursor_or_limit_is_a_422(publish: Publish, client: FlaskClient, organizer_key: str) -> None:
    event = publish()
    for params in ({"cursor": "%%%"}, {"limit": 0}, {"limit": 101}):
        response = client.get(f"/v1/events/{event['id']}/signups", query_string=params, headers=bearer(organizer_key))
        assert response.status_code == 422, params


def test_the_attendee_list_as_csv_opens_safely_in_a_spreadsheet(
    publish: Publish, register: Register, client: FlaskClient, organizer_key: str
) -> None:
    event = publish()
    register(event["id"], 1, display_name='=HYPERLINK("http://evil")')
    register(event["id"], 2, display_name="Sam", phone="+447911123456", channels=["sms"])
    response = client.get(f"/v1/events/{event['id']}/signups", headers=bearer(organizer_key, Accept="text/csv"))
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["display_name"] for r in rows] == ['\'=HYPERLINK("http://evil")', "Sam"]
    assert rows[1]["phone"] == "+447911123456"
    assert rows[1]["status"] == "confirmed"


def test_without_a_known_organizer_key_the_attendee_list_is_401(publish: Publish, client: FlaskClient) -> None:
    event = publish()
    assert client.get(f"/v1/events/{event['id']}/signups").status_code == 401
    response = client.get(f"/v1/events/{event['id']}/signups", headers=bearer("not-a-key"))
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"


def test_another_organizer_may_not_see_the_attendee_list(publish: Publish, send: Send, client: FlaskClient) -> None:
    event = publish()
    send(
        "organizer.key_issued.v1",
        {"organizer_id": uuid.uuid4(), "name": "Other", "api_key_hash": web.hash_secret("other-key")},
    )
    response = client.get(f"/v1/events/{event['id']}/signups", headers=bearer("other-key"))
    assert response.status_code == 403
    assert response.json["code"] == "forbidden"


def test_a_reissued_organizer_key_replaces_the_old_one(
    publish: Publish, send: Send, client: FlaskClient, organizer_key: str
) -> None:
    event = publish()
    key_issued(send, "new-key")
    assert client.get(f"/v1/events/{event['id']}/signups", headers=bearer(organizer_key)).status_code == 401
    assert client.get(f"/v1/events/{event['id']}/signups", headers=bearer("new-key")).status_code == 200


def test_a_revoked_key_arriving_late_does_not_come_back(
    publish: Publish, send: Send, client: FlaskClient, organizer_key: str
) -> None:
    event = publish()
    key_issued(send, "new-key")
    key_issued(send, "older-key", at=datetime.now(UTC) - timedelta(minutes=5))
    assert client.get(f"/v1/events/{event['id']}/signups", headers=bearer("older-key")).status_code == 401
    assert client.get(f"/v1/events/{event['id']}/signups", headers=bearer("new-key")).status_code == 200
