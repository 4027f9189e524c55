"""The console's query layer over real stored files, against the real ``costspan sql`` on the same data."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from costspan.collector.console import queries
from costspan.collector.sql import QueryRefused, read_only_query
from costspan.exporters.duckdb_views import connect
from tests.console.conftest import costspan_sql, sql_rows
from tests.console.history import TRACE, TRACE_COSTS
from tests.support.stored_calls import call, span, write_calls, write_spans


@pytest.fixture
def con(history):
    data_dir, _ = history
    connection = connect(data_dir)
    yield connection
    connection.close()


def _ts(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def test_totals_equal_costspan_sql(history, con):
    data_dir, now = history
    since = now - timedelta(days=7)
    total = queries.totals(con, since, now)
    [expected] = costspan_sql(
        data_dir,
        f"SELECT count(*) AS calls, sum(cost_usd) AS cost, sum(input_tokens) + sum(output_tokens) AS tokens, "
        f"count(*) FILTER (WHERE pricing_status = 'unknown_model') AS unpriced "
        f"FROM llm_calls WHERE start_time >= '{_ts(since)}' AND start_time < '{_ts(now)}'",
    )
    assert total.calls == expected["calls"] > 0
    assert total.cost_usd == Decimal(expected["cost"])
    assert total.tokens == expected["tokens"]
    assert total.unpriced_calls == expected["unpriced"] > 0


def test_breakdown_by_team_and_by_tag_equal_sql_rows(history, con):
    data_dir, now = history
    since = now - timedelta(days=30)
    for dimension, column in (("team", "team"), ("tag.region", "tags['region']")):
        got = {
            g.value: (g.totals.calls, g.totals.cost_usd)
            for g in queries.breakdown(con, dimension, since, now)
        }
        rows = sql_rows(
            data_dir,
            f"SELECT {column} AS value, count(*) AS calls, coalesce(sum(cost_usd), 0) AS cost FROM llm_calls "
            f"WHERE start_time >= '{_ts(since)}' GROUP BY 1",
        )
        assert got == {r["value"]: (r["calls"], Decimal(r["cost"])) for r in rows}
    ranked = [g.totals.cost_usd for g in queries.breakdown(con, "team", since, now)]
    assert ranked == sorted(ranked, reverse=True)


def test_breakdown_with_filters(history, con):
    data_dir, now = history
    since = now - timedelta(days=30)
    got = {
        g.value: g.totals.cost_usd
        for g in queries.breakdown(con, "feature", since, now, {"team": ["search"], "model": "gpt-4o-mini"})
    }
    rows = sql_rows(
        data_dir,
        "SELECT feature, sum(cost_usd) AS cost FROM llm_calls WHERE team = 'search' "
        "AND coalesce(response_model, request_model) = 'gpt-4o-mini' "
        f"AND start_time >= '{_ts(since)}' GROUP BY 1",
    )
    assert got == {r["feature"]: Decimal(r["cost"]) for r in rows}
    assert set(got) == {"chat", "rerank"}


def test_series_covers_every_bucket_and_sums_to_the_totals(history, con):
    _, now = history
    since = now - timedelta(days=10)
    daily = queries.series(con, "cost_usd", since, now, "feature", top=2)
    assert len(daily.buckets) == 11  # a day for each of the range's days, today's and the first's part too
    assert daily.groups[-1] == "(other)" and len(daily.groups) == 3
    summed = sum((v for values in daily.values for v in values), Decimal(0))
    assert summed == queries.totals(con, since, now).cost_usd
    hourly = queries.series(con, "calls", now - timedelta(hours=24), now)
    assert len(hourly.buckets) in (24, 25) and hourly.groups == [None]
    assert sum(hourly.values[0]) == queries.totals(con, now - timedelta(hours=24), now).calls


def test_movers_find_the_team_that_grew(history, con):
    _, now = history
    found = queries.movers(con, "team", now, timedelta(days=1))
    assert found[0].value == "search" and found[0].change > 0
    before, middle, until = queries.mover_windows(now, timedelta(days=1))
    assert until - middle == middle - before == timedelta(days=1) and middle <= now < until
    assert found[0].before == queries.totals(con, before, middle, {"team": "search"}).cost_usd
    assert found[0].after == queries.totals(con, middle, until, {"team": "search"}).cost_usd


def test_one_cube_cut_many_ways_equals_a_query_each(history, con):
    _, now = history
    month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    since = min(month, now - timedelta(days=14)).replace(minute=0, second=0, microsecond=0)
    cut = queries.cube(con, ("team", "model"), since, now)
    assert cut.totals(month, now) == queries.totals(con, month, now)
    assert cut.totals(since, now, {"team": "billing"}) == queries.totals(con, since, now, {"team": "billing"})
    assert cut.breakdown("model", since, now) == queries.breakdown(con, "model", since, now)
    assert cut.movers("team", now, timedelta(days=7)) == queries.movers(con, "team", now, timedelta(days=7))
    daily = cut.daily_cost(since, now)
    assert sum(daily.values()) == queries.totals(con, since, now).cost_usd


def test_unpriced_by_model(history, con):
    _, now = history
    cut = queries.cube(con, ("model",), now - timedelta(days=30), now)
    [group] = queries.unpriced(cut, now - timedelta(days=30), now)
    assert group.value == "mystery-1" and group.totals.unpriced_calls > 0


def test_costliest_traces_equal_cost_by_trace(history, con):
    data_dir, _ = history
    found = queries.costliest_traces(con, None, None, limit=5)
    rows = sql_rows(
        data_dir,
        "SELECT trace_id, cost_usd, calls FROM cost_by_trace ORDER BY cost_usd DESC, trace_id LIMIT 5",
    )
    assert [(t.trace_id, t.cost_usd, t.calls) for t in found] == [
        (r["trace_id"], Decimal(r["cost_usd"]), r["calls"]) for r in rows
    ]
    assert found[0].trace_id == TRACE and found[0].cost_usd == sum(TRACE_COSTS)
    filtered = queries.costliest_traces(con, None, None, {"team": "billing"}, limit=3)
    assert filtered and TRACE not in {t.trace_id for t in filtered}


def test_trace_tree_self_and_total_cost(history, con):
    roots = queries.trace_tree(con, TRACE)
    by_name = {n.name: n for n in queries.flatten(roots)}
    # the root span's tree holds calls 1 and 2; call 3's parent is not stored: a root of its own
    assert [r.kind for r in roots] == ["other", "llm"]
    assert roots[0].total_cost_usd == TRACE_COSTS[0] + TRACE_COSTS[1]
    assert roots[1].total_cost_usd == roots[1].self_cost_usd == TRACE_COSTS[2]
    agent = by_name["planner"]
    assert agent.kind == "agent" and agent.self_cost_usd == 0 and agent.calls == 2
    assert agent.total_cost_usd == TRACE_COSTS[0] + TRACE_COSTS[1]
    assert by_name["search"].total_cost_usd == TRACE_COSTS[0] and by_name["search"].depth == 2
    order = [n.name for n in queries.flatten(roots)]
    assert order[:3] == ["POST /ask", "planner", "search"]
    assert sum(r.total_cost_usd for r in roots) == sum(TRACE_COSTS)


def test_trace_tree_with_a_parent_cycle_counts_each_call_once(tmp_path):
    at = datetime(2026, 1, 5, 10)
    trace = "cd" * 16
    write_spans(
        tmp_path,
        [
            span(at, trace, "01" * 8, "agent", "a", parent_span_id="02" * 8),
            span(at, trace, "02" * 8, "agent", "b", parent_span_id="01" * 8),
        ],
    )
    write_calls(tmp_path, [call(at, "0.3", trace_id=trace, span_id="c1" * 8, parent_span_id="02" * 8)])
    con = connect(tmp_path)
    try:
        roots = queries.trace_tree(con, trace)
    finally:
        con.close()
    assert sum(r.total_cost_usd for r in roots) == Decimal("0.3")
    assert len(queries.flatten(roots)) == 3


def test_answer_tables_read_as_no_rows_before_their_jobs_ran(con):
    assert queries.budgets(con) == []
    assert queries.month_forecast(con) == []
    assert queries.open_anomalies(con) == []


def test_tag_keys(history, con):
    _, now = history
    assert queries.tag_keys(con, now - timedelta(days=1)) == ["region"]


def test_read_only_query_caps_rows_refuses_writes_and_stops_slow_queries(history):
    data_dir, _ = history
    names, rows, more = read_only_query(
        data_dir, "SELECT span_id FROM llm_calls ORDER BY span_id", max_rows=5
    )
    assert names == ["span_id"] and len(rows) == 5 and more
    _, rows, more = read_only_query(data_dir, "SELECT 1 AS one", max_rows=5)
    assert rows == [(1,)] and not more
    with pytest.raises(QueryRefused, match="one read-only query"):
        read_only_query(data_dir, "CREATE TABLE t AS SELECT 1")
    with pytest.raises(QueryRefused, match=r"only the stored data|Permission"):
        read_only_query(data_dir, "SELECT * FROM read_csv('/etc/passwd')")
    slow = "SELECT count(*) FROM range(100000000000) a"
    with pytest.raises(QueryRefused, match=r"stopped after 0\.2 s"):
        read_only_query(data_dir, slow, timeout_s=0.2)


def test_models_equal_costspan_sql_and_carry_the_price_in_force(history, con):
    from costspan.pricing import load_engine

    data_dir, now = history
    since = now - timedelta(days=30)
    found = queries.models(con, since, now)
    rows = sql_rows(
        data_dir,
        "SELECT provider, coalesce(response_model, request_model) AS model, count(*) AS calls, "
        "sum(input_tokens) AS input, coalesce(sum(cost_usd), 0) AS cost FROM llm_calls "
        f"WHERE start_time >= '{_ts(since)}' GROUP BY ALL",
    )
    assert {
        (m.provider, m.model): (m.totals.calls, m.totals.input_tokens, m.totals.cost_usd) for m in found
    } == {(r["provider"], r["model"]): (r["calls"], r["input"], Decimal(r["cost"])) for r in rows}
    engine = load_engine()
    price = queries.price_in_force(engine, "openai", "gpt-4o-mini", now)
    resolution = engine.resolve("gpt-4o-mini", "openai")
    in_force = engine.price_set_at(resolution, now).prices
    assert price is not None and price.input_mtok == in_force["input_mtok"] > 0
    assert price.output_mtok == in_force["output_mtok"] and price.source_url.startswith("https://")
    assert queries.price_in_force(engine, "openai", "mystery-1", now) is None


def test_latest_calls_newest_first_and_only_the_unpriced(history, con):
    _, now = history
    since = now - timedelta(days=30)
    latest = queries.latest_calls(con, since, now, {"team": "billing"}, limit=5)
    assert len(latest) == 5 and {c["team"] for c in latest} == {"billing"}
    assert [c["start_time"] for c in latest] == sorted((c["start_time"] for c in latest), reverse=True)
    unpriced = queries.latest_calls(con, since, now, limit=1000, unpriced_only=True)
    assert {c["pricing_status"] for c in unpriced} == {"unknown_model"}
    assert len(unpriced) == queries.totals(con, since, now).unpriced_calls
