"""A real ``costspan serve`` keeps the forecasts current: its answer job writes the ``forecasts`` table from
the calls it finds stored, and /metrics has the month-end gauges."""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime, timedelta

import httpx2 as httpx

from tests.support.collector import Collector
from tests.support.stored_calls import call, write_calls


def test_a_running_collector_forecasts_the_stored_calls_into_the_table_and_its_gauges(tmp_path):
    data = tmp_path / "data"
    now = datetime.now(UTC)
    today = datetime(now.year, now.month, now.day)
    write_calls(data, [call(today - timedelta(days=i, hours=-9), "2", team="search") for i in range(1, 22)])
    collector = Collector(data).start()
    try:
        gauge = 'costspan_forecast_period_spend_usd{bound="p50",scope="team",value="search"}'
        deadline = time.monotonic() + 60  # the job's first turn is at start; its first fit loads statsmodels
        metrics = ""
        while time.monotonic() < deadline and gauge not in metrics:
            metrics = httpx.get(f"{collector.admin_url}/metrics", timeout=5).text
            time.sleep(0.5)
        assert gauge in metrics
        assert 'costspan_collector_answer_runs_total{answer_job="forecasts",outcome="ok"} 1.0' in metrics
        rows = collector.sql(
            "SELECT scope, coalesce(value, '-'), method, history_days FROM forecasts "
            "WHERE kind = 'period_total' ORDER BY scope, value"
        )
        # the calls name no feature: the feature series of null, as llm_calls groups them
        assert rows == ["feature,-,run_rate,21", "organisation,-,run_rate,21", "team,search,run_rate,21"]
    finally:
        collector.kill(signal.SIGTERM)
