"""The answers' runner and tables: a job reads the stored calls over a fresh connection, writes an answer
table the SQL views read, keeps its gauges; a failing job is counted and runs again."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pyarrow as pa
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from costspan.collector.answers.runner import AnswerRunner, Job
from costspan.exporters import answer_tables
from costspan.exporters.duckdb_views import connect
from tests.support.stored_calls import call, write_calls

SCHEMA = pa.schema([("calls", pa.int64()), ("cost_usd", pa.decimal128(38, 12))])


@pytest.fixture
def counted_table(monkeypatch):
    monkeypatch.setitem(answer_tables.SCHEMAS, "calls_so_far", SCHEMA)


def test_a_job_writes_an_answer_table_that_the_views_read_and_keeps_gauges(tmp_path, counted_table, caplog):
    write_calls(tmp_path, [call(datetime(2026, 3, 2, 9), "0.25"), call(datetime(2026, 3, 2, 10), "0.5")])
    assert connect(tmp_path).execute("SELECT count(*) FROM calls_so_far").fetchone() == (0,)  # not yet run
    seen: list[datetime] = []
    level = {"calls": 0}

    def count(con, now):
        seen.append(now)
        calls, cost = con.execute("SELECT count(*), sum(cost_usd) FROM llm_calls").fetchone()
        level["calls"] = calls
        answer_tables.write(tmp_path, "calls_so_far", pa.table({"calls": [calls], "cost_usd": [cost]}))

    def gauges():
        yield GaugeMetricFamily("costspan_test_calls", "calls counted", value=level["calls"])

    def broken(con, now):
        raise RuntimeError("no")

    runner = AnswerRunner(tmp_path, [Job("count", 60, count, gauges), Job("broken", 60, broken)])
    with caplog.at_level(logging.ERROR):
        runner.run_due()
        runner.run_due()  # not due again for a minute
    assert len(seen) == 1 and seen[0].tzinfo is UTC
    assert "answers: broken failed" in caplog.text
    rows = connect(tmp_path).execute("SELECT calls, cost_usd::VARCHAR FROM calls_so_far").fetchall()
    assert rows == [(2, "0.750000000000")]
    assert answer_tables.read(tmp_path, "calls_so_far").num_rows == 1

    registry = CollectorRegistry()
    registry.register(runner)
    text = generate_latest(registry).decode()
    assert "costspan_test_calls 2.0" in text
    assert 'costspan_collector_answer_runs_total{answer_job="count",outcome="ok"} 1.0' in text
    assert 'costspan_collector_answer_runs_total{answer_job="broken",outcome="failed"} 1.0' in text
    assert 'costspan_collector_answer_last_success_timestamp_seconds{answer_job="count"}' in text
    assert 'last_success_timestamp_seconds{job="broken"}' not in text


def test_costspan_sql_reads_an_answer_table_and_nothing_planted_beside_it(tmp_path, counted_table):
    answer_tables.write(tmp_path, "calls_so_far", pa.table({"calls": [7], "cost_usd": [None]}))
    con = connect(tmp_path)
    assert con.execute("SELECT calls FROM calls_so_far").fetchall() == [(7,)]
    outside = tmp_path.parent / "elsewhere.parquet"
    answer_tables.path(tmp_path, "calls_so_far").rename(outside)
    answer_tables.path(tmp_path, "calls_so_far").symlink_to(outside)
    assert connect(tmp_path).execute("SELECT count(*) FROM calls_so_far").fetchone() == (0,)
