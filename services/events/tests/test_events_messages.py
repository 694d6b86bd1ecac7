"""What the events service tells the other services: one message per change, in the same transaction,
each carrying the whole event, valid against its shared schema (client.messages() parses and validates
every one exactly as a consumer would)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any


def event_messages(client: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(m["type"], m["data"]) for m in client.messages() if m["type"].startswith("event.")]


def test_every_change_of_a_visible_event_is_announced_with_the_whole_event(client: Any, key: str) -> None:
    event = client.published(key, format="hybrid", online_url="https://meet.example.org/circle")
    url = f"/v1/events/{event['id']}"
    client.call("PATCH", url, key, json={"capacity": 20})
    client.call("POST", f"{url}/postpone", key, json={"reason": "Venue flooded"})
    start = datetime.fromisoformat(event["starts_at"]) + timedelta(days=7)
    client.call(
        "PATCH", url, key, json={"starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=2)).isoformat()}
    )
    client.call("POST", f"{url}/cancel", key, json={"reason": "Facilitator unwell"})

    sent = event_messages(client)
    assert [t for t, _ in sent] == [
        "event.published.v1",
        "event.updated.v1",
        "event.postponed.v1",
        "event.updated.v1",
        "event.cancelled.v1",
    ]
    assert [d["event"]["version"] for _, d in sent] == [2, 3, 4, 5, 6]
    assert [d["event"]["status"] for _, d in sent] == ["published", "published", "postponed", "published", "cancelled"]
    assert all(d["event"]["online_url"] == "https://meet.example.org/circle" for _, d in sent)
    assert all(d["event"]["organizer_name"] == "Mind Matters" for _, d in sent)
    assert sent[2][1]["reason"] == "Venue flooded"
    assert sent[4][1]["reason"] == "Facilitator unwell"


def test_an_update_lists_each_changed_field_with_old_and_new_values(client: Any, key: str) -> None:
    event = client.published(key)
    venue = {"name": "Library", "address": "2 Park Row", "city": "Leeds", "postcode": None}
    client.call(
        "PATCH", f"/v1/events/{event['id']}", key, json={"venue": venue, "capacity": 10, "title": "Evening circle"}
    )

    [(_, data)] = [m for m in event_messages(client) if m[0] == "event.updated.v1"]
    assert data["changes"] == {
        "title": {"old": "Peer support circle", "new": "Evening circle"},
        "venue": {"old": event["venue"], "new": venue},
    }


def test_a_new_time_for_a_postponed_event_republishes_it_with_the_status_among_the_changes(
    client: Any, key: str
) -> None:
    event = client.published(key)
    client.call("POST", f"/v1/events/{event['id']}/postpone", key, json={})
    old_start = datetime.fromisoformat(event["starts_at"])
    new_start = old_start + timedelta(days=3)
    new_end = new_start + timedelta(hours=1)
    response = client.call(
        "PATCH",
        f"/v1/events/{event['id']}",
        key,
        json={"starts_at": new_start.isoformat(), "ends_at": new_end.isoformat()},
    )
    assert response.json["status"] == "published"

    _, data = event_messages(client)[-1]
    assert data["changes"]["status"] == {"old": "postponed", "new": "published"}
    assert datetime.fromisoformat(data["changes"]["starts_at"]["old"]) == old_start
    assert datetime.fromisoformat(data["changes"]["starts_at"]["new"]) == new_start
    assert data["event"]["status"] == "published"


def test_confirming_the_old_time_of_a_postponed_event_republishes_it(client: Any, key: str) -> None:
    event = client.published(key)
    client.call("POST", f"/v1/events/{event['id']}/postpone", key, json={})
    response = client.call("PATCH", f"/v1/events/{event['id']}", key, json={"starts_at": event["starts_at"]})
    assert response.json["status"] == "published"
    assert response.json["version"] == event["version"] + 2
    _, data = event_messages(client)[-1]
    assert data["changes"] == {"status": {"old": "postponed", "new": "published"}}


def test_other_changes_to_a_postponed_event_keep_it_postponed(client: Any, key: str) -> None:
    event = client.published(key)
    client.call("POST", f"/v1/events/{event['id']}/postpone", key, json={})
    response = client.call("PATCH", f"/v1/events/{event['id']}", key, json={"title": "Still on hold"})
    assert response.json["status"] == "postponed"
    _, data = event_messages(client)[-1]
    assert set(data["changes"]) == {"title"}


def test_a_refused_change_sends_nothing(client: Any, key: str) -> None:
    event = client.published(key)
    before = client.messages()
    client.call("POST", f"/v1/events/{event['id']}/publish", key)
    client.call("PATCH", f"/v1/events/{event['id']}", key, json={"capacity": 0})
    client.call("PATCH", f"/v1/events/{event['id']}", key, json={"title": event["title"]})
    assert client.messages() == before
