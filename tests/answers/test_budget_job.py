"""The budget job: thresholds fire once per period and never again after a restart (the ledger is on disk),
a period's rollover keeps its figures and the limit it had then, the answer tables are views, the gauges
are on /metrics."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from prometheus_client import CollectorRegistry, generate_latest

from costspan.collector.answers.budget_job import BudgetJob
from costspan.collector.answers.budgets import Budget, BudgetEvent
from costspan.collector.answers.runner import AnswerRunner, Job
from costspan.exporters import answer_tables
from costspan.exporters.duckdb_views import connect
from tests.support.stored_calls import call, write_calls

DAY1 = datetime(2026, 3, 10)


def daily(amount: str = "10") -> Budget:
    return Budget(
        "search", {"team": "search"}, Decimal(amount), "day", thresholds=(Decimal(50), Decimal(100))
    )


def run(tmp_path, budgets, now, events=None):
    job = BudgetJob(tmp_path, budgets, [events.append] if events is not None else [])
    return job, job.run(connect(tmp_path), now)


def test_a_threshold_fires_once_and_not_again_after_a_restart(tmp_path):
    write_calls(
        tmp_path,
        [call(DAY1.replace(hour=9), "6", team="search"), call(DAY1.replace(hour=9), "9", team="ads")],
    )
    seen: list[BudgetEvent] = []
    job = BudgetJob(tmp_path, [daily()], [seen.append])
    first = job.run(connect(tmp_path), datetime(2026, 3, 10, 10, tzinfo=UTC))
    assert [(e.budget, e.threshold, e.spent_usd, e.limit_usd) for e in first] == [
        ("search", Decimal(50), Decimal(6), Decimal(10))
    ]
    event = first[0]
    assert event.period_start == datetime(2026, 3, 10, tzinfo=UTC) and event.period_end == datetime(
        2026, 3, 11, tzinfo=UTC
    )
    assert event.crossed_at == datetime(2026, 3, 10, 10, tzinfo=UTC) and event.scope == {"team": "search"}
    assert seen == first
    assert job.run(connect(tmp_path), datetime(2026, 3, 10, 10, 1, tzinfo=UTC)) == []  # the same process

    # a new job, as after a restart, reads what fired from the data directory
    _, again = run(tmp_path, [daily()], datetime(2026, 3, 10, 10, 2, tzinfo=UTC))
    assert again == []
    # another process too
    script = textwrap.dedent(
        f"""
        from datetime import UTC, datetime
        from decimal import Decimal
        from costspan.collector.answers.budget_job import BudgetJob
        from costspan.collector.answers.budgets import Budget
        from costspan.exporters.duckdb_views import connect
        budget = Budget(
            "search", {{"team": "search"}}, Decimal(10), "day", thresholds=(Decimal(50), Decimal(100))
        )
        data = {str(tmp_path)!r}
        events = BudgetJob(data, [budget]).run(connect(data), datetime(2026, 3, 10, 11, tzinfo=UTC))
        print(len(events))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "0", out.stderr

    write_calls(tmp_path, [call(DAY1.replace(hour=11), "4", team="search")])
    _, over = run(tmp_path, [daily()], datetime(2026, 3, 10, 12, tzinfo=UTC))
    assert [(e.threshold, e.spent_usd) for e in over] == [(Decimal(100), Decimal(10))]
    crossings = (
        connect(tmp_path)
        .execute(
            "SELECT c.threshold_percent::VARCHAR, c.crossed_at, c.spent_usd::DOUBLE "
            "FROM budget_periods, unnest(crossings) AS u(c) ORDER BY 2"
        )
        .fetchall()
    )
    assert crossings == [
        ("50.0000", datetime(2026, 3, 10, 10), 6.0),
        ("100.0000", datetime(2026, 3, 10, 12), 10.0),
    ]


