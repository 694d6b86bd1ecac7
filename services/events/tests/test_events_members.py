"""Teams: an organizer account has members, each with their own key and role. Owners add and remove members
and reissue keys; facilitators run events; every change is in the audit log, which only owners read."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from gather_shared import testing
from gather_shared.web import hash_secret


def members_path(organizer: dict[str, Any], *rest: str) -> str:
    return "/".join([f"/v1/organizers/{organizer['id']}/members", *rest])


def add(client: Any, key: str, organizer: dict[str, Any], role: str, name: str = "Robin") -> dict[str, Any]:
    response = client.call("POST", members_path(organizer), key, json={"name": name, "role": role})
    assert response.status_code == 201, response.json
    return response.json


def audit_log(client: Any, key: str, organizer: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.call("GET", f"/v1/organizers/{organizer['id']}/audit", key)
    assert response.status_code == 200, response.json
    return response.json["items"]


@pytest.fixture
def other(client: Any) -> dict[str, Any]:
    return client.organizer("Someone Else")


def test_an_owner_adds_a_facilitator_whose_own_key_runs_the_accounts_events(
    client: Any, organizer: dict, key: str
) -> None:
    facilitator = add(client, key, organizer, "facilitator")
    assert facilitator["role"] == "facilitator"
    assert facilitator["api_key"].startswith("gok_") and facilitator["api_key"] != key

    me = client.call("GET", "/v1/organizers/me", facilitator["api_key"]).json
    assert (me["id"], me["member"]) == (
        organizer["id"],
        {"id": facilitator["id"], "name": "Robin", "role": "facilitator"},
    )
    event = client.published(facilitator["api_key"])
    assert event["organizer"]["id"] == organizer["id"]
    # The first owner sees and changes it as their own: it is the account's.
    changed = client.call("PATCH", f"/v1/events/{event['id']}", key, json={"title": "Carers' circle"})
    assert changed.status_code == 200


def test_the_member_list_starts_with_the_first_owner_and_shows_no_key(client: Any, organizer: dict, key: str) -> None:
    facilitator = add(client, key, organizer, "facilitator")
    owner = add(client, key, organizer, "owner", name="Sam")
    response = client.call("GET", members_path(organizer), owner["api_key"])
    assert response.status_code == 200
    assert [(m["id"], m["name"], m["role"], m["first_owner"]) for m in response.json["items"]] == [
        (organizer["id"], "Mind Matters", "owner", True),
        (facilitator["id"], "Robin", "facilitator", False),
        (owner["id"], "Sam", "owner", False),
    ]
    assert "api_key" not in str(response.json)
    with client.engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT api_key_hash FROM members").scalars().all()
    assert sorted(stored) == sorted([hash_secret(facilitator["api_key"]), hash_secret(owner["api_key"])])


def test_a_facilitator_cannot_manage_members_keys_or_read_the_audit_log(client: Any, organizer: dict, key: str) -> None:
    facilitator = add(client, key, organizer, "facilitator")
    other_member = add(client, key, organizer, "facilitator", name="Sam")
    token = facilitator["api_key"]
    for method, path, body in (
        ("POST", members_path(organizer), {"name": "Mallory", "role": "owner"}),
        ("POST", members_path(organizer), {}),  # refused before the body is even read
        ("GET", members_path(organizer), None),
        ("DELETE", members_path(organizer, other_member["id"]), None),
        ("POST", members_path(organizer, other_member["id"], "keys"), None),
        ("GET", f"/v1/organizers/{organizer['id']}/audit", None),
    ):
        response = client.call(method, path, token, json=body)
        assert response.status_code == 403, (method, path)
        assert response.mimetype == "application/problem+json"
    assert len(client.call("GET", members_path(organizer), key).json["items"]) == 3
    assert client.call("GET", "/v1/organizers/me", other_member["api_key"]).status_code == 200


def test_another_organizers_members_can_do_nothing_to_this_account(
    client: Any, organizer: dict, key: str, other: dict
) -> None:
    member = add(client, key, organizer, "facilitator")
    draft = client.draft(member["api_key"])
    published = client.published(member["api_key"])
    other_owner = add(client, other["api_key"], other, "owner")
    for token in (other["api_key"], other_owner["api_key"]):
        for method, path in (
            ("POST", members_path(organizer)),
            ("GET", members_path(organizer)),
            ("DELETE", members_path(organizer, member["id"])),
            ("POST", members_path(organizer, member["id"], "keys")),
            ("GET", f"/v1/organizers/{organizer['id']}/audit"),
        ):
            response = client.call(method, path, token, json={"name": "x", "role": "owner"})
            assert response.status_code == 403, (method, path)
        # Their own account's path, with this account's member: no such member there.
        assert client.call("DELETE", members_path(other, member["id"]), token).status_code == 404
        assert client.call("PATCH", f"/v1/events/{draft['id']}", token, json={"title": "x"}).status_code == 404
        assert client.call("PATCH", f"/v1/events/{published['id']}", token, json={"title": "x"}).status_code == 403
    assert client.call("GET", "/v1/organizers/me", member["api_key"]).status_code == 200


def test_without_a_key_every_team_call_is_401_and_an_unknown_account_or_member_404(
    client: Any, organizer: dict, key: str
) -> None:
    unknown = {"id": str(uuid.uuid4())}
    for token in (None, "not-a-key"):
        for method, path in (
            ("POST", members_path(organizer)),
            ("GET", members_path(organizer)),
            ("DELETE", members_path(organizer, organizer["id"])),
            ("GET", f"/v1/organizers/{organizer['id']}/audit"),
        ):
            assert client.call(method, path, token, json={}).status_code == 401, (method, path, token)
    assert client.call("GET", members_path(unknown), key).status_code == 404
    assert client.call("DELETE", members_path(organizer, str(uuid.uuid4())), key).status_code == 404
    assert client.call("POST", members_path(organizer, str(uuid.uuid4()), "keys"), key).status_code == 404


@pytest.mark.parametrize(
    "body, field",
    [
        ({"role": "owner"}, "name"),
        ({"name": "", "role": "owner"}, "name"),
        ({"name": "two\nlines", "role": "owner"}, "name"),
        ({"name": "Robin"}, "role"),
        ({"name": "Robin", "role": "admin"}, "role"),
    ],
)
def test_a_bad_member_is_a_422_naming_the_field(
    client: Any, organizer: dict, key: str, body: dict[str, Any], field: str
) -> None:
    response = client.call("POST", members_path(organizer), key, json=body)
    assert response.status_code == 422
    assert list(response.json["errors"]) == [field]


def test_a_removed_member_and_a_replaced_key_stop_working_at_once(client: Any, organizer: dict, key: str) -> None:
    leaving, staying = add(client, key, organizer, "facilitator"), add(client, key, organizer, "owner", name="Sam")
    removed = client.call("DELETE", members_path(organizer, leaving["id"]), staying["api_key"])
    assert removed.status_code == 200
    assert removed.json["id"] == leaving["id"]
    assert client.call("GET", "/v1/organizers/me", leaving["api_key"]).status_code == 401
    assert client.call("POST", "/v1/events", leaving["api_key"], json=testing.event_body()).status_code == 401
    assert client.call("DELETE", members_path(organizer, leaving["id"]), key).status_code == 404

    reissued = client.call("POST", members_path(organizer, staying["id"], "keys"), key)
    assert reissued.status_code == 201
    assert client.call("GET", "/v1/organizers/me", staying["api_key"]).status_code == 401
    assert client.call("GET", "/v1/organizers/me", reissued.json["api_key"]).json["member"]["id"] == staying["id"]


def test_the_first_owner_cannot_be_removed_but_their_key_can_be_replaced(
    client: Any, organizer: dict, key: str
) -> None:
    owner = add(client, key, organizer, "owner", name="Sam")
    response = client.call("DELETE", members_path(organizer, organizer["id"]), owner["api_key"])
    assert response.status_code == 409
    assert response.json["code"] == "first_owner"
    reissued = client.call("POST", members_path(organizer, organizer["id"], "keys"), owner["api_key"])
    assert reissued.status_code == 201
    assert client.call("GET", "/v1/organizers/me", key).status_code == 401
    assert client.call("GET", "/v1/organizers/me", reissued.json["api_key"]).json["member"]["id"] == organizer["id"]


def test_the_admins_revoke_stops_every_members_key(client: Any, organizer: dict, key: str) -> None:
    member = add(client, key, organizer, "owner")
    assert client.call("POST", f"/v1/organizers/{organizer['id']}/revoke", testing.ADMIN_TOKEN).status_code == 200
    for token in (key, member["api_key"]):
        assert client.call("GET", "/v1/organizers/me", token).status_code == 401


def test_the_other_services_learn_each_members_key_by_its_hash_and_each_removal(
    client: Any, organizer: dict, key: str
) -> None:
    member = add(client, key, organizer, "facilitator")
    client.call("DELETE", members_path(organizer, member["id"]), key)
    messages = [(m["type"], m["data"]) for m in client.messages() if m["type"].startswith("organizer.member_")]
    assert messages == [
        (
            "organizer.member_key_issued.v1",
            {
                "organizer_id": uuid.UUID(organizer["id"]),
                "member_id": uuid.UUID(member["id"]),
                "name": "Robin",
                "role": "facilitator",
                "api_key_hash": hash_secret(member["api_key"]),
            },
        ),
        (
            "organizer.member_removed.v1",
            {"organizer_id": uuid.UUID(organizer["id"]), "member_id": uuid.UUID(member["id"])},
        ),
    ]
    assert member["api_key"] not in str(client.messages())


def test_the_audit_log_says_who_changed_what_and_when(client: Any, organizer: dict, key: str) -> None:
    facilitator = add(client, key, organizer, "facilitator")
    event = client.published(facilitator["api_key"])
    client.call("PATCH", f"/v1/events/{event['id']}", facilitator["api_key"], json={"title": "New", "capacity": 9})
    client.call("POST", f"/v1/events/{event['id']}/cancel", key, json={"reason": "The hall flooded."})
    client.call("DELETE", members_path(organizer, facilitator["id"]), key)

    entries = audit_log(client, key, organizer)
    owner = {"id": organizer["id"], "name": "Mind Matters", "role": "owner"}
    robin = {"id": facilitator["id"], "name": "Robin", "role": "facilitator"}
    admin = {"id": None, "name": "admin", "role": "admin"}
    assert [(e["who"], e["action"], e["subject_id"], e["details"]) for e in entries] == [
        (admin, "key.issued", organizer["id"], {}),
        (owner, "member.added", facilitator["id"], {"role": "facilitator"}),
        (robin, "event.created", event["id"], {"title": event["title"]}),
        (robin, "event.published", event["id"], {}),
        (robin, "event.updated", event["id"], {"fields": ["capacity", "title"]}),
        (owner, "event.cancelled", event["id"], {}),
        (owner, "member.removed", facilitator["id"], {}),
    ]
    assert all(e["at"] for e in entries)
    assert "flooded" not in str(entries)  # what was said to attendees is in the event, not in the log


def test_the_audit_log_comes_in_pages_and_is_each_accounts_own(
    client: Any, organizer: dict, key: str, other: dict
) -> None:
    for _ in range(3):
        client.draft(key)
    first = client.call("GET", f"/v1/organizers/{organizer['id']}/audit", key, query_string={"limit": 2}).json
    second = client.call(
        "GET", f"/v1/organizers/{organizer['id']}/audit", key, query_string={"limit": 2, "cursor": first["next_cursor"]}
    ).json
    assert [e["action"] for e in first["items"] + second["items"]] == ["key.issued"] + ["event.created"] * 3
    assert second["next_cursor"] is None
    assert [e["action"] for e in audit_log(client, other["api_key"], other)] == ["key.issued"]
    bad = client.call("GET", f"/v1/organizers/{organizer['id']}/audit", key, query_string={"limit": 0})
    assert bad.status_code == 422
    assert list(bad.json["errors"]) == ["limit"]
