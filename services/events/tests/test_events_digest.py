"""The organizer's opt-ins on an event: `digest` (a daily email of the new registrations and cancellations,
as counts) and `waitlist_alert_at` (an email when the waitlist reaches that many). The notifications service
sends them; the event carries the opt-ins to it, and only the organizer's own views show them."""

from __future__ import annotations

from typing import Any

import pytest

from gather_shared import testing

OPT_INS = ("digest", "waitlist_alert_at")


def test_an_event_sends_no_digest_and_no_alert_unless_its_organizer_opts_in(client: Any, key: str) -> None:
    event = client.draft(key)
    assert (event["digest"], event["waitlist_alert_at"]) == (False, None)


def test_the_organizer_opts_in_and_sees_it_and_the_public_never_does(client: Any, key: str) -> None:
    event = client.published(key, digest=True, waitlist_alert_at=10)
    assert (event["digest"], event["waitlist_alert_at"]) == (True, 10)
    assert {
        (e["digest"], e["waitlist_alert_at"]) for e in client.call("GET", "/v1/organizers/me/events", key).json["items"]
    } == {(True, 10)}

    another = client.organizer("Someone else")["api_key"]
    for token in (None, another):
        public = client.call("GET", f"/v1/events/{event['id']}", token)
        assert public.status_code == 200
        assert not set(OPT_INS) & public.json.keys()
    listing = client.call("GET", "/v1/events").json["items"]
    assert [item["id"] for item in listing] == [event["id"]]
    assert not set(OPT_INS) & listing[0].keys()
    assert "digest" not in client.call("GET", f"/v1/events/{event['id']}/calendar.ics").get_data(as_text=True).lower()


def test_a_patch_changes_the_opt_ins_and_tells_the_notifications_service(client: Any, key: str) -> None:
    event = client.published(key)
    response = client.call("PATCH", f"/v1/events/{event['id']}", key, json={"digest": True, "waitlist_alert_at": 3})
    assert response.status_code == 200, response.json
    assert (response.json["digest"], response.json["waitlist_alert_at"]) == (True, 3)
    [updated] = [m for m in client.messages() if m["type"] == "event.updated.v1"]
    assert (updated["data"]["event"]["digest"], updated["data"]["event"]["waitlist_alert_at"]) == (True, 3)

    response = client.call("PATCH", f"/v1/events/{event['id']}", key, json={"waitlist_alert_at": None})
    assert response.status_code == 200, response.json
    assert response.json["waitlist_alert_at"] is None


def test_the_organizers_address_travels_with_its_key_for_the_digest(client: Any, organizer: dict[str, Any]) -> None:
    [issued] = [m for m in client.messages() if m["type"] == "organizer.key_issued.v1"]
    assert issued["data"]["email"] == organizer["email"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("digest", "daily"),
        ("digest", None),
        ("waitlist_alert_at", 0),
        ("waitlist_alert_at", -3),
        ("waitlist_alert_at", "10"),
        ("waitlist_alert_at", 2.5),
    ],
)
def test_bad_opt_ins_are_a_422_naming_the_field(client: Any, key: str, field: str, value: Any) -> None:
    event = client.draft(key)
    for method, path, body in (
        ("POST", "/v1/events", testing.event_body(**{field: value})),
        ("PATCH", f"/v1/events/{event['id']}", {field: value}),
    ):
        response = client.call(method, path, key, json=body)
        assert response.status_code == 422, (method, response.json)
        assert response.content_type == "application/problem+json"
        assert field in response.json["errors"], response.json


def test_the_openapi_document_describes_the_opt_ins(plumbing_client: Any) -> None:
    spec = plumbing_client.call("GET", "/openapi.json").json
    schemas = spec["components"]["schemas"]
    organizer_view = next(s for name, s in schemas.items() if name.startswith("OrganizerEvent"))
    public_view = next(s for name, s in schemas.items() if name.startswith("PublicEvent"))
    assert set(OPT_INS) <= organizer_view["properties"].keys()
    assert not set(OPT_INS) & public_view["properties"].keys()
    assert "as counts" in str(spec)