def test_a_rollover_keeps_the_past_period_with_its_limit_and_late_calls(tmp_path):
    write_calls(tmp_path, [call(DAY1.replace(hour=9), "3", team="search")])
    run(tmp_path, [daily("10")], datetime(2026, 3, 10, 12, tzinfo=UTC))
    # a call of the 10th reaches the store late; the amount is raised for the new day
    write_calls(
        tmp_path,
        [
            call(DAY1.replace(hour=23, minute=50), "2.5", team="search"),
            call(datetime(2026, 3, 11, 1), "1", team="search", pricing_status="no_usage", cost_usd=None),
            call(datetime(2026, 3, 11, 2), "8", team="search"),
        ],
    )
    events: list[BudgetEvent] = []
    run(tmp_path, [daily("20")], datetime(2026, 3, 11, 3, tzinfo=UTC), events)
    rows = (
        connect(tmp_path)
        .execute(
            "SELECT period_start, period_end, limit_usd::VARCHAR, spent_usd::VARCHAR, calls, unpriced_calls, "
            "len(crossings), closed FROM budget_periods ORDER BY period_start"
        )
        .fetchall()
    )
    assert rows == [
        (datetime(2026, 3, 10), datetime(2026, 3, 11), "10.000000000000", "5.500000000000", 2, 0, 1, True),
        (datetime(2026, 3, 11), datetime(2026, 3, 12), "20.000000000000", "8.000000000000", 2, 1, 0, False),
    ]
    # the late call took the closed day over 50%: recorded when it was seen, for that day
    assert [(e.threshold, e.period_start.day, e.spent_usd) for e in events] == [
        (Decimal(50), 10, Decimal("5.5"))
    ]
    status = (
        connect(tmp_path)
        .execute(
            "SELECT budget, spent_usd::VARCHAR, limit_usd::VARCHAR, unpriced_calls, thresholds_crossed "
            "FROM budgets"
        )
        .fetchall()
    )
    assert status == [("search", "8.000000000000", "20.000000000000", 1, [])]


def test_a_rolling_budget_fires_again_once_its_crossing_left_the_window(tmp_path):
    budget = Budget("hour", {}, Decimal(1), "rolling", window=timedelta(hours=1), thresholds=(Decimal(100),))
    write_calls(tmp_path, [call(DAY1.replace(hour=9, minute=10), "1")])
    _, first = run(tmp_path, [budget], datetime(2026, 3, 10, 9, 20, tzinfo=UTC))
    _, same = run(tmp_path, [budget], datetime(2026, 3, 10, 9, 40, tzinfo=UTC))
    write_calls(tmp_path, [call(DAY1.replace(hour=10, minute=15), "1")])
    _, later = run(tmp_path, [budget], datetime(2026, 3, 10, 10, 30, tzinfo=UTC))
    assert (len(first), len(same), len(later)) == (1, 0, 1)


def test_the_runner_exposes_the_budget_gauges(tmp_path):
    write_calls(tmp_path, [call(DAY1.replace(hour=9), "6", team="search", pricing_status="unknown_model")])
    write_calls(tmp_path, [call(DAY1.replace(hour=9), "2.5", team="search")])
    job = BudgetJob(tmp_path, [daily()])
    runner = AnswerRunner(
        tmp_path,
        [Job("budgets", 60, job.run, job.metrics)],
        clock=lambda: datetime(2026, 3, 10, 12, tzinfo=UTC),
    )
    runner.run_due()
    registry = CollectorRegistry()
    registry.register(runner)
    text = generate_latest(registry).decode()
    for line in (
        'costspan_budget_limit_usd{budget="search"} 10.0',
        'costspan_budget_spent_usd{budget="search"} 8.5',
        'costspan_budget_remaining_usd{budget="search"} 1.5',
        'costspan_budget_used_ratio{budget="search"} 0.85',
        'costspan_budget_unpriced_calls{budget="search"} 1.0',
        'costspan_budget_burn_rate{budget="search",window="5m"} 0.0',
        'costspan_budget_burn_rate{budget="search",window="6h"}',
        'costspan_collector_answer_runs_total{answer_job="budgets",outcome="ok"} 1.0',
    ):
        assert line in text, line
    assert 'costspan_budget_projected_usd{budget="search"}' in text
    end = text.split('costspan_budget_period_end_timestamp_seconds{budget="search"} ')[1].split()[0]
    assert float(end) == datetime(2026, 3, 11, tzinfo=UTC).timestamp()


