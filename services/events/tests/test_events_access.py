"""Who may do what: the admin creates organizers, an organizer's key opens only their own events, and a
new key revokes the old one here and, through organizer.key_issued.v1, in the other services."""

from __future__ import annotations

from typing import Any

import pytest

from gather_shared import testing
from gather_shared.web import hash_secret

ACTIONS = ["publish", "postpone", "cancel"]


@pytest.fixture
def other(client: Any) -> str:
    return client.organizer("Someone Else")["api_key"]


def test_only_the_admin_creates_organizers(client: Any, key: str) -> None:
    body = {"name": "Sneaky", "email": "s@example.org"}
    assert client.call("POST", "/v1/organizers", json=body).status_code == 401
    assert client.call("POST", "/v1/organizers", "wrong", json=body).status_code == 401
    assert client.call("POST", "/v1/organizers", key, json=body).status_code == 401


def test_an_api_key_is_random_shown_once_and_stored_only_as_its_hash(client: Any, organizer: dict) -> None:
    second = client.organizer("Second")
    assert organizer["api_key"] != second["api_key"]
    assert len(organizer["api_key"]) >= 32
    with client.engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT api_key_hash FROM organizers").scalars().all()
    assert hash_secret(organizer["api_key"]) in stored
    assert organizer["api_key"] not in stored
    me = client.call("GET", "/v1/organizers/me", organizer["api_key"]).json
    assert me["id"] == organizer["id"]
    assert "api_key" not in me


def test_a_missing_or_wrong_key_is_401(client: Any, key: str) -> None:
    event = client.published(key)
    calls = [
        ("POST", "/v1/events"),
        ("GET", "/v1/organizers/me"),
        ("GET", "/v1/organizers/me/events"),
        ("POST", "/v1/organizers/me/keys"),
        ("PATCH", f"/v1/events/{event['id']}"),
        *(("POST", f"/v1/events/{event['id']}/{action}") for action in ACTIONS),
    ]
    for method, path in calls:
        for token in (None, "not-a-key", key + "x"):
            response = client.call(method, path, token, json=testing.event_body() if method != "GET" else None)
            assert response.status_code == 401, (method, path, token)
            assert response.mimetype == "application/problem+json"
    assert client.call("GET", f"/v1/events/{event['id']}", key).json == event


def test_another_organizer_never_sees_a_draft(client: Any, key: str, other: str) -> None:
    draft = client.draft(key)
    assert client.call("GET", f"/v1/events/{draft['id']}", other).status_code == 404
    assert client.call("GET", f"/v1/events/{draft['id']}").status_code == 404
    assert client.call("GET", f"/v1/events/{draft['id']}", key).status_code == 200
    assert client.call("GET", "/v1/organizers/me/events", other).json["items"] == []
    assert client.call("GET", f"/v1/events/{draft['id']}/calendar.ics", other).status_code == 404


def test_another_organizer_cannot_touch_a_draft_and_learns_nothing(client: Any, key: str, other: str) -> None:
    draft = client.draft(key)
    for action in [*ACTIONS, "patch"]:
        assert act(client, other, draft, action).status_code == 404, action
    assert client.call("GET", f"/v1/events/{draft['id']}", key).json == draft


@pytest.mark.parametrize("status", ["published", "postponed"])
def test_another_organizer_cannot_change_a_visible_event(client: Any, key: str, other: str, status: str) -> None:
    event = client.published(key)
    if status == "postponed":
        event = client.call("POST", f"/v1/events/{event['id']}/postpone", key, json={}).json
    for action in [*ACTIONS, "patch"]:
        response = act(client, other, event, action)
        assert response.status_code == 403, action
        assert response.mimetype == "application/problem+json"
    assert client.call("GET", f"/v1/events/{event['id']}", key).json == event
    assert len([m for m in client.messages() if m["type"].startswith("event.")]) == (1 if status == "published" else 2)


def test_a_new_key_revokes_the_old_one(client: Any, organizer: dict) -> None:
    old = organizer["api_key"]
    event = client.draft(old)
    response = client.call("POST", "/v1/organizers/me/keys", old)
    assert response.status_code == 201
    new = response.json["api_key"]
    assert new != old

    assert client.call("GET", "/v1/organizers/me", old).status_code == 401
    assert client.call("PATCH", f"/v1/events/{event['id']}", old, json={"title": "x"}).status_code == 401
    assert client.call("GET", f"/v1/events/{event['id']}", new).json["id"] == event["id"]


def test_the_other_services_learn_each_key_by_its_hash(client: Any, organizer: dict) -> None:
    rotated = client.call("POST", "/v1/organizers/me/keys", organizer["api_key"]).json

    issued = [m["data"] for m in client.messages() if m["type"] == "organizer.key_issued.v1"]
    assert [(str(m["organizer_id"]), m["name"], m["api_key_hash"]) for m in issued] == [
        (organizer["id"], "Mind Matters", hash_secret(organizer["api_key"])),
        (organizer["id"], "Mind Matters", hash_secret(rotated["api_key"])),
    ]
    assert all(organizer["api_key"] not in str(m) and rotated["api_key"] not in str(m) for m in issued)


def act(client: Any, token: str | None, event: dict, action: str) -> Any:
    if action == "patch":
        return client.call("PATCH", f"/v1/events/{event['id']}", token, json={"title": "Hijacked"})
    return client.call("POST", f"/v1/events/{event['id']}/{action}", token, json={"reason": "because"})
