"""The rules of events, without Flask or a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gather_events import domain

START = datetime(2030, 3, 1, 18, 0, tzinfo=UTC)


def whole(**overrides: object) -> dict[str, object]:
    return {
        "starts_at": START,
        "ends_at": START + timedelta(hours=1),
        "format": "in_person",
        "venue": {"name": "Hall", "address": "1 High St"},
        "online_url": None,
    } | overrides


@pytest.mark.parametrize(
    ("step", "current", "expected"),
    [
        (domain.PUBLISH, "draft", "published"),
        (domain.POSTPONE, "published", "postponed"),
        (domain.CANCEL, "published", "cancelled"),
        (domain.CANCEL, "postponed", "cancelled"),
        (domain.REPUBLISH, "postponed", "published"),
    ],
)
def test_allowed_transitions_lead_to_their_status(step: domain.Transition, current: str, expected: str) -> None:
    assert domain.next_status(step, current) == expected


@pytest.mark.parametrize(
    ("step", "current"),
    [
        (domain.PUBLISH, "published"),
        (domain.PUBLISH, "postponed"),
        (domain.PUBLISH, "cancelled"),
        (domain.POSTPONE, "draft"),
        (domain.POSTPONE, "postponed"),
        (domain.POSTPONE, "cancelled"),
        (domain.CANCEL, "draft"),
        (domain.CANCEL, "cancelled"),
        (domain.REPUBLISH, "published"),
    ],
)
def test_other_transitions_are_refused_naming_the_current_status(step: domain.Transition, current: str) -> None:
    with pytest.raises(domain.TransitionNotAllowed, match=current) as caught:
        domain.next_status(step, current)
    assert caught.value.current == current


def test_a_cancelled_event_is_final() -> None:
    with pytest.raises(domain.TransitionNotAllowed, match="no longer change"):
        domain.check_editable("cancelled")
    for status in ("draft", "published", "postponed"):
        domain.check_editable(status)


def test_only_setting_the_time_republishes_a_postponed_event() -> None:
    assert domain.republishes("postponed", ["starts_at", "title"])
    assert domain.republishes("postponed", ["ends_at"])
    assert not domain.republishes("postponed", ["title"])
    assert not domain.republishes("published", ["starts_at"])


def test_a_consistent_event_has_no_errors() -> None:
    assert domain.consistency_errors(whole()) == {}
    assert domain.consistency_errors(whole(format="online", venue=None, online_url="https://x.org")) == {}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"ends_at": START}, "ends_at"),
        ({"format": "online", "venue": None}, "online_url"),
        ({"format": "hybrid", "online_url": "https://x.org", "venue": None}, "venue"),
        ({"format": "hybrid"}, "online_url"),
    ],
)
def test_inconsistent_events_name_the_field(overrides: dict, field: str) -> None:
    assert field in domain.consistency_errors(whole(**overrides))


def test_tags_are_normalized_in_the_organizers_order() -> None:
    assert domain.normalize_tags([" Grief", "grief ", "", "Art"]) == ["grief", "art"]


def test_changes_list_old_and_new_values_ready_for_json() -> None:
    later = START + timedelta(days=1)
    assert domain.changes(
        {"title": "A", "starts_at": START, "capacity": 5}, {"title": "B", "starts_at": later, "capacity": 5}
    ) == {
        "title": {"old": "A", "new": "B"},
        "starts_at": {"old": START.isoformat(), "new": later.isoformat()},
    }


def test_the_same_instant_in_another_offset_is_no_change() -> None:
    paris = START.astimezone(ZoneInfo("Europe/Paris"))
    assert domain.changes({"starts_at": START}, {"starts_at": paris}) == {}


def test_weekly_occurrences_keep_local_time_across_daylight_saving() -> None:
    london = ZoneInfo("Europe/London")
    start = datetime(2030, 3, 26, 18, 0, tzinfo=london)  # the clocks go forward on 31 March 2030
    dates = domain.occurrences("FREQ=WEEKLY;COUNT=3", start, start + timedelta(hours=2), "Europe/London")
    assert [d.starts_at.astimezone(london).hour for d in dates] == [18, 18, 18]
    assert [d.starts_at.astimezone(UTC).hour for d in dates] == [18, 17, 17]
    assert all(d.ends_at - d.starts_at == timedelta(hours=2) for d in dates)


def test_an_rrule_prefix_is_accepted_and_until_bounds_the_series() -> None:
    dates = domain.occurrences("RRULE:FREQ=DAILY;UNTIL=20300303T235959", START, START + timedelta(hours=1), "UTC")
    assert len(dates) == 3


def test_weekday_and_monthly_rules_give_the_dates_a_group_expects() -> None:
    weekdays = domain.occurrences("FREQ=DAILY;BYDAY=MO,WE;COUNT=4", START, START + timedelta(hours=1), "UTC")
    assert [d.starts_at.strftime("%a %d") for d in weekdays] == ["Mon 04", "Wed 06", "Mon 11", "Wed 13"]
    last_fridays = domain.occurrences("FREQ=MONTHLY;BYDAY=-1FR;COUNT=2", START, START + timedelta(hours=1), "UTC")
    assert [d.starts_at.date().isoformat() for d in last_fridays] == ["2030-03-29", "2030-04-26"]


def test_an_until_in_utc_is_understood_and_local_time_kept() -> None:
    london = ZoneInfo("Europe/London")
    start = datetime(2030, 10, 22, 18, 0, tzinfo=london)  # the clocks go back on 27 October 2030
    dates = domain.occurrences("FREQ=WEEKLY;UNTIL=20301105T235959Z", start, start + timedelta(hours=1), "Europe/London")
    assert [d.starts_at.astimezone(london).hour for d in dates] == [18, 18, 18]


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=WEEKLY;COUNT=53",
        "NOT A RULE",
        "",
        "FREQ=WEEKLY\nRRULE:FREQ=DAILY",
        "FREQ=WEEKLY;UNTIL=20200101T000000",
        "FREQ=WEEKLY;INTERVAL=0;COUNT=2",
        "FREQ=WEEKLY;BYDAY=XX;COUNT=2",
        "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
    ],
)
def test_bad_overlong_or_impossible_rules_are_refused(rule: str) -> None:
    with pytest.raises(domain.RecurrenceError):
        domain.occurrences(rule, START, START + timedelta(hours=1), "UTC")


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=HOURLY;COUNT=2",
        "FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30",
        "FREQ=DAILY;BYSETPOS=2",
        "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30",
        "FREQ=WEEKLY;BYEASTER=0",
        "FREQ=WEEKLY;BYMONTH=2;BYMONTHDAY=30;BYSETPOS=" + ",".join(str(n) for n in range(1, 31)),
    ],
)
def test_rules_that_could_search_for_hours_are_refused_at_once(rule: str) -> None:
    with pytest.raises(domain.RecurrenceError):
        domain.occurrences(rule, START, START + timedelta(hours=1), "UTC")


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=WEEKLY;BYMONTH=2;BYMONTHDAY=30",  # took 1.6 s before the search was bounded
        "FREQ=WEEKLY;BYMONTH=2;BYMONTHDAY=30;BYSETPOS=1,2,3,4,5,6,7",  # held a worker 30 s
        "FREQ=WEEKLY;BYDAY=MO;BYSETPOS=2",  # a position no week has
        "FREQ=MONTHLY;BYMONTH=4;BYMONTHDAY=31",
        "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;COUNT=30",  # 29 February: the 30th is after 2099
    ],
)
def test_a_rule_whose_dates_never_come_or_come_too_late_is_refused(rule: str) -> None:
    """The search for dates is bounded (domain.SHIFT_YEARS): it ends, whatever the rule says."""
    with pytest.raises(domain.RecurrenceError):
        domain.occurrences(rule, START, START + timedelta(hours=1), "UTC")


def test_rare_dates_and_local_or_utc_ends_keep_their_meaning() -> None:
    leap_days = domain.occurrences(
        "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;COUNT=3", START, START + timedelta(hours=1), "UTC"
    )
    assert [d.starts_at.date().isoformat() for d in leap_days] == ["2032-02-29", "2036-02-29", "2040-02-29"]
    friday_13ths = domain.occurrences(
        "FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13;COUNT=2", START, START + timedelta(hours=1), "UTC"
    )
    assert all(d.starts_at.weekday() == 4 and d.starts_at.day == 13 for d in friday_13ths)
    for until in ("20300322", "20300322T235959", "20300322T235959Z"):
        dates = domain.occurrences(f"FREQ=WEEKLY;UNTIL={until}", START, START + timedelta(hours=1), "Europe/London")
        assert [d.starts_at.day for d in dates] == [1, 8, 15, 22]  # a date, a local time, a UTC time
