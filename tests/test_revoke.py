"""A stolen organizer key is cut off everywhere: after the admin's revoke, the key is refused (401) by the
events, signup and notifications services, each a separate process, within seconds."""

from __future__ import annotations

import uuid

from gather_shared.testing import ADMIN_TOKEN, Client, Platform, wait_for


def test_a_revoked_key_gets_401_in_all_three_services(platform: Platform) -> None:
    client = Client(platform)
    organizer = client.organizer()
    key = organizer["api_key"]
    event = client.published_event(key)

    def statuses() -> dict[str, int]:
        return client.key_statuses(key, event["id"])

    # The key works everywhere once the other services have heard of it and of the event.
    wait_for(lambda: set(statuses().values()) == {200}, message="the key to work in every service")

    assert client.call("POST", "events", f"/v1/organizers/{organizer['id']}/revoke", key).status_code == 401
    assert client.call("POST", "events", f"/v1/organizers/{uuid.uuid4()}/revoke", ADMIN_TOKEN).status_code == 404
    revoked = client.call("POST", "events", f"/v1/organizers/{organizer['id']}/revoke", ADMIN_TOKEN)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["id"] == organizer["id"]

    assert statuses()["events"] == 401  # at once where the key was issued
    wait_for(lambda: set(statuses().values()) == {401}, timeout=15, message="the key to be refused everywhere")
    # The public view of the event is untouched.
    assert client.call("GET", "events", f"/v1/events/{event['id']}").status_code == 200
