"""The listing and the event page, from the pages' own copy of events and seats."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from flask.testing import FlaskClient

Publish = Callable[..., dict[str, Any]]
Seats = Callable[..., None]
Read = Callable[[Any], Any]


def in_days(days: float) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) + timedelta(days=days)


def titles(client: FlaskClient, read: Read, **query: Any) -> list[str]:
    return [a.get_text(strip=True) for a in read(client.get("/", query_string=query)).soup.select(".event-list h3 a")]


def test_the_listing_shows_upcoming_events_soonest_first_with_time_place_and_places(
    publish: Publish, seats: Seats, client: FlaskClient, read: Read
) -> None:
    publish(title="Walk and talk", starts_at=in_days(9), format="online", venue=None)
    sooner = publish(title="Grief café", starts_at=datetime(2031, 1, 7, 18, 30, tzinfo=UTC))
    publish(title="Draft never listed", status="cancelled")
    seats(sooner["id"], confirmed=7)
    response = client.get("/", headers={"Accept-Language": "en-GB"})
    assert response.status_code == 200
    listing = read(response)
    assert [a.get_text(strip=True) for a in listing.soup.select(".event-list h3 a")] == ["Walk and talk", "Grief café"]
    cafe = listing.soup.select(".event-list__item")[1]
    words = " ".join(cafe.get_text(" ").split())
    assert "Tuesday, 7 January 2031, 18:30 to 20:30 (Greenwich Mean Time)" in words
    assert "Community Hall, Leeds" in words
    assert "3 places left" in words
    assert "Online" in " ".join(listing.soup.select(".event-list__item")[0].get_text(" ").split())


def test_places_say_left_waiting_list_or_full_in_words(
    publish: Publish, seats: Seats, client: FlaskClient, read: Read
) -> None:
    one_left, waiting, full, unlimited = (publish(title=t) for t in ("One", "Waiting", "Full", "Unlimited"))
    seats(one_left["id"], confirmed=9)
    seats(waiting["id"], confirmed=10, waitlisted=2)
    seats(full["id"], confirmed=10, waitlist_enabled=False)
    seats(unlimited["id"], confirmed=40, capacity=None)
    tags = {
        item.select_one("h3").get_text(strip=True): item.select_one(".tag").get_text(strip=True)
        for item in read(client.get("/")).soup.select(".event-list__item")
    }
    assert tags == {
        "One": "1 place left",
        "Waiting": "Full – waiting list open",
        "Full": "Full",
        "Unlimited": "Places available",
    }


def test_the_newest_seat_counts_win_whatever_order_they_arrive_in(
    publish: Publish, seats: Seats, client: FlaskClient, read: Read
) -> None:
    event = publish()
    seats(event["id"], confirmed=8, seq=5)
    seats(event["id"], confirmed=2, seq=4)  # older, arriving late
    assert read(client.get(f"/events/{event['id']}")).one("dd .tag").get_text(strip=True) == "2 places left"


def test_an_older_event_version_arriving_late_changes_nothing(
    publish: Publish, client: FlaskClient, read: Read
) -> None:
    event = publish(title="New title", version=3)
    publish("event.updated.v1", id=event["id"], version=2, title="Old title")
    assert read(client.get(f"/events/{event['id']}")).one("h1").get_text(strip=True) == "New title"


def test_search_and_filters_narrow_the_listing(publish: Publish, client: FlaskClient, read: Read) -> None:
    publish(title="Anxiety peer support", kind="support_group", tags=["anxiety"], starts_at=in_days(3))
    publish(
        title="Mindful drawing",
        kind="workshop",
        format="online",
        venue=None,
        accessibility={"captions": True},
        starts_at=in_days(5),
    )
    publish(
        title="Walk in the park",
        kind="recreational",
        venue={"name": "Roundhay Park", "city": "Leeds"},
        accessibility={"step_free": True, "captions": True},
        starts_at=in_days(8),
    )
    publish(title="Talk in York", kind="talk", venue={"name": "Library", "city": "York"}, starts_at=in_days(20))
    assert titles(client, read, q="ANXIETY") == ["Anxiety peer support"]
    assert titles(client, read, kind="workshop") == ["Mindful drawing"]
    assert titles(client, read, format="online") == ["Mindful drawing"]
    assert titles(client, read, city=" leeds ") == ["Anxiety peer support", "Walk in the park"]
    assert titles(client, read, access="captions") == ["Mindful drawing", "Walk in the park"]
    assert titles(client, read, access=["captions", "step_free"]) == ["Walk in the park"]
    since, until = in_days(4).date().isoformat(), in_days(10).date().isoformat()
    assert titles(client, read, date_from=since, date_to=until) == ["Mindful drawing", "Walk in the park"]


def test_a_filter_that_is_not_valid_is_said_next_to_it_and_the_rest_still_apply(
    publish: Publish, client: FlaskClient, read: Read
) -> None:
    publish(title="Quiz night", kind="social")
    response = client.get("/", query_string={"kind": "social", "date_from": "next tuesday", "format": "by post"})
    listing = read(response)
    assert response.status_code == 200
    assert "Enter a real date, like 2026-12-31" in listing.text("#date_from-error")
    assert listing.one(".error-summary a[href='#date_from']")
    assert listing.one("#date_from")["aria-describedby"] == "date_from-error"
    assert listing.soup.title.get_text().startswith("Error:")
    assert [a.get_text(strip=True) for a in listing.soup.select(".event-list h3 a")] == ["Quiz night"]


def test_the_listing_goes_page_by_page_keeping_the_filters(publish: Publish, client: FlaskClient, read: Read) -> None:
    for n in range(23):
        publish(title=f"Circle {n:02}", starts_at=in_days(1 + n / 24))
    first = read(client.get("/", query_string={"q": "circle"}))
    assert len(first.soup.select(".event-list__item")) == 20
    next_link = first.one("a[rel=next]")["href"]
    assert "q=circle" in next_link and "page=2" in next_link
    second = read(client.get(next_link))
    assert [a.get_text(strip=True) for a in second.soup.select(".event-list h3 a")] == [
        "Circle 20",
        "Circle 21",
        "Circle 22",
    ]
    assert second.soup.select("a[rel=next]") == []
    assert "page=" not in second.one("a[rel=prev]")["href"] or "page=1" in second.one("a[rel=prev]")["href"]


def test_ended_and_cancelled_events_are_not_listed(publish: Publish, client: FlaskClient, read: Read) -> None:
    publish(title="Over", starts_at=in_days(-2))
    publish(title="Called off", status="cancelled")
    publish(title="Postponed for now", status="postponed")
    assert titles(client, read) == ["Postponed for now"]


def test_an_unlisted_event_is_never_listed_nor_found_but_its_page_opens_by_its_link(
    publish: Publish, client: FlaskClient, read: Read
) -> None:
    listed = publish(title="Open circle", starts_at=in_days(7))
    hidden = publish(title="Quiet circle", visibility="unlisted")
    turned = publish(title="Quiet walk", starts_at=in_days(8))  # listed at first, then its organizer unlists it
    assert titles(client, read) == ["Open circle", "Quiet walk"]
    publish("event.updated.v1", **(turned | {"version": 2, "visibility": "unlisted"}))
    assert titles(client, read) == ["Open circle"]
    assert titles(client, read, q="quiet") == []
    for event in (hidden, turned):
        response = client.get(f"/events/{event['id']}")
        assert response.status_code == 200
        shown = read(response)
        assert shown.one("h1").get_text(strip=True) == event["title"]
        assert shown.soup.select("main form[method=post]") != []  # registration works by the link, too
        assert "unlisted" not in response.get_data(as_text=True).lower()
        assert shown.one("meta[name=robots]")["content"] == "noindex"  # nor found by a search engine
    assert read(client.get(f"/events/{listed['id']}")).soup.select("meta[name=robots]") == []


def test_an_event_announced_before_visibility_existed_is_listed(
    publish: Publish, send: Callable[..., Any], client: FlaskClient, read: Read
) -> None:
    old = publish(title="Old circle")
    del old["visibility"]
    send("event.updated.v1", {"event": old | {"version": 2, "title": "Old circle, renamed"}, "changes": {}})
    assert titles(client, read) == ["Old circle, renamed"]


def test_the_event_page_shows_everything_public_and_never_the_online_link(
    publish: Publish, client: FlaskClient, read: Read
) -> None:
    event = publish(
        title="Hybrid circle",
        format="hybrid",
        online_url="https://meet.example/secret-room",
        description="Come as you are.\n\nTea and biscuits.",
        accessibility={"step_free": True, "hearing_loop": True, "notes": "Lift by the side door."},
        resources=[{"title": "Samaritans 116 123", "url": "https://samaritans.example/"}],
    )
    response = client.get(f"/events/{event['id']}", headers={"Accept-Language": "en"})
    assert response.status_code == 200
    assert "secret-room" not in response.get_data(as_text=True)
    shown = read(response)
    words = shown.text()
    for expected in (
        "Hybrid circle",
        "A safe space to talk.",
        "Community Hall",
        "1 High St",
        "LS1 1AA",
        "You can also join online",
        "Mind Matters",
        "Come as you are.",
        "Tea and biscuits.",
        "Step-free access",
        "Hearing loop",
        "Lift by the side door.",
        "Samaritans 116 123",
        "10 places left",
    ):
        assert expected in words, expected
    assert shown.one(".help-line a")["href"] == "https://samaritans.example/"
    assert len(shown.soup.select("h1")) == 1


def test_add_to_calendar_gives_the_event_in_its_time_zone_without_the_online_link(
    publish: Publish, client: FlaskClient, read: Read
) -> None:
    import icalendar

    event = publish(title="Evening circle", format="online", venue=None, online_url="https://meet.example/x")
    href = read(client.get(f"/events/{event['id']}")).one("a[href$='calendar.ics']")["href"]
    response = client.get(href)
    assert response.status_code == 200
    assert response.mimetype == "text/calendar"
    [item] = icalendar.Calendar.from_ical(response.data).walk("VEVENT")
    assert str(item["uid"]) == f"{event['id']}@gather.events"
    assert item["dtstart"].dt == event["starts_at"]
    assert str(item["dtstart"].dt.tzinfo) == "Europe/London"
    assert b"meet.example" not in response.data


def test_an_unknown_event_is_a_page_not_found(client: FlaskClient, read: Read) -> None:
    response = client.get(f"/events/{uuid.uuid4()}")
    assert response.status_code == 404
    assert read(response).one("h1").get_text(strip=True) == "Page not found"
    assert client.get("/events/not-a-uuid").status_code == 404
