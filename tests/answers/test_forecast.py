"""Spend forecasts: each method on series whose future is known, the backtest's choice, the fallbacks, the
intervals; forecasts of stored calls through ``costspan forecast``, the ``forecasts`` table and the gauges."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from costspan.collector.answers import _forecast_models as models
from costspan.collector.answers.forecast import (
    NOT_ENOUGH_DATA,
    QUANTUM,
    daily_series,
    forecast_period,
    forecast_series,
    period_bounds,
)
from costspan.collector.answers.jobs import jobs_from_config
from costspan.collector.answers.runner import AnswerRunner
from costspan.collector.cli import main
from costspan.collector.config import CollectorConfig
from costspan.exporters.duckdb_views import connect
from tests.support.stored_calls import call, write_calls

D0 = date(2026, 1, 5)  # a Monday
WEEK = [Decimal(v) for v in ("10", "20", "30", "40", "50", "5", "1")]


def days(values) -> list[tuple[date, Decimal]]:
    return [(D0 + timedelta(days=i), Decimal(v)) for i, v in enumerate(values)]


def noisy(n: int, seed: int, level: float = 100.0, slope: float = 0.0, spread: float = 5.0) -> list:
    rng = np.random.default_rng(seed)
    return days(f"{max(0.0, level + slope * i + rng.normal(0, spread)):.6f}" for i in range(n))


def test_a_linear_series_is_forecast_exactly_by_linear():
    forecast = forecast_series(days(10 + 2 * i for i in range(40)), 10)
    assert forecast.method == "linear"
    assert forecast.backtest_error == 0
    assert forecast.backtest["run_rate"] > 10  # run-rate lags a trend by half its window
    assert forecast.first_day == D0 + timedelta(days=40)
    assert forecast.day(0).p50 == Decimal(90)  # 10 + 2 * 40
    total = forecast.total([1] * 10)
    assert total == total.__class__(*(Decimal(990),) * 5)  # no residuals: the interval is the point


def test_a_pure_weekly_pattern_is_forecast_by_the_seasonal_method():
    forecast = forecast_series(days(WEEK[i % 7] for i in range(70)), 10)
    assert forecast.method == "seasonal"
    assert forecast.backtest["seasonal"] == 0 < forecast.backtest["run_rate"] < forecast.backtest["linear"]
    expected = [WEEK[(70 + i) % 7] for i in range(10)]
    assert [forecast.day(i).p50 for i in range(10)] == [v.quantize(QUANTUM) for v in expected]
    assert forecast.total([1] * 10).p50 == sum(expected)


def test_the_backtest_judges_the_cumulative_spend_not_each_day():
    # over whole weeks a 7-day run-rate sums the weekly pattern exactly, though every single day is wrong:
    # the same series as above, a 7-day horizon, and the tie goes to the simplest method
    weekly = forecast_series(days(WEEK[i % 7] for i in range(70)), 7)
    assert weekly.method == "run_rate" and weekly.backtest["run_rate"] == 0 == weekly.backtest["seasonal"]
    assert weekly.total([1] * 7).p50 == sum(WEEK) and weekly.day(0).p50 != WEEK[0]


def test_the_backtest_keeps_run_rate_for_a_flat_noisy_series_and_picks_linear_for_a_clear_trend():
    # (under three weeks: the seasonal model, whose long memory also suits a flat series, is not tried)
    flat = forecast_series(noisy(20, seed=1), 7)
    assert flat.method == "run_rate" and flat.backtest["linear"] > flat.backtest["run_rate"]
    growing = forecast_series(noisy(60, seed=1, slope=3.0), 30)
    assert growing.method == "linear"
    assert growing.backtest["linear"] < growing.backtest["run_rate"] * Decimal("0.5")


def test_an_exact_tie_goes_to_the_simplest_method():
    forecast = forecast_series(days(["1.5"] * 60), 31)
    assert forecast.method == "run_rate" and set(forecast.backtest.values()) == {Decimal(0)}
    assert forecast.total([1] * 31).p50 == Decimal("46.5")


def test_fewer_than_seven_days_fall_back_to_run_rate_and_say_so():
    forecast = forecast_series(days(["10", "11", "12"]), 5)
    assert forecast.method == "run_rate" and forecast.backtest == {} and forecast.backtest_error is None
    assert forecast.note == "3 days of history, fewer than 7: run-rate, not compared with other methods"
    day = forecast.day(0)
    assert day.p50 == 11 and 0 < day.lo95 < day.lo80 < 11 < day.hi80 < day.hi95
    # Student's t, 2 degrees of freedom, spread 1 * sqrt(1 + 1/3): 11 -+ 1.886 * 1.155, 11 -+ 4.303 * 1.155
    assert (round(day.lo80, 2), round(day.hi95, 2)) == (Decimal("8.82"), Decimal("15.97"))
    one = forecast_series(days(["2"]), 5)
    assert one.day(0) == one.day(0).__class__(Decimal(2), None, None, None, None)  # no spread from one day
    assert "1 day of history" in one.note


def test_a_history_shorter_than_the_horizon_is_backtested_on_a_shorter_horizon():
    forecast = forecast_series(noisy(12, seed=3), 31)
    assert forecast.note == "backtest over 5 days, not 31: 12 days of history"
    assert set(forecast.backtest) == {"run_rate", "linear"}  # three weeks before the seasonal one is tried


def test_an_empty_series_is_not_enough_data_never_a_number():
    forecast = forecast_series([], 30)
    assert forecast.method is None and forecast.note == NOT_ENOUGH_DATA
    assert forecast.total([1] * 30) is None and forecast.day(0) is None


@pytest.mark.parametrize("method", models.METHODS)
@pytest.mark.parametrize("slope", [0.0, -4.0])  # falling: the line crosses 0 within the horizon
def test_intervals_are_ordered_and_never_negative(method, slope):
    forecast = forecast_series(noisy(70, seed=7, level=150, slope=slope, spread=20), 40, methods=[method])
    assert forecast.method == method
    for estimate in [forecast.day(i) for i in range(40)] + [forecast.total([0.5] + [1] * 39)]:
        lo95, lo80, p50, hi80, hi95 = (
            estimate.lo95, estimate.lo80, estimate.p50, estimate.hi80, estimate.hi95,
        )  # fmt: skip
        assert Decimal(0) <= lo95 <= lo80 <= p50 <= hi80 <= hi95
        assert all(v == v.quantize(QUANTUM) for v in (lo95, lo80, p50, hi80, hi95))
    if slope < 0 and method == "linear":
        assert forecast.day(39).p50 == 0 and forecast.day(39).lo95 == 0


def test_the_seasonal_method_gives_statsmodels_intervals_that_widen_with_the_horizon():
    forecast = forecast_series(noisy(84, seed=2, spread=10), 28, methods=["seasonal"])
    near, far = forecast.day(0), forecast.day(27)
    assert far.hi95 - far.lo95 > near.hi95 - near.lo95 > 0
    week = forecast.total([1] * 7)
    assert week.lo95 < week.p50 < week.hi95 and week.hi95 - week.lo95 < 7 * (near.hi95 - near.lo95)


# --- stored calls ---------------------------------------------------------------------------------------

NOW = datetime(2026, 3, 21, 6, 0, tzinfo=UTC)  # a quarter of 21 March gone


def test_daily_series_are_utc_days_from_the_first_day_with_calls_to_yesterday_with_empty_days_as_zero(
    tmp_path,
):
    write_calls(
        tmp_path,
        [
            call(datetime(2026, 3, 17, 23, 59, 59), "0.1", team="a"),
            call(datetime(2026, 3, 18, 0, 0), "0.000000000001", team="a"),
            call(datetime(2026, 3, 20, 12), "2", team="b"),
            call(datetime(2026, 3, 21, 1), "5", team="a"),  # today: not a complete day
        ],
    )
    series = daily_series(connect(tmp_path), "team", until=date(2026, 3, 21))
    assert series == {
        "a": [(date(2026, 3, 17), Decimal("0.1")), (date(2026, 3, 18), Decimal("1E-12")),
              (date(2026, 3, 19), 0), (date(2026, 3, 20), 0)],
        "b": [(date(2026, 3, 20), Decimal(2))],
    }  # fmt: skip
    # the last 2 days: the organisation's series starts at its first day with calls in them
    two_days = daily_series(connect(tmp_path), until=date(2026, 3, 21), history_days=2)
    assert two_days == {None: [(date(2026, 3, 20), Decimal(2))]}


def _month_of_calls(data_dir) -> None:
    rows = []
    for i in range(1, 40):  # 1 $/day for search, 0.1 $ more each day for ads, the 39 days before 21 March
        day = datetime(2026, 3, 21) - timedelta(days=i)
        rows.append(call(day.replace(hour=9), "1", team="search", feature="summaries"))
        rows.append(call(day.replace(hour=13), str(Decimal("0.1") * (40 - i)), team="ads", feature="chat"))
    rows.append(call(datetime(2026, 3, 21, 2), "0.25", team="search", feature="summaries"))  # today, so far
    rows.append(call(datetime(2026, 3, 21, 7), "100", team="search"))  # after NOW: not yet
    write_calls(data_dir, rows)


def test_forecast_period_reads_the_spend_so_far_exactly_and_forecasts_the_rest_of_today_and_the_month(
    tmp_path,
):
    _month_of_calls(tmp_path)
    start, end = period_bounds("month", NOW)
    assert (start, end) == (datetime(2026, 3, 1), datetime(2026, 4, 1))
    assert period_bounds("week", NOW) == (datetime(2026, 3, 16), datetime(2026, 3, 23))  # ISO: from Monday
    assert period_bounds("day", NOW) == (datetime(2026, 3, 21), datetime(2026, 3, 22))
    assert period_bounds("month", datetime(2026, 12, 31, 23, tzinfo=UTC))[1] == datetime(2027, 1, 1)
    with pytest.raises(ValueError, match="unknown period 'quarter'"):
        period_bounds("quarter", NOW)
    period = forecast_period(connect(tmp_path), {"team": "search"}, start, end, NOW)
    assert period.actual == Decimal("20.25")  # 1-20 March, and 0.25 today
    assert period.forecast.method == "run_rate" and period.forecast.history_days == 39
    # the rest of today (18 of 24 hours) and 10 more days at 1 $
    assert period.remainder.p50 == Decimal("10.75") and period.total.p50 == Decimal("31.00")
    assert period.total.lo95 == period.total.hi95 == Decimal("31.00")

    unknown = forecast_period(connect(tmp_path), {"team": "nobody"}, start, end, NOW)
    assert unknown.actual == 0 and unknown.total is None and unknown.forecast.note == NOT_ENOUGH_DATA

    week = forecast_period(
        connect(tmp_path), None, datetime(2026, 3, 16), datetime(2026, 3, 22, 12), NOW
    )  # a custom end at noon: half of the last day
    ads_today = Decimal("4.0")  # 0.1 * 40, the ads series' next value
    assert week.forecast.method == "linear"
    assert week.remainder.p50 == Decimal("0.75") * (1 + ads_today) + Decimal("0.5") * (
        1 + ads_today + Decimal("0.1")
    )


def _cli(capsys, *argv) -> list[dict]:
    assert main(list(argv)) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_costspan_forecast_by_team_prints_each_series_with_money_as_strings(tmp_path, capsys):
    now = datetime.now(UTC)
    today = datetime(now.year, now.month, now.day)
    rows = [call(today - timedelta(days=i) + timedelta(hours=9), "2.5", team="search") for i in range(1, 15)]
    rows += [call(today - timedelta(days=i) + timedelta(hours=3), "1", team="new") for i in range(1, 4)]
    write_calls(tmp_path, rows)
    found = _cli(
        capsys, "forecast", "--by", "team", "--days", "3", "--data-dir", str(tmp_path), "--format", "json"
    )
    assert [r["value"] for r in found] == ["search", "new"]  # by spend
    search, new = found
    assert search["scope"] == "team" and search["method"] == "run_rate" and search["history_days"] == 14
    assert search["next_days"] == 3 and search["next_p50"] == "7.5" and search["next_lo95"] == "7.5"
    assert isinstance(search["period_p50"], str) and Decimal(search["period_p50"]) >= Decimal(
        search["spent_to_date"]
    )
    assert new["note"] == "3 days of history, fewer than 7: run-rate, not compared with other methods"
    assert new["next_p50"] == new["next_lo95"] == "3"  # three equal days: no spread

    organisation = _cli(
        capsys, "forecast", "--data-dir", str(tmp_path), "--period", "day", "--format", "json"
    )
    assert [(r["scope"], r["value"], r["period"]) for r in organisation] == [("organisation", None, "day")]

    assert main(["forecast", "--by", "region", "--data-dir", str(tmp_path)]) == 2
    assert "unknown dimension 'region'" in capsys.readouterr().err


def test_an_empty_data_directory_is_not_enough_data(tmp_path, capsys):
    write_calls(tmp_path, [])
    [row] = _cli(capsys, "forecast", "--data-dir", str(tmp_path), "--format", "json")
    assert row["method"] is None and row["note"] == NOT_ENOUGH_DATA and row["period_p50"] is None
    assert row["spent_to_date"] == "0"


def test_the_job_writes_the_forecasts_table_that_costspan_sql_reads_and_keeps_month_end_gauges(
    tmp_path, capsys
):
    _month_of_calls(tmp_path)
    [job] = [j for j in jobs_from_config(CollectorConfig(data_dir=str(tmp_path))) if j.name == "forecasts"]
    assert job.interval_s == 900
    runner = AnswerRunner(tmp_path, [job], clock=lambda: NOW)
    runner.run_due()
    assert job.failures == 0

    query = (
        "SELECT scope, value, kind, count(*) AS days, min(day) AS first, max(day) AS last, sum(p50) AS p50 "
        "FROM forecasts GROUP BY ALL ORDER BY scope, value, kind"
    )
    rows = _cli(capsys, "sql", "--data-dir", str(tmp_path), "--format", "json", query)
    search = {r["kind"]: r for r in rows if r["value"] == "search"}
    assert search["actual"]["days"] == 20 and search["actual"]["last"] == "2026-03-20"
    assert search["forecast"]["first"] == "2026-03-21" and search["forecast"]["last"] == "2026-03-31"
    assert search["period_total"]["p50"] == "31"  # money as exact strings, trailing zeros dropped
    scopes = {(r["scope"], r["value"]) for r in rows}
    teams = {("team", "search"), ("team", "ads")}
    assert scopes == {("organisation", None), *teams, ("feature", "summaries"), ("feature", "chat")}
    query = "SELECT actual_usd, p50, method, history_days FROM forecasts WHERE value = 'search' AND day = ?"
    [today] = _cli(
        capsys, "sql", "--data-dir", str(tmp_path), "--format", "json", query.replace("?", "'2026-03-21'")
    )
    assert today == {"actual_usd": "0.25", "p50": "1", "method": "run_rate", "history_days": 39}

    registry = CollectorRegistry()
    registry.register(runner)
    text = generate_latest(registry).decode()
    assert 'costspan_forecast_period_spend_usd{bound="p50",scope="team",value="search"} 31.0' in text
    assert 'costspan_forecast_period_spend_usd{bound="hi95",scope="organisation",value=""}' in text


def test_the_job_reads_the_daily_series_once_a_day_and_today_s_spend_at_every_run(tmp_path):
    from costspan.collector.answers.forecast import ForecastJob

    _month_of_calls(tmp_path)
    job = ForecastJob(tmp_path)
    job.run(connect(tmp_path), NOW)
    read = dict(job._series)
    assert {by for by, _, _ in read} == {None, "team", "feature"}
    write_calls(tmp_path, [call(datetime(2026, 3, 21, 6, 5), "2", team="search", feature="summaries")])
    job.run(connect(tmp_path), NOW + timedelta(minutes=15))
    assert all(job._series[k] is v for k, v in read.items())  # the same series, not read again
    spent = {(lvl[0], lvl[1]): lvl[3] for lvl in job._levels if lvl[2] == "p50"}
    assert spent[("team", "search")] > 31 + 1.5  # today's new 2 USD counted at once
    write_calls(tmp_path, [call(datetime(2026, 3, 20, 9), "5", team="search", feature="summaries")])
    job.run(connect(tmp_path), NOW + timedelta(minutes=30))  # a call stored late into a past day
    assert all(job._series[k] is not v for k, v in read.items())  # read again
    job.run(connect(tmp_path), NOW + timedelta(days=1))
    assert {day for _, day, _ in job._series} == {date(2026, 3, 22)}
