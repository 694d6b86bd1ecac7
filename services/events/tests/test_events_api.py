"""The events API as an organizer uses it: creating, validating, changing and moving events through
their lifecycle; errors as problem+json; the OpenAPI document."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from gather_shared import testing


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    return response.json


def test_a_new_event_is_a_draft_with_every_field_given(client: Any, key: str, organizer: dict) -> None:
    body = testing.event_body(
        format="hybrid",
        online_url="https://meet.example.org/circle",
        description="Bring a cup.",
        accessibility={"wheelchair": True, "captions": True, "notes": "Lift at the back"},
        resources=[{"title": "Samaritans", "url": "https://www.samaritans.org"}],
    )
    response = client.call("POST", "/v1/events", key, json=body)

    assert response.status_code == 201, response.json
    event = response.json
    assert event["status"] == "draft"
    assert event["version"] == 1
    assert event["organizer"] == {"id": organizer["id"], "name": "Mind Matters"}
    assert event["online_url"] == "https://meet.example.org/circle"
    assert event["accessibility"]["captions"] is True
    assert event["accessibility"]["hearing_loop"] is False
    assert event["resources"] == [{"title": "Samaritans", "url": "https://www.samaritans.org"}]
    assert datetime.fromisoformat(event["starts_at"]) == datetime.fromisoformat(body["starts_at"])
    assert event["series_id"] is None


def test_tags_are_trimmed_lower_cased_and_deduplicated(client: Any, key: str) -> None:
    event = client.draft(key, tags=["  Anxiety ", "anxiety", "Peer Support"])
    assert event["tags"] == ["anxiety", "peer support"]


INVALID = [  # (what is wrong, the field the answer must name)
    ({"ends_at": "2030-01-01T10:00:00+00:00", "starts_at": "2030-01-01T11:00:00+00:00"}, "ends_at"),
    ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
    ({"timezone": "localtime"}, "timezone"),
    ({"capacity": 0}, "capacity"),
    ({"capacity": 2.5}, "capacity"),
    ({"format": "online"}, "online_url"),
    ({"format": "hybrid", "online_url": "https://meet.example.org/x", "venue": None}, "venue"),
    ({"format": "online", "online_url": "http://meet.example.org/x"}, "online_url"),
    ({"title": "x" * 201}, "title"),
    ({"title": ""}, "title"),
    ({"summary": "a\x00b"}, "summary"),
    ({"title": "\ud800"}, "title"),
    ({"resources": [{"title": "Help", "url": "https://example.org/\x00"}]}, "resources.0.url"),
    ({"tags": ["   "]}, "tags.0"),
    ({"tags": ["a|b"]}, "tags.0"),
    ({"resources": [{"title": "Help", "url": "javascript:alert(1)"}]}, "resources.0.url"),
    ({"resources": [{"title": "Help", "url": "ftp://example.org/help"}]}, "resources.0.url"),
    ({"kind": "rave"}, "kind"),
    ({"starts_at": "2030-01-01T10:00:00"}, "starts_at"),
    ({"ends_at": "9999-12-31T23:00:00-05:00"}, "ends_at"),
    ({"venue": {"city": "Leeds"}}, "venue.name"),
    ({"language": "not a language"}, "language"),
    ({"colour": "blue"}, "colour"),
]


def test_an_invalid_event_is_refused_naming_the_field(client: Any, key: str) -> None:
    for overrides, field in INVALID:
        response = client.call("POST", "/v1/events", key, json=testing.event_body(**overrides))

        body = problem(response, 422)
        assert field in body["errors"], (overrides, body)
        assert field in body["detail"]
    assert client.call("GET", "/v1/organizers/me/events", key).json["items"] == []


def test_a_body_that_is_not_json_is_refused(plumbing_client: Any) -> None:
    key = plumbing_client.organizer()["api_key"]
    response = plumbing_client.call("POST", "/v1/events", key, data="title=x", content_type="text/plain")
    assert response.status_code in (415, 422)
    assert response.mimetype == "application/problem+json"


def test_a_request_body_over_64_kib_is_refused_with_413(plumbing_client: Any) -> None:
    key = plumbing_client.organizer()["api_key"]
    body = testing.event_body(description="x" * (65 * 1024))
    problem(plumbing_client.call("POST", "/v1/events", key, json=body), 413)


def test_unknown_paths_and_methods_answer_problem_json(plumbing_client: Any) -> None:
    problem(plumbing_client.call("GET", "/v1/nothing-here"), 404)
    problem(plumbing_client.call("DELETE", "/v1/events"), 405)
    problem(plumbing_client.call("GET", "/v1/events/not-a-uuid"), 404)


def test_the_openapi_document_lists_every_path_and_the_docs_answer(plumbing_client: Any) -> None:
    spec = plumbing_client.call("GET", "/openapi.json").json
    documented = set(spec["paths"])
    served = {
        rule.rule.replace("<uuid:", "{").replace(">", "}")
        for rule in plumbing_client.app.url_map.iter_rules()
        if rule.rule.startswith("/v1/")
    }
    assert served == documented
    assert "EventCreate" in spec["components"]["schemas"]
    # The listing answers without dumping through PublicPage (see schemas.public_item); it still documents it.
    listing = spec["paths"]["/v1/events"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert listing == {"$ref": "#/components/schemas/PublicPage"}
    docs = plumbing_client.call("GET", "/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.get_data(as_text=True).lower()


# --- changes ----------------------------------------------------------------------------------------


def test_a_patch_changes_only_the_fields_given_and_bumps_the_version(client: Any, key: str) -> None:
    event = client.published(key)
    response = client.call(
        "PATCH", f"/v1/events/{event['id']}", key, json={"title": "Evening circle", "tags": ["Grief"]}
    )

    assert response.status_code == 200, response.json
    assert response.json["title"] == "Evening circle"
    assert response.json["tags"] == ["grief"]
    assert response.json["summary"] == event["summary"]
    assert response.json["version"] == event["version"] + 1

    again = client.call("PATCH", f"/v1/events/{event['id']}", key, json={"title": "Evening circle"})
    assert again.json["version"] == response.json["version"]  # nothing changed, nothing to tell


def test_a_patch_is_checked_against_the_rest_of_the_event(client: Any, key: str) -> None:
    event = client.draft(key)
    before = datetime.fromisoformat(event["starts_at"]) - timedelta(hours=1)

    body = problem(client.call("PATCH", f"/v1/events/{event['id']}", key, json={"ends_at": before.isoformat()}), 422)
    assert "ends_at" in body["errors"]
    body = problem(client.call("PATCH", f"/v1/events/{event['id']}", key, json={"format": "online"}), 422)
    assert "online_url" in body["errors"]
    body = problem(client.call("PATCH", f"/v1/events/{event['id']}", key, json={"capacity": -1}), 422)
    assert "capacity" in body["errors"]


def test_the_lifecycle_runs_draft_published_postponed_published_cancelled(client: Any, key: str) -> None:
    event = client.published(key)
    assert event["status"] == "published"
    url = f"/v1/events/{event['id']}"

    postponed = client.call("POST", f"{url}/postpone", key, json={"reason": "Venue flooded"}).json
    assert postponed["status"] == "postponed"

    new_start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=14)
    republished = client.call(
        "PATCH",
        url,
        key,
        json={"starts_at": new_start.isoformat(), "ends_at": (new_start + timedelta(hours=1)).isoformat()},
    ).json
    assert republished["status"] == "published"

    cancelled = client.call("POST", f"{url}/cancel", key, json={"reason": "Facilitator unwell"}).json
    assert cancelled["status"] == "cancelled"
    assert cancelled["version"] == event["version"] + 3


REFUSED = [  # (steps taken, the step refused, the status it is refused in)
    ([], "postpone", "draft"),
    ([], "cancel", "draft"),
    (["publish"], "publish", "published"),
    (["publish", "postpone"], "postpone", "postponed"),
    (["publish", "postpone"], "publish", "postponed"),
    (["publish", "cancel"], "publish", "cancelled"),
    (["publish", "cancel"], "postpone", "cancelled"),
    (["publish", "cancel"], "cancel", "cancelled"),
]


def test_a_transition_that_is_not_allowed_is_409_naming_the_current_status(client: Any, key: str) -> None:
    for setup, action, status in REFUSED:
        event = client.draft(key)
        for step in setup:
            assert client.call("POST", f"/v1/events/{event['id']}/{step}", key, json={}).status_code == 200

        body = problem(client.call("POST", f"/v1/events/{event['id']}/{action}", key, json={}), 409)
        assert body["current_status"] == status, (setup, action)
        assert status in body["detail"]
        assert client.call("GET", f"/v1/events/{event['id']}", key).json["status"] == status


def test_a_cancelled_event_can_no_longer_be_changed(client: Any, key: str) -> None:
    event = client.published(key)
    client.call("POST", f"/v1/events/{event['id']}/cancel", key, json={})
    body = problem(client.call("PATCH", f"/v1/events/{event['id']}", key, json={"title": "Back on?"}), 409)
    assert body["current_status"] == "cancelled"


def test_a_draft_can_be_changed_without_a_message(client: Any, key: str) -> None:
    event = client.draft(key)
    response = client.call("PATCH", f"/v1/events/{event['id']}", key, json={"title": "Renamed"})
    assert response.json["version"] == 2
    assert [m["type"] for m in client.messages()] == ["organizer.key_issued.v1"]
