"""Recurring groups: an RRULE creates a series of separately registrable events at the same local time."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from gather_shared import testing

LONDON = ZoneInfo("Europe/London")


def weekly(client: Any, key: str, rule: str = "FREQ=WEEKLY;COUNT=4", **overrides: Any) -> Any:
    # 18:00 in London on the Tuesday before the clocks go back (27 October 2030).
    start = datetime(2030, 10, 22, 18, 0, tzinfo=LONDON)
    body = testing.event_body(
        starts_at=start.isoformat(), ends_at=(start + timedelta(minutes=90)).isoformat(), recurrence=rule, **overrides
    )
    return client.call("POST", "/v1/events", key, json=body)


def series(client: Any, series_id: str, token: str | None = None) -> list[dict[str, Any]]:
    response = client.call("GET", f"/v1/series/{series_id}", token)
    assert response.status_code == 200, response.json
    return response.json["items"]


def test_a_weekly_group_stays_at_the_same_local_time_across_the_clock_change(client: Any, key: str) -> None:
    response = weekly(client, key)
    assert response.status_code == 201, response.json
    first = response.json
    dates = series(client, first["series_id"], key)

    assert dates[0]["id"] == first["id"]
    assert len({d["id"] for d in dates}) == 4
    local = [datetime.fromisoformat(d["starts_at"]).astimezone(LONDON) for d in dates]
    assert [(t.month, t.day, t.hour, t.minute) for t in local] == [
        (10, 22, 18, 0),
        (10, 29, 18, 0),
        (11, 5, 18, 0),
        (11, 12, 18, 0),
    ]
    assert [datetime.fromisoformat(d["starts_at"]).utcoffset() for d in dates][:2] != [None, None]
    assert all(
        datetime.fromisoformat(d["ends_at"]) - datetime.fromisoformat(d["starts_at"]) == timedelta(minutes=90)
        for d in dates
    )
    assert all(d["status"] == "draft" and d["series_id"] == first["series_id"] for d in dates)


def test_a_rule_of_more_than_52_dates_or_without_an_end_is_refused(client: Any, key: str) -> None:
    for rule in ("FREQ=WEEKLY;COUNT=53", "FREQ=DAILY", "FREQ=FORTNIGHTLY", "DTSTART:20300101T100000\nFREQ=DAILY"):
        response = weekly(client, key, rule)
        assert response.status_code == 422, rule
        assert "recurrence" in response.json["errors"]
    assert weekly(client, key, "FREQ=WEEKLY;COUNT=52").status_code == 201


def test_a_series_is_published_then_listed_publicly_and_cancelled_whole(client: Any, key: str) -> None:
    first = weekly(client, key).json
    assert client.call("GET", f"/v1/series/{first['series_id']}").status_code == 404  # drafts only
    published = client.call("POST", f"/v1/series/{first['series_id']}/publish", key).json
    assert [d["status"] for d in published["items"]] == ["published"] * 4
    assert len(series(client, first["series_id"])) == 4

    response = client.call("POST", f"/v1/series/{first['series_id']}/cancel", key, json={"reason": "Funding ended"})
    assert [d["status"] for d in response.json["items"]] == ["cancelled"] * 4
    cancelled = [m["data"] for m in client.messages() if m["type"] == "event.cancelled.v1"]
    assert len(cancelled) == 4
    assert {m["reason"] for m in cancelled} == {"Funding ended"}


def test_one_date_of_a_series_is_cancelled_alone(client: Any, key: str) -> None:
    first = weekly(client, key).json
    client.call("POST", f"/v1/series/{first['series_id']}/publish", key)
    second = series(client, first["series_id"])[1]
    client.call("POST", f"/v1/events/{second['id']}/cancel", key, json={"reason": "Bank holiday"})

    assert [d["status"] for d in series(client, first["series_id"])] == [
        "published",
        "cancelled",
        "published",
        "published",
    ]


def test_cancelling_a_series_leaves_its_past_dates_alone(client: Any, key: str) -> None:
    first = weekly(client, key).json
    client.call("POST", f"/v1/series/{first['series_id']}/publish", key)
    client.set_clock(datetime(2030, 11, 1, tzinfo=LONDON))
    response = client.call("POST", f"/v1/series/{first['series_id']}/cancel", key, json={})
    assert [d["status"] for d in response.json["items"]] == ["published", "published", "cancelled", "cancelled"]


def test_another_organizer_cannot_see_a_draft_series_or_change_a_published_one(client: Any, key: str) -> None:
    other = client.organizer("Other")["api_key"]
    first = weekly(client, key).json
    path = f"/v1/series/{first['series_id']}"
    assert client.call("GET", path, other).status_code == 404
    assert client.call("POST", f"{path}/publish", other).status_code == 404
    client.call("POST", f"{path}/publish", key)
    assert client.call("POST", f"{path}/cancel", other, json={}).status_code == 403
    assert client.call("POST", f"{path}/cancel", json={}).status_code == 401
    assert all("online_url" not in d for d in series(client, first["series_id"], other))


def test_a_series_change_reaches_every_future_date_not_changed_alone_each_announced_as_its_own(
    client: Any, key: str
) -> None:
    first = weekly(client, key).json
    path = f"/v1/series/{first['series_id']}"
    client.call("POST", f"{path}/publish", key)
    dates = series(client, first["series_id"], key)
    alone = client.call("PATCH", f"/v1/events/{dates[1]['id']}", key, json={"title": "Bank holiday special"})
    assert alone.json["edited_alone"] is True
    client.call("POST", f"/v1/events/{dates[2]['id']}/cancel", key, json={"reason": "Hall closed"})
    client.set_clock(datetime(2030, 10, 25, tzinfo=LONDON))  # the first date is past
    venue = {"name": "Library", "address": "2 High St", "city": "Leeds", "postcode": "LS1 1AA"}

    response = client.call("PATCH", path, key, json={"title": "Carers' circle", "venue": venue})

    assert response.status_code == 200, response.json
    after = {d["id"]: d for d in response.json["items"]}
    assert [after[d["id"]]["title"] for d in dates] == [
        dates[0]["title"],  # past
        "Bank holiday special",  # changed on its own
        dates[2]["title"],  # cancelled
        "Carers' circle",
    ]
    assert after[dates[3]["id"]]["venue"] == venue
    assert after[dates[3]["id"]]["version"] == dates[3]["version"] + 1
    updates = [m["data"] for m in client.messages() if m["type"] == "event.updated.v1"]
    [announced] = [u for u in updates if str(u["event"]["id"]) == dates[3]["id"]]
    assert announced["changes"]["title"] == {"old": dates[3]["title"], "new": "Carers' circle"}
    assert announced["changes"]["venue"]["new"] == venue


def test_a_series_change_that_would_make_a_date_inconsistent_changes_nothing(client: Any, key: str) -> None:
    first = weekly(client, key).json
    path = f"/v1/series/{first['series_id']}"
    response = client.call("PATCH", path, key, json={"format": "online"})
    assert response.status_code == 422
    assert list(response.json["errors"]) == ["online_url"]
    assert {d["format"] for d in series(client, first["series_id"], key)} == {"in_person"}


def test_the_dates_of_a_series_are_changed_one_at_a_time_only(client: Any, key: str) -> None:
    first = weekly(client, key).json
    for field in ("starts_at", "ends_at", "registration_opens_at", "recurrence"):
        response = client.call("PATCH", f"/v1/series/{first['series_id']}", key, json={field: first["starts_at"]})
        assert response.status_code == 422
        assert list(response.json["errors"]) == [field]


def test_only_the_series_organizer_may_change_it(client: Any, key: str) -> None:
    other = client.organizer("Other")["api_key"]
    first = weekly(client, key).json
    path = f"/v1/series/{first['series_id']}"
    assert client.call("PATCH", path, other, json={"title": "x"}).status_code == 404  # drafts: not even there
    client.call("POST", f"{path}/publish", key)
    assert client.call("PATCH", path, other, json={"title": "x"}).status_code == 403
    assert client.call("PATCH", path, json={"title": "x"}).status_code == 401
    assert client.call("PATCH", "/v1/series/00000000-0000-0000-0000-000000000000", key, json={}).status_code == 404
    assert {d["title"] for d in series(client, first["series_id"])} == {first["title"]}


def test_an_unlisted_date_of_a_series_is_listed_by_the_series_to_its_organizer_only(client: Any, key: str) -> None:
    first = weekly(client, key).json
    assert client.call("POST", f"/v1/series/{first['series_id']}/publish", key).status_code == 200
    dates = series(client, first["series_id"], key)
    closed = client.call("PATCH", f"/v1/events/{dates[1]['id']}", key, json={"visibility": "unlisted"})
    assert closed.status_code == 200, closed.json

    public = series(client, first["series_id"])
    assert dates[1]["id"] not in {d["id"] for d in public} and len(public) == 3
    assert dates[1]["id"] in {d["id"] for d in series(client, first["series_id"], key)}
    assert client.call("GET", f"/v1/events/{dates[1]['id']}").status_code == 200  # its own link still works
