"""The public listing and the organizer's own: what is shown, filters, text search, and a cursor that
stays stable while events are added. The online link never shows publicly."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import jsonify

from gather_events import schemas
from gather_events.store import Event
from gather_shared import testing

SECRET_LINK = "https://meet.example.org/secret-room"


def in_days(days: float, hour: int = 18) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0).isoformat()


def at(days: float, **overrides: Any) -> dict[str, Any]:
    start = datetime.fromisoformat(in_days(days))
    return {"starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=1)).isoformat()} | overrides


def titles(response: Any) -> list[str]:
    assert response.status_code == 200, response.json
    return [item["title"] for item in response.json["items"]]


def test_the_listing_shows_published_and_postponed_events_by_start_only(client: Any, key: str) -> None:
    client.draft(key, title="Draft", **at(1))
    client.published(key, title="Later", **at(3))
    client.published(key, title="Sooner", **at(2))
    postponed = client.published(key, title="Postponed", **at(4))
    client.call("POST", f"/v1/events/{postponed['id']}/postpone", key, json={})
    cancelled = client.published(key, title="Cancelled", **at(5))
    client.call("POST", f"/v1/events/{cancelled['id']}/cancel", key, json={})

    assert titles(client.call("GET", "/v1/events")) == ["Sooner", "Later", "Postponed"]


def test_an_event_leaves_the_listing_once_it_has_ended(client: Any, key: str) -> None:
    event = client.published(key, title="Tonight", **at(1))
    client.set_clock(datetime.fromisoformat(event["starts_at"]) + timedelta(minutes=30))
    assert titles(client.call("GET", "/v1/events")) == ["Tonight"]  # under way: still worth finding
    client.set_clock(datetime.fromisoformat(event["ends_at"]))
    assert titles(client.call("GET", "/v1/events")) == []


FILTERS = [  # (query, titles listed)
    ({"q": "grief"}, ["Grief circle", "Walk and talk"]),
    ({"q": "GRIEF circle"}, ["Grief circle"]),
    ({"q": "100%"}, []),
    ({"kind": "workshop"}, ["Mindful drawing"]),
    ({"tag": " Art "}, ["Mindful drawing"]),
    ({"tag": "grie"}, []),
    ({"format": "online"}, ["Walk and talk"]),
    ({"starts_after": in_days(2, hour=0)}, ["Mindful drawing", "Walk and talk"]),
    ({"starts_before": in_days(3, hour=0)}, ["Grief circle", "Mindful drawing"]),
    ({"q": "grief", "format": "in_person"}, ["Grief circle"]),
]


def test_the_listing_filters(client: Any, key: str) -> None:
    client.published(key, title="Grief circle", tags=["loss"], **at(1))
    client.published(key, title="Mindful drawing", kind="workshop", tags=["art"], summary="Paint.", **at(2))
    client.published(
        key,
        title="Walk and talk",
        kind="recreational",
        tags=["grief"],
        format="online",
        online_url=SECRET_LINK,
        venue=None,
        **at(3),
    )
    for query, expected in FILTERS:
        assert titles(client.call("GET", "/v1/events", query_string=query)) == expected, query


def test_bad_listing_parameters_are_422_naming_them(client: Any) -> None:
    for query in (
        {"limit": 0},
        {"limit": 101},
        {"kind": "rave"},
        {"starts_after": "soon"},
        {"q": "a\x00b"},
        {"starts_before": "2030-01-01T10:00:00"},
        {"starts_after": "0001-01-01T00:00:00+01:00"},
        {"cursor": "not-a-cursor"},
        {"format": "smoke-signals"},
    ):
        response = client.call("GET", "/v1/events", query_string=query)
        assert response.status_code == 422, query
        assert response.mimetype == "application/problem+json"
        assert set(response.json["errors"]) == set(query)


def test_the_cursor_pages_through_every_event_once_while_events_are_added(client: Any, key: str) -> None:
    for day in range(1, 6):
        client.published(key, title=f"Day {day}", **at(day))
    client.published(key, title="Day 3 too", **at(3))  # the same start: the id breaks the tie

    first = client.call("GET", "/v1/events", query_string={"limit": 2}).json
    client.published(key, title="Day 0", **at(0.5))  # before the cursor: must not shift the next pages
    client.published(key, title="Day 6", **at(6))
    seen = [item["title"] for item in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = client.call("GET", "/v1/events", query_string={"limit": 2, "cursor": cursor}).json
        seen += [item["title"] for item in page["items"]]
        cursor = page["next_cursor"]

    assert seen[:2] == ["Day 1", "Day 2"]
    assert sorted(seen) == sorted(["Day 1", "Day 2", "Day 3", "Day 3 too", "Day 4", "Day 5", "Day 6"])


def test_the_limit_defaults_to_20(client: Any, key: str) -> None:
    for day in range(21):
        client.published(key, title=f"Event {day}", **at(1 + day / 24))
    page = client.call("GET", "/v1/events").json
    assert len(page["items"]) == 20
    assert page["next_cursor"]


def test_the_online_link_never_appears_publicly(client: Any, key: str) -> None:
    event = client.published(key, format="hybrid", online_url=SECRET_LINK)
    for path in (
        f"/v1/events/{event['id']}",
        "/v1/events",
        f"/v1/events/{event['id']}/calendar.ics",
        "/v1/calendar.ics",
        f"/v1/events/{event['id']}/calendar.ics",
    ):
        response = client.call("GET", path)
        assert response.status_code == 200
        assert "secret-room" not in response.get_data(as_text=True)
        assert "online_url" not in response.get_data(as_text=True)
    other = client.organizer("Other")["api_key"]
    assert "secret-room" not in client.call("GET", f"/v1/events/{event['id']}", other).get_data(as_text=True)
    assert client.call("GET", f"/v1/events/{event['id']}", key).json["online_url"] == SECRET_LINK


def test_an_organizer_lists_their_own_events_drafts_and_past_ones_included(client: Any, key: str) -> None:
    client.draft(key, title="Draft", **at(2))
    client.published(key, title="Past", **at(-3))
    client.published(client.organizer("Other")["api_key"], title="Not mine", **at(1))

    assert titles(client.call("GET", "/v1/organizers/me/events", key)) == ["Past", "Draft"]
    assert titles(client.call("GET", "/v1/organizers/me/events", key, query_string={"status": "draft"})) == ["Draft"]
    own = client.call("GET", "/v1/organizers/me/events", key).json["items"]
    assert all("online_url" in item for item in own)


def test_search_finds_an_event_by_its_new_words_after_a_change(client: Any, key: str) -> None:
    event = client.published(key, title="Coffee morning", tags=["social"])
    client.call("PATCH", f"/v1/events/{event['id']}", key, json={"title": "Tea afternoon", "tags": ["Chat"]})

    assert titles(client.call("GET", "/v1/events", query_string={"q": "tea"})) == ["Tea afternoon"]
    assert titles(client.call("GET", "/v1/events", query_string={"q": "coffee"})) == []
    assert titles(client.call("GET", "/v1/events", query_string={"tag": "chat"})) == ["Tea afternoon"]
    assert titles(client.call("GET", "/v1/events", query_string={"tag": "social"})) == []


def test_the_listing_shows_each_event_byte_for_byte_as_its_public_view(client: Any, key: str) -> None:
    """The listing builds its items without marshmallow (schemas.public_item, for speed); the answer must stay
    exactly what flask-smorest makes of PublicPage's dump of the same events."""
    client.published(
        key,
        title="Everything",
        description="Long text.",
        tags=["b", "a"],
        format="hybrid",
        online_url=SECRET_LINK,
        capacity=None,
        waitlist_enabled=False,
        accessibility={"wheelchair": True, "notes": "Lift at the back"},
        resources=[{"title": "Slides", "url": "https://example.org/slides"}],
        **at(1),
    )
    client.published(
        key, title="Little", summary=None, language=None, tags=[], venue={"name": "Hall", "address": "1 Road"}, **at(2)
    )
    client.published(key, title="Online", format="online", online_url=SECRET_LINK, venue=None, **at(3))
    postponed = client.published(key, title="Postponed", **at(4))
    client.call("POST", f"/v1/events/{postponed['id']}/postpone", key, json={"reason": "Snow"})
    dates = client.call(
        "POST", "/v1/events", key, json=testing.event_body(title="Weekly", recurrence="FREQ=WEEKLY;COUNT=2", **at(5))
    ).json
    client.call("POST", f"/v1/series/{dates['series_id']}/publish", key)
    client.published(client.organizer("Other")["api_key"], title="Theirs", **at(6))

    listing = client.call("GET", "/v1/events", query_string={"limit": 100})
    ids = [uuid.UUID(item["id"]) for item in listing.json["items"]]
    assert len(ids) == 7
    with client.app.app_context(), client.app.extensions["gather_runtime"].sessions() as session:
        events = [session.get(Event, event_id) for event_id in ids]
        expected = jsonify(schemas.PublicPage().dump({"items": events, "next_cursor": None}))
        assert listing.get_data() == expected.get_data()
