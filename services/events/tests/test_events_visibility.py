"""Unlisted events (`visibility: unlisted`): a group that must not be listed publicly is reachable by its
link, and found nowhere else: not in the listing, its search, nor the listing's calendar. Only its own
organizer's views say that it is unlisted."""

from __future__ import annotations

from typing import Any

import icalendar

from gather_shared import testing


def titles(response: Any) -> list[str]:
    assert response.status_code == 200, response.json
    return [item["title"] for item in response.json["items"]]


def calendar_titles(response: Any) -> list[str]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return [str(entry["SUMMARY"]) for entry in icalendar.Calendar.from_ical(response.data).walk("VEVENT")]


def test_an_event_is_listed_unless_its_organizer_says_otherwise(client: Any, key: str) -> None:
    assert client.draft(key)["visibility"] == "listed"
    event = client.published(key, title="Open circle")
    assert titles(client.call("GET", "/v1/events")) == ["Open circle"]
    assert "visibility" not in client.call("GET", f"/v1/events/{event['id']}").json


def test_an_unlisted_event_is_found_by_its_link_only(client: Any, key: str) -> None:
    client.published(key, title="Open circle")
    event = client.published(key, title="Quiet circle", visibility="unlisted")
    assert event["visibility"] == "unlisted"

    assert titles(client.call("GET", "/v1/events")) == ["Open circle"]
    assert titles(client.call("GET", "/v1/events", query_string={"q": "quiet"})) == []
    assert calendar_titles(client.call("GET", "/v1/calendar.ics")) == ["Open circle"]
    assert calendar_titles(client.call("GET", "/v1/calendar.ics", query_string={"q": "quiet"})) == []

    public = client.call("GET", f"/v1/events/{event['id']}")
    assert public.status_code == 200
    assert public.json["title"] == "Quiet circle"
    assert "unlisted" not in public.get_data(as_text=True)  # the public view does not say it
    assert calendar_titles(client.call("GET", f"/v1/events/{event['id']}/calendar.ics")) == ["Quiet circle"]

    another = client.organizer("Someone else")["api_key"]
    assert "visibility" not in client.call("GET", f"/v1/events/{event['id']}", another).json
    assert client.call("GET", f"/v1/events/{event['id']}", key).json["visibility"] == "unlisted"
    own = client.call("GET", "/v1/organizers/me/events", key).json["items"]
    assert {item["title"]: item["visibility"] for item in own} == {"Open circle": "listed", "Quiet circle": "unlisted"}


def test_unlisting_a_published_event_takes_it_out_of_the_listing_and_tells_the_other_services(
    client: Any, key: str
) -> None:
    event = client.published(key, title="Walk and talk")
    [published] = [m for m in client.messages() if m["type"] == "event.published.v1"]
    assert published["data"]["event"]["visibility"] == "listed"

    answer = client.call("PATCH", f"/v1/events/{event['id']}", key, json={"visibility": "unlisted"})
    assert answer.status_code == 200, answer.json
    assert titles(client.call("GET", "/v1/events")) == []
    [*_, update] = client.messages()
    assert update["type"] == "event.updated.v1"
    assert update["data"]["event"]["visibility"] == "unlisted"
    assert update["data"]["changes"] == {"visibility": {"old": "listed", "new": "unlisted"}}

    client.call("PATCH", f"/v1/events/{event['id']}", key, json={"visibility": "listed"})
    assert titles(client.call("GET", "/v1/events")) == ["Walk and talk"]


def test_a_visibility_that_is_not_one_of_the_two_is_422_naming_it(client: Any, key: str) -> None:
    answer = client.call("POST", "/v1/events", key, json=testing.event_body(visibility="secret"))
    assert answer.status_code == 422
    assert answer.mimetype == "application/problem+json"
    assert "visibility" in answer.json["errors"]
    event = client.draft(key)
    answer = client.call("PATCH", f"/v1/events/{event['id']}", key, json={"visibility": None})
    assert answer.status_code == 422
    assert "visibility" in answer.json["errors"]


def test_the_openapi_document_describes_visibility_for_organizers_only(client: Any) -> None:
    document = client.call("GET", "/openapi.json").json
    schemas = document["components"]["schemas"]
    assert schemas["EventCreate"]["properties"]["visibility"]["enum"] == ["listed", "unlisted"]
    assert "visibility" in schemas["OrganizerEvent"]["properties"]
    assert "visibility" not in schemas["PublicEvent"]["properties"]