def test_a_failing_hook_is_logged_and_the_crossing_stays_told_once(tmp_path, caplog):
    write_calls(tmp_path, [call(DAY1.replace(hour=9), "6", team="search")])
    told: list[BudgetEvent] = []

    def broken(event: BudgetEvent) -> None:
        raise RuntimeError("webhook down")

    job = BudgetJob(tmp_path, [daily()], [broken, told.append])
    job.run(connect(tmp_path), datetime(2026, 3, 10, 10, tzinfo=UTC))
    assert [e.threshold for e in told] == [Decimal(50)]  # the next hook was still told
    assert "budgets: a notification hook failed on search at 50%" in caplog.text
    assert job.run(connect(tmp_path), datetime(2026, 3, 10, 10, 5, tzinfo=UTC)) == []


def test_each_budget_has_a_forecast_of_its_period_from_its_scope_s_daily_series(tmp_path):
    """Three weeks of a team spending 1 USD a day (two calls of 0.50): its month's forecast is what it spent
    plus about 1 USD a day left, with intervals; a rolling budget has no end to forecast; the series are read
    once a UTC day, not at every run."""
    first = datetime(2026, 3, 1)
    calls = [
        call(first + timedelta(days=d, hours=h), "0.50", team="search") for d in range(21) for h in (9, 15)
    ]
    write_calls(tmp_path, calls)
    month = Budget("search-month", {"team": "search"}, Decimal(100), "month")
    rolling = Budget("search-24h", {"team": "search"}, Decimal(5), "rolling", window=timedelta(hours=24))
    now = datetime(2026, 3, 22, 0, 30, tzinfo=UTC)  # 21 days spent, 10 days left in March
    job, _ = run(tmp_path, [month, rolling], now)
    estimate, method = job.forecasts["search-month"]
    assert method is not None and estimate is not None
    assert Decimal(30) < estimate.p50 < Decimal(32)  # 21 spent + about 10 more
    assert estimate.lo95 <= estimate.lo80 <= estimate.p50 <= estimate.hi80 <= estimate.hi95
    assert job.forecasts["search-24h"] == (None, None)
    row = {r["budget"]: r for r in answer_tables.read(tmp_path, "budgets").to_pylist()}
    assert row["search-month"]["forecast_p50_usd"] == estimate.p50
    assert row["search-month"]["forecast_method"] == method
    assert row["search-24h"]["forecast_p50_usd"] is None
    registry = CollectorRegistry()
    registry.register(AnswerRunner(tmp_path, [Job("budgets", 60, job.run, job.metrics)]))
    text = generate_latest(registry).decode()
    assert f'costspan_budget_forecast_usd{{bound="p50",budget="search-month"}} {float(estimate.p50)}' in text
    assert 'budget="search-24h"' not in text.split("costspan_budget_forecast_usd")[-1].split("# HELP")[0]
    job.run(connect(tmp_path), now + timedelta(minutes=1))
    assert job.forecaster.reads == 1  # the same UTC day: the series are not read again
    job.run(connect(tmp_path), now + timedelta(days=1))
    assert job.forecaster.reads == 2


def test_a_budget_s_forecast_follows_history_stored_after_the_job_began(tmp_path):
    """A collector that started on an empty directory, then got weeks of history at once (a backfill): the
    days' count of calls changed, so the series are read again within the quarter hour, not the next day."""
    month = Budget("org", {}, Decimal(100), "month")
    now = datetime(2026, 3, 22, 0, 30, tzinfo=UTC)
    job, _ = run(tmp_path, [month], now)
    assert job.forecasts["org"] == (None, None)  # nothing stored yet
    first = datetime(2026, 3, 1)
    write_calls(tmp_path, [call(first + timedelta(days=d, hours=9), "1", team="a") for d in range(21)])
    job.run(connect(tmp_path), now + timedelta(minutes=1))
    assert job.forecasts["org"] == (None, None)  # counted again only every quarter hour
    job.run(connect(tmp_path), now + timedelta(minutes=16))
    estimate, method = job.forecasts["org"]
    assert method is not None and Decimal(30) < estimate.p50 < Decimal(32)
    assert job.forecaster.reads == 2
