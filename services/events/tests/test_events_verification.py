"""How an event takes registrations: `verification` (a link to the contact first, or at once) and
`registration_opens_at`, as an organizer sets them and as the other services hear of them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from gather_shared import testing


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    return response.json


def test_an_event_verifies_its_attendees_contact_unless_its_organizer_says_otherwise(client: Any, key: str) -> None:
    assert client.draft(key)["verification"] == "contact"
    open_day = client.published(key, kind="workshop", verification="none")
    assert open_day["verification"] == "none"
    listed = client.call("GET", "/v1/events").json["items"]
    assert [item["verification"] for item in listed] == ["none"]
    [message] = [m for m in client.messages() if m["type"] == "event.published.v1"]
    assert message["data"]["event"]["verification"] == "none"


def test_a_support_group_always_verifies_its_attendees(client: Any, key: str) -> None:
    body = testing.event_body(kind="support_group", verification="none")
    assert "verification" in problem(client.call("POST", "/v1/events", key, json=body), 422)["errors"]

    workshop = client.draft(key, kind="workshop", verification="none")
    answer = client.call("PATCH", f"/v1/events/{workshop['id']}", key, json={"kind": "support_group"})
    assert "verification" in problem(answer, 422)["errors"]
    event = client.draft(key)
    answer = client.call("PATCH", f"/v1/events/{event['id']}", key, json={"verification": "none"})
    assert "verification" in problem(answer, 422)["errors"]
    assert (
        "verification"
        in problem(client.call("POST", "/v1/events", key, json=testing.event_body(verification="maybe")), 422)["errors"]
    )


def test_registration_opens_before_the_event_starts(client: Any, key: str) -> None:
    body = testing.event_body()
    starts = datetime.fromisoformat(body["starts_at"])
    late = testing.event_body(registration_opens_at=(starts + timedelta(minutes=1)).isoformat())
    assert "registration_opens_at" in problem(client.call("POST", "/v1/events", key, json=late), 422)["errors"]

    opens = (starts - timedelta(days=2)).isoformat()
    event = client.published(key, registration_opens_at=opens)
    assert datetime.fromisoformat(event["registration_opens_at"]) == datetime.fromisoformat(opens)
    assert datetime.fromisoformat(client.call("GET", f"/v1/events/{event['id']}").json["registration_opens_at"]) == (
        datetime.fromisoformat(opens)
    )
    later = (starts + timedelta(days=1)).isoformat()
    answer = client.call("PATCH", f"/v1/events/{event['id']}", key, json={"registration_opens_at": later})
    assert "registration_opens_at" in problem(answer, 422)["errors"]

    answer = client.call("PATCH", f"/v1/events/{event['id']}", key, json={"registration_opens_at": None})
    assert answer.status_code == 200, answer.json
    [*_, update] = client.messages()
    assert update["type"] == "event.updated.v1"
    assert update["data"]["event"]["registration_opens_at"] is None
    assert set(update["data"]["changes"]) == {"registration_opens_at"}
