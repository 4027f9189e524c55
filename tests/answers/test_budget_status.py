"""Each budget's figures from calls stored at chosen times: exact Decimal spend, burn rates over windows that
begin between hours, projections, crossing dates, unpriced calls, and an empty history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from costspan.collector.answers.budget_status import NOT_ENOUGH_DATA, evaluate
from costspan.collector.answers.budgets import Budget
from costspan.exporters.duckdb_views import connect
from tests.support.stored_calls import call, write_calls

NOW = datetime(2026, 3, 10, 12, 30, tzinfo=UTC)


def at(*args: int) -> datetime:
    return datetime(*args)  # naive UTC, as start_time is stored


def month(name: str, amount: str, **scope: str) -> Budget:
    return Budget(name, dict(scope), Decimal(amount), "month")


def history(tmp_path):
    write_calls(
        tmp_path,
        [
            call(at(2026, 2, 20), "1", team="ads"),  # the history begins: over 7 days back
            call(at(2026, 2, 28, 23, 59), "5", team="search"),  # last month
            call(at(2026, 3, 1), "10", team="search"),  # the first instant of the month
            call(at(2026, 3, 5, 8), "20", team="ads"),
            call(at(2026, 3, 9, 12, 15), "7", team="search"),  # 24h and 15 minutes ago
            call(at(2026, 3, 9, 12, 45), "4", team="search"),  # within the last 24 hours
            call(at(2026, 3, 10, 9), None, team="search", pricing_status="unknown_model", request_model="x"),
            call(at(2026, 3, 10, 12, 10), "2", team="search"),
            call(at(2026, 3, 10, 12, 27), "1", team="search"),
        ],
    )


def test_spent_burn_rates_projection_and_crossing_are_exact(tmp_path):
    history(tmp_path)
    rolling = Budget("search-24h", {"team": "search"}, Decimal(10), "rolling", window=timedelta(hours=24))
    org, search, last_day = evaluate(
        connect(tmp_path), [month("org", "100"), month("search", "40", team="search"), rolling], NOW
    )

    assert (org.spent, org.calls, org.unpriced_calls) == (Decimal(44), 7, 1)
    assert org.used_percent == Decimal("44.00") and org.remaining == Decimal(56)
    assert (org.period_start, org.period_end) == (
        datetime(2026, 3, 1, tzinfo=UTC),
        datetime(2026, 4, 1, tzinfo=UTC),
    )

    assert (search.spent, search.calls, search.unpriced_calls) == (Decimal(24), 6, 1)
    assert isinstance(search.spent, Decimal)
    assert (search.used_percent, search.remaining) == (Decimal("60.00"), Decimal(16))
    # spend per hour: 5m: 1 USD; 30m and 1h: 3 USD; 6h: 3; 24h: 7 (the 12:15 call left out); 3d, 7d: 14
    rates = {k: str(v) for k, v in search.burn_per_hour.items()}
    assert rates == {
        "5m": "12.000000000000",
        "30m": "6.000000000000",
        "1h": "3.000000000000",
        "6h": "0.500000000000",
        "24h": "0.291666666667",
        "3d": "0.194444444444",
        "7d": "0.083333333333",
    }
    # against the rate the budget allows: 40 USD over March's 744 hours
    assert search.allowed_per_hour == Decimal("0.053763440860")
    assert search.burn_ratio["5m"] == Decimal("223.2000") and search.burn_ratio["7d"] == Decimal("1.5500")
    assert search.burn_ratio["3d"] == Decimal("3.6167")
    # 24 spent + 7/24 USD per hour x the 515.5 hours to April
    assert search.projected == Decimal("174.354166666667")
    assert "24h" in search.projection
    # 16 USD left at 7/24 per hour: 54.857 hours from now
    assert search.crossing_at is not None
    assert abs(search.crossing_at - (NOW + timedelta(hours=16 * 24 / 7))) < timedelta(seconds=1)

    assert (last_day.spent, last_day.calls, last_day.unpriced_calls) == (Decimal(7), 4, 1)
    assert last_day.period_start == NOW - timedelta(hours=24) and last_day.period_end == NOW
    assert last_day.projected == Decimal("7.000000000000")  # the 24h rate over the 24h window
    assert last_day.crossing_at is None


def test_a_budget_already_over_says_when_it_went_over(tmp_path):
    history(tmp_path)
    (search,) = evaluate(connect(tmp_path), [month("search", "15", team="search")], NOW)
    assert search.remaining == Decimal(-9) and search.used_percent == Decimal("160.00")
    # the bucket in which the 7 USD call took it over: a minute, as a window begins in that hour
    assert search.crossing_at == datetime(2026, 3, 9, 12, 15, tzinfo=UTC)


def test_a_half_hour_time_zone_counts_from_its_own_midnight(tmp_path):
    write_calls(
        tmp_path,
        [
            call(at(2026, 3, 10, 18, 20), "1"),  # 23:50 in Kolkata: yesterday
            call(at(2026, 3, 10, 18, 40), "2"),  # 00:10: today
            call(at(2026, 3, 10, 19, 10), "3"),
        ],
    )
    india = Budget("india", {}, Decimal(10), "day", timezone="Asia/Kolkata")
    (status,) = evaluate(connect(tmp_path), [india], datetime(2026, 3, 10, 21, 5, tzinfo=UTC))
    assert status.period_start == datetime(2026, 3, 10, 18, 30, tzinfo=UTC)
    assert (status.spent, status.calls) == (Decimal(5), 2)


def test_an_empty_history_is_zero_spent_and_not_enough_data(tmp_path):
    budgets = [month("org", "100"), Budget("r", {}, Decimal(1), "rolling", window=timedelta(hours=1))]
    for status in evaluate(connect(tmp_path), budgets, NOW):
        assert (status.spent, status.calls, status.unpriced_calls) == (Decimal(0), 0, 0)
        assert status.projected is None and status.projection == NOT_ENOUGH_DATA
        assert status.crossing_at is None
        assert set(status.burn_per_hour.values()) == {None}


def test_a_short_history_projects_from_what_there_is_and_under_an_hour_not_at_all(tmp_path):
    write_calls(tmp_path, [call(at(2026, 3, 10, 10, 30), "6")])
    (early,) = evaluate(connect(tmp_path), [month("org", "1000")], datetime(2026, 3, 10, 10, 50, tzinfo=UTC))
    assert early.spent == Decimal(6) and early.projected is None and early.projection == NOT_ENOUGH_DATA
    assert early.burn_per_hour["5m"] == Decimal(0) and early.burn_per_hour["1h"] == Decimal(18)  # 6 in 20 min
    write_calls(tmp_path, [call(at(2026, 3, 10, 12, 0), "3")])
    (status,) = evaluate(connect(tmp_path), [month("org", "1000")], NOW)
    # the history begins with the hour of the first call: 9 USD in 2.5 hours, over the 515.5 hours left
    assert status.burn_per_hour["24h"] == Decimal("3.6") and status.burn_per_hour["7d"] == Decimal("3.6")
    assert status.projected == Decimal(9) + Decimal("3.6") * Decimal("515.5")
    assert "the last 2h30m' spend per hour" in status.projection
