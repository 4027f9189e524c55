"""Budget periods on the local calendar of the budget's time zone: DST days of 23 and 25 hours, ISO weeks,
month reset days, rolling windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from costspan.collector.answers.budgets import Budget
from costspan.collector.answers.periods import bounds, describe_window, parse_window, period_bounds


def budget(period: str, timezone: str = "UTC", reset_day: int = 1, window: timedelta | None = None) -> Budget:
    return Budget("b", {}, Decimal(100), period, reset_day, window, timezone)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_a_utc_day_week_and_month():
    now = utc(2026, 3, 4, 15, 30)  # a Wednesday
    assert period_bounds(budget("day"), now) == (utc(2026, 3, 4), utc(2026, 3, 5))
    assert period_bounds(budget("week"), now) == (utc(2026, 3, 2), utc(2026, 3, 9))
    assert period_bounds(budget("month"), now) == (utc(2026, 3, 1), utc(2026, 4, 1))
    # the first instant of a period belongs to it; the last belongs to the next
    assert period_bounds(budget("day"), utc(2026, 3, 5)) == (utc(2026, 3, 5), utc(2026, 3, 6))
    assert period_bounds(budget("week"), utc(2026, 3, 8, 23, 59, 59))[1] == utc(2026, 3, 9)


def test_an_iso_week_spans_the_new_year():
    # 2026-01-01 is a Thursday: its ISO week began on Monday 2025-12-29
    assert period_bounds(budget("week"), utc(2026, 1, 1, 12)) == (utc(2025, 12, 29), utc(2026, 1, 5))


def test_berlin_days_of_23_and_25_hours():
    spring = period_bounds(budget("day", "Europe/Berlin"), utc(2026, 3, 29, 12))
    assert spring == (utc(2026, 3, 28, 23), utc(2026, 3, 29, 22))  # CET midnight to CEST midnight
    assert spring[1] - spring[0] == timedelta(hours=23)
    autumn = period_bounds(budget("day", "Europe/Berlin"), utc(2026, 10, 25, 12))
    assert autumn[1] - autumn[0] == timedelta(hours=25)
    # the DST week and month are an hour short, in instants
    week = period_bounds(budget("week", "Europe/Berlin"), utc(2026, 3, 29, 12))
    assert week == (utc(2026, 3, 22, 23), utc(2026, 3, 29, 22))
    assert week[1] - week[0] == timedelta(days=7, hours=-1)
    # late on Sunday evening UTC it is already Monday in Berlin: the next week
    assert period_bounds(budget("week", "Europe/Berlin"), utc(2026, 3, 29, 22, 30))[0] == utc(2026, 3, 29, 22)


def test_a_half_hour_zone_starts_between_utc_hours():
    start, end = period_bounds(budget("day", "Asia/Kolkata"), utc(2026, 3, 4, 20))
    assert (start, end) == (utc(2026, 3, 4, 18, 30), utc(2026, 3, 5, 18, 30))


def test_a_midnight_that_does_not_exist_begins_the_day_at_the_jump():
    # America/Santiago went from 00:00 to 01:00 on 2024-09-08: the day began at 04:00 UTC, lasting 23 hours
    start, end = period_bounds(budget("day", "America/Santiago"), utc(2024, 9, 8, 12))
    assert start == utc(2024, 9, 8, 4)
    assert end - start == timedelta(hours=23)


@pytest.mark.parametrize(
    ("now", "start", "end"),
    [
        (utc(2026, 3, 20), utc(2026, 3, 15), utc(2026, 4, 15)),
        (utc(2026, 3, 14, 23, 59), utc(2026, 2, 15), utc(2026, 3, 15)),
        (utc(2026, 3, 15), utc(2026, 3, 15), utc(2026, 4, 15)),
        (utc(2026, 12, 31), utc(2026, 12, 15), utc(2027, 1, 15)),
        (utc(2026, 1, 2), utc(2025, 12, 15), utc(2026, 1, 15)),
    ],
)
def test_a_month_with_a_reset_day(now, start, end):
    assert period_bounds(budget("month", reset_day=15), now) == (start, end)


def test_a_month_in_a_time_zone_resets_at_its_local_midnight():
    start, end = period_bounds(budget("month", "America/New_York", 28), utc(2026, 3, 1))
    assert (start, end) == (utc(2026, 2, 28, 5), utc(2026, 3, 28, 4))  # EST to EDT


def test_a_rolling_window_ends_now():
    now = utc(2026, 3, 4, 15, 30, 12)
    assert period_bounds(budget("rolling", window=timedelta(hours=24)), now) == (now - timedelta(days=1), now)


def test_windows_read_and_write():
    assert parse_window("24h") == timedelta(hours=24)
    assert parse_window("1d12h") == timedelta(hours=36)
    assert parse_window("90m") == timedelta(minutes=90)
    assert parse_window("2w") == timedelta(days=14)
    assert describe_window(timedelta(hours=36)) == "1d12h"
    for bad in ("", "24", "h", "1y", "-1h", "1.5h"):
        with pytest.raises(ValueError, match="a duration such as"):
            parse_window(bad)


def test_now_must_be_aware():
    with pytest.raises(ValueError, match="aware"):
        bounds("day", datetime(2026, 3, 4))
