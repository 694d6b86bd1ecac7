"""Teams across the running services: a member's own key works in events, signup and notifications (each a
separate process, which learns the key by message), a facilitator cannot add members, and once an owner
removes the member their key is refused everywhere within seconds."""

from __future__ import annotations

from gather_shared.testing import Client, Platform, wait_for


def test_a_members_key_works_in_every_service_until_an_owner_removes_them(platform: Platform) -> None:
    client = Client(platform)
    organizer = client.organizer()
    owner_key = organizer["api_key"]
    members = f"/v1/organizers/{organizer['id']}/members"
    added = client.call("POST", "events", members, owner_key, json={"name": "Robin", "role": "facilitator"})
    assert added.status_code == 201, added.text
    facilitator = added.json()
    key = facilitator["api_key"]
    event = client.published_event(key)  # the facilitator runs the account's events

    def statuses() -> dict[str, int]:
        return client.key_statuses(key, event["id"])

    wait_for(lambda: set(statuses().values()) == {200}, message="the member's key to work in every service")
    refused = client.call("POST", "events", members, key, json={"name": "Mallory", "role": "owner"})
    assert refused.status_code == 403

    removed = client.call("DELETE", "events", f"{members}/{facilitator['id']}", owner_key)
    assert removed.status_code == 200, removed.text
    assert statuses()["events"] == 401  # at once where the key was issued
    wait_for(lambda: set(statuses().values()) == {401}, timeout=15, message="the key to be refused everywhere")
    # The account's own key, and its event, are untouched.
    assert client.call("GET", "signup", f"/v1/events/{event['id']}/signups", owner_key).status_code == 200
