"""The members of an organizer account, as the signup service learns them by message: each member's key opens
the account's attendee lists until the member is removed or the account's keys are revoked; exports and
removals are in the account's audit log here, for its owners."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from flask.testing import FlaskClient

from gather_shared import web
from gather_shared.service import Runtime
from gather_signup.store import MemberKey

Publish = Callable[..., dict[str, Any]]
Register = Callable[..., Any]
Send = Callable[..., Any]

ACCOUNT = uuid.UUID(int=1)  # the organizer of the events `publish` announces


def bearer(key: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} | headers


def member_key_issued(
    send: Send, key: str, member_id: uuid.UUID, role: str = "facilitator", at: datetime | None = None, **data: Any
) -> None:
    body = {
        "organizer_id": ACCOUNT,
        "member_id": member_id,
        "name": "Robin",
        "role": role,
        "api_key_hash": web.hash_secret(key),
    } | data
    send("organizer.member_key_issued.v1", body, **({"time": at} if at else {}))


def attendee_list(client: FlaskClient, event: dict[str, Any], key: str, **headers: str) -> Any:
    return client.get(f"/v1/events/{event['id']}/signups", headers=bearer(key, **headers))


def test_a_members_key_opens_the_accounts_attendee_lists_until_the_member_is_removed(
    publish: Publish, register: Register, send: Send, client: FlaskClient
) -> None:
    event = publish(capacity=1)
    seated, waiting = register(event["id"], 1).json, register(event["id"], 2).json
    member = uuid.uuid4()
    assert attendee_list(client, event, "member-key").status_code == 401  # not heard of yet
    member_key_issued(send, "member-key", member)

    assert attendee_list(client, event, "member-key").status_code == 200
    removed = client.delete(
        f"/v1/events/{event['id']}/signups/{seated['id']}",
        json={"reason": "Wrong group."},
        headers=bearer("member-key"),
    )
    assert removed.json["promoted"] == [waiting["id"]]

    send("organizer.member_removed.v1", {"organizer_id": ACCOUNT, "member_id": member})
    assert attendee_list(client, event, "member-key").status_code == 401
    # A late copy of the key's message (a relay retry) does not bring it back.
    member_key_issued(send, "member-key", member, at=datetime.now(UTC) - timedelta(minutes=5))
    assert attendee_list(client, event, "member-key").status_code == 401


def test_a_members_new_key_replaces_the_old_one(publish: Publish, send: Send, client: FlaskClient) -> None:
    event = publish()
    member = uuid.uuid4()
    member_key_issued(send, "first-key", member)
    member_key_issued(send, "second-key", member)
    assert attendee_list(client, event, "first-key").status_code == 401
    assert attendee_list(client, event, "second-key").status_code == 200


def test_revoking_the_accounts_keys_stops_its_members_keys_too(
    publish: Publish, send: Send, client: FlaskClient, organizer_key: str
) -> None:
    event = publish()
    member = uuid.uuid4()
    member_key_issued(send, "member-key", member, at=datetime.now(UTC) - timedelta(minutes=5))
    send("organizer.key_revoked.v1", {"organizer_id": ACCOUNT})
    for key in (organizer_key, "member-key"):
        assert attendee_list(client, event, key).status_code == 401
    # A member key issued before the revocation, arriving after it, stays revoked.
    member_key_issued(send, "late-key", uuid.uuid4(), at=datetime.now(UTC) - timedelta(minutes=3))
    assert attendee_list(client, event, "late-key").status_code == 401


def test_a_member_key_written_in_a_race_with_the_revocation_still_opens_nothing(
    publish: Publish, send: Send, client: FlaskClient, rt: Runtime
) -> None:
    """Two consumers at once on PostgreSQL: the member's key committed just after the revocation read the
    account's members. The row is there with a working hash; the account's revocation, newer, still wins."""
    event = publish()
    send("organizer.key_revoked.v1", {"organizer_id": ACCOUNT})
    with rt.sessions.begin() as session:
        session.add(
            MemberKey(
                id=uuid.uuid4(),
                organizer_id=ACCOUNT,
                name="Mallory",
                role="owner",
                api_key_hash=web.hash_secret("raced-key"),
                key_issued_at=datetime.now(UTC) - timedelta(minutes=1),
            )
        )
    assert attendee_list(client, event, "raced-key").status_code == 401


def test_another_accounts_member_may_not_see_or_change_the_attendee_list(
    publish: Publish, register: Register, send: Send, client: FlaskClient
) -> None:
    event = publish()
    seated = register(event["id"], 1).json
    stranger = uuid.uuid4()
    send(
        "organizer.key_issued.v1",
        {"organizer_id": stranger, "name": "Other", "api_key_hash": web.hash_secret("other-organizer-key")},
    )
    member_key_issued(send, "stranger-key", uuid.uuid4(), role="owner", organizer_id=stranger)
    assert attendee_list(client, event, "stranger-key").status_code == 403
    response = client.delete(
        f"/v1/events/{event['id']}/signups/{seated['id']}", json={"reason": "x"}, headers=bearer("stranger-key")
    )
    assert response.status_code == 403


def test_every_export_and_removal_is_in_the_audit_log_an_owner_reads_without_contact_details(
    publish: Publish, register: Register, send: Send, client: FlaskClient, organizer_key: str
) -> None:
    event = publish(capacity=5)
    seated = register(event["id"], 1, display_name="Alex", phone="+447911123456", channels=["email", "sms"]).json
    facilitator = uuid.uuid4()
    member_key_issued(send, "facilitator-key", facilitator)
    attendee_list(client, event, "facilitator-key")
    attendee_list(client, event, organizer_key, Accept="text/csv")
    client.delete(
        f"/v1/events/{event['id']}/signups/{seated['id']}",
        json={"reason": "You asked us to."},
        headers=bearer("facilitator-key"),
    )

    path = f"/v1/organizers/{ACCOUNT}/audit"
    assert client.get(path, headers=bearer("facilitator-key")).status_code == 403
    assert client.get(path).status_code == 401
    assert client.get(f"/v1/organizers/{uuid.uuid4()}/audit", headers=bearer(organizer_key)).status_code == 403
    response = client.get(path, headers=bearer(organizer_key))
    assert response.status_code == 200
    event_id = str(event["id"])
    robin = {"id": str(facilitator), "name": "Robin", "role": "facilitator"}
    owner = {"id": str(ACCOUNT), "name": "Mind Matters", "role": "owner"}
    assert [(e["who"], e["action"], e["subject_id"], e["details"]) for e in response.json["items"]] == [
        (robin, "attendees.exported", event_id, {"format": "json"}),
        (owner, "attendees.exported", event_id, {"format": "csv"}),
        (robin, "attendee.removed", seated["id"], {"event_id": event_id}),
    ]
    for detail in ("Alex", "attendee1@example.org", "447911123456", "You asked us to"):
        assert detail not in response.text
