"""A real collector keeps the anomalies table and its gauges from the calls stored in its data directory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx2 as httpx

from tests.answers.history import write_hours
from tests.support.collector import Collector
from tests.support.stored_calls import call


def test_a_running_collector_finds_a_spike_and_exposes_it(tmp_path):
    now = datetime.now(UTC).replace(tzinfo=None)
    hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)  # the last complete hour
    data_dir = tmp_path / "data"

    def burst(at):
        if at == hour:
            return [call(at + timedelta(minutes=i), "0.10", team="search", feature="chat") for i in range(40)]
        return []

    write_hours(data_dir, hour - timedelta(days=4), hour + timedelta(hours=1), extra=burst)
    config = tmp_path / "collector.yaml"
    config.write_text("anomalies:\n  dimensions: [team, feature]\n  min_impact_usd: 0.5\n  min_calls: 5\n")
    collector = Collector(data_dir).start("--config", str(config))
    try:
        query = "SELECT kind, grain, dimension, value, status FROM anomalies WHERE dimension = 'team'"
        collector.wait_for(query, ["spike,hourly,team,search,open"], timeout=60)
        metrics = httpx.get(f"{collector.admin_url}/metrics", timeout=5).text
        assert 'costspan_anomaly_open{grain="hourly",kind="spike",scope="team",value="search"} 4.0' in metrics
        assert 'costspan_anomalies_open{kind="spike"}' in metrics
        assert 'costspan_collector_answer_runs_total{answer_job="anomalies",outcome="ok"}' in metrics
    finally:
        collector.kill()
