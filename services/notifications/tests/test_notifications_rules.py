"""The settings' forms and the backoff, as pure rules."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from gather_notifications import rules


def test_reminder_offsets_accept_seconds_minutes_hours_and_days() -> None:
    assert rules.parse_offsets("90s, 15m,2h,1d") == (
        timedelta(days=1),
        timedelta(hours=2),
        timedelta(minutes=15),
        timedelta(seconds=90),
    )


@pytest.mark.parametrize("setting", ["", "24", "1w", "-1h", "h1"])
def test_a_malformed_reminder_offset_is_refused_with_its_setting_named(setting: str) -> None:
    with pytest.raises(ValueError, match="GATHER_REMINDER_OFFSETS"):
        rules.parse_offsets(setting)


def test_quiet_hours_may_also_lie_within_one_day() -> None:
    london = ZoneInfo("Europe/London")
    window = rules.parse_quiet_hours("13:00-14:30")
    assert window == (time(13), time(14, 30))
    assert rules.quiet_hours_end(datetime(2026, 1, 5, 13, 10, tzinfo=UTC), london, window) == datetime(
        2026, 1, 5, 14, 30, tzinfo=UTC
    )
    assert rules.quiet_hours_end(datetime(2026, 1, 5, 14, 30, tzinfo=UTC), london, window) is None


def test_retries_back_off_exponentially_with_jitter_up_to_an_hour() -> None:
    assert rules.retry_delay(1, rand=lambda: 1.0) == timedelta(seconds=30)
    assert rules.retry_delay(1, rand=lambda: 0.0) == timedelta(seconds=15)
    assert rules.retry_delay(3, rand=lambda: 1.0) == timedelta(minutes=2)
    assert rules.retry_delay(20, rand=lambda: 1.0) == timedelta(hours=1)
