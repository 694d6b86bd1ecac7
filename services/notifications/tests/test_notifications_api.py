"""GET /v1/notifications: who may read the log, filters and paging."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from flask.testing import FlaskClient

from gather_shared.testing import ADMIN_TOKEN
from gather_shared.web import hash_secret

if TYPE_CHECKING:
    from conftest import World


def organizer_key(world: World, organizer_id: uuid.UUID) -> str:
    key = f"key-{uuid.uuid4().hex}"
    world.send(
        "organizer.key_issued.v1", {"organizer_id": organizer_id, "name": "Org", "api_key_hash": hash_secret(key)}
    )
    return key


def get(client: FlaskClient, token: str | None, **params: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.get("/v1/notifications", query_string=params, headers=headers)


def test_an_organizer_reads_the_log_of_their_own_events_only(world: World, client: FlaskClient) -> None:
    key = organizer_key(world, world.organizer_id)
    mine = world.publish()
    registration = world.register(consent_reminders=False)
    world.organizer_id = uuid.uuid4()
    theirs = world.publish()
    world.register(email="sam@example.org", consent_reminders=False)

    response = get(client, key, event_id=str(mine["id"]))
    assert response.status_code == 200
    [item] = response.get_json()["items"]
    assert item["signup_id"] == str(registration["signup_id"])
    assert set(item) == {
        "id",
        "event_id",
        "signup_id",
        "kind",
        "channel",
        "status",
        "attempts",
        "scheduled_for",
        "sent_at",
        "last_error",
    }
    assert [i["event_id"] for i in get(client, key).get_json()["items"]] == [str(mine["id"])]
    assert get(client, key, event_id=str(theirs["id"])).status_code == 403
    assert get(client, key, event_id=str(uuid.uuid4())).status_code == 404


def test_the_log_needs_a_token(world: World, client: FlaskClient) -> None:
    response = get(client, None)
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert get(client, "not-a-key").status_code == 401


def test_admin_reads_every_notification_filtered_and_paged(world: World, client: FlaskClient) -> None:
    world.publish()
    for n in range(5):
        world.register(email=f"person{n}@example.org", consent_reminders=False)
    first = get(client, ADMIN_TOKEN, limit=2).get_json()
    assert len(first["items"]) == 2
    seen = [i["id"] for i in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = get(client, ADMIN_TOKEN, limit=2, cursor=cursor).get_json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen)) == 5
    assert get(client, ADMIN_TOKEN, status="sent").get_json()["items"] == []
    assert len(get(client, ADMIN_TOKEN, status="pending").get_json()["items"]) == 5


def test_bad_filters_are_a_422_naming_the_field(world: World, client: FlaskClient) -> None:
    for params, field in [
        ({"status": "lost"}, "status"),
        ({"event_id": "nope"}, "event_id"),
        ({"limit": 0}, "limit"),
        ({"cursor": "%%%"}, "cursor"),
    ]:
        response = get(client, ADMIN_TOKEN, **params)
        assert response.status_code == 422, params
        assert field in response.get_json()["errors"]


def test_a_revoked_key_arriving_late_does_not_open_the_log_again(world: World, client: FlaskClient) -> None:
    event = world.publish()
    new_key, old_key = "new-key", "old-key"
    world.send(
        "organizer.key_issued.v1",
        {"organizer_id": world.organizer_id, "name": "Org", "api_key_hash": hash_secret(new_key)},
    )
    world.send(
        "organizer.key_issued.v1",
        {"organizer_id": world.organizer_id, "name": "Org", "api_key_hash": hash_secret(old_key)},
        at=world.now - timedelta(minutes=5),
    )
    assert get(client, old_key, event_id=str(event["id"])).status_code == 401
    assert get(client, new_key, event_id=str(event["id"])).status_code == 200
