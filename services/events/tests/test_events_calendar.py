"""Calendars: parsed back with the icalendar library, as a calendar application would read them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar


def parse(response: Any) -> list[icalendar.Event]:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/calendar"
    return list(icalendar.Calendar.from_ical(response.data).walk("VEVENT"))


def test_one_event_is_a_calendar_entry_in_its_own_time_zone(client: Any, key: str) -> None:
    start = datetime(2040, 7, 1, 18, 0, tzinfo=ZoneInfo("America/New_York"))  # beyond 2038, too
    event = client.published(
        key,
        title="Peer circle",
        timezone="America/New_York",
        starts_at=start.isoformat(),
        ends_at=(start + timedelta(hours=2)).isoformat(),
    )
    response = client.call("GET", f"/v1/events/{event['id']}/calendar.ics")

    [entry] = parse(response)
    calendar = icalendar.Calendar.from_ical(response.data)
    assert [tz["TZID"] for tz in calendar.walk("VTIMEZONE")] == ["America/New_York"]
    assert entry["DTSTART"].params["TZID"] == "America/New_York"
    assert entry.decoded("DTSTART") == start
    assert entry.decoded("DTSTART").hour == 18
    assert entry.decoded("DTEND") == start + timedelta(hours=2)
    assert str(entry["SUMMARY"]) == "Peer circle"
    assert str(entry["STATUS"]) == "CONFIRMED"
    assert "Community Hall" in str(entry["LOCATION"])


def test_the_uid_stays_and_the_sequence_follows_the_version(client: Any, key: str) -> None:
    event = client.published(key)
    [before] = parse(client.call("GET", f"/v1/events/{event['id']}/calendar.ics"))
    changed = client.call("PATCH", f"/v1/events/{event['id']}", key, json={"title": "New title"}).json
    [after] = parse(client.call("GET", f"/v1/events/{event['id']}/calendar.ics"))

    assert str(after["UID"]) == str(before["UID"])
    assert event["id"] in str(after["UID"])
    assert before.decoded("SEQUENCE") == event["version"]
    assert after.decoded("SEQUENCE") == changed["version"] > event["version"]


def test_a_cancelled_event_is_marked_cancelled_in_both_calendars(client: Any, key: str) -> None:
    event = client.published(key, title="Called off")
    client.published(key, title="Still on")
    client.call("POST", f"/v1/events/{event['id']}/cancel", key, json={"reason": "Snow"})

    [entry] = parse(client.call("GET", f"/v1/events/{event['id']}/calendar.ics"))
    assert str(entry["STATUS"]) == "CANCELLED"
    statuses = {str(e["SUMMARY"]): str(e["STATUS"]) for e in parse(client.call("GET", "/v1/calendar.ics"))}
    assert statuses == {"Called off": "CANCELLED", "Still on": "CONFIRMED"}


def test_the_listing_calendar_takes_the_listing_filters(client: Any, key: str) -> None:
    client.published(key, title="Drawing", kind="workshop")
    client.published(key, title="Circle", kind="support_group")
    client.draft(key, title="Not yet", kind="workshop")

    entries = parse(client.call("GET", "/v1/calendar.ics", query_string={"kind": "workshop"}))
    assert [str(e["SUMMARY"]) for e in entries] == ["Drawing"]
    assert client.call("GET", "/v1/calendar.ics", query_string={"kind": "rave"}).status_code == 422


def test_a_draft_has_no_calendar(client: Any, key: str) -> None:
    draft = client.draft(key)
    assert client.call("GET", f"/v1/events/{draft['id']}/calendar.ics").status_code == 404
