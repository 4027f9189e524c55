"""The answers' one reader of stored calls: hourly spend by dimensions, with what the pricing said."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from costspan.collector.answers.spend import UnknownDimension, dimension_sql, hourly, hourly_each
from costspan.exporters.duckdb_views import connect
from tests.support.stored_calls import call, write_calls

H9 = datetime(2026, 3, 2, 9, 15)
H10 = datetime(2026, 3, 2, 10, 5)


def test_hourly_spend_by_dimension_counts_billed_unpriced_failed_and_cut_short_calls(tmp_path):
    write_calls(
        tmp_path,
        [
            call(H9, "0.10", team="search", tags={"tier": "gold"}),
            call(H9, "0.20", team="search", error_type="timeout"),  # billed, cut short
            call(
                H9,
                None,
                team="search",
                pricing_status="unknown_model",
                request_model="x-1",
                response_model=None,
            ),
            call(H9, "0", team="search", pricing_status="failed", error_type="429"),
            call(H9, "0.05", team="ads"),
            call(H10, "0.000000000001", team="search", cache_read_tokens=400),
        ],
    )
    con = connect(tmp_path)
    rows = hourly(con, ["team"])
    assert [(r.hour.hour, r.values) for r in rows] == [(9, ("ads",)), (9, ("search",)), (10, ("search",))]
    search9 = rows[1]
    assert (search9.calls, search9.billed_calls, search9.unpriced_calls, search9.failed_calls) == (4, 3, 1, 1)
    assert search9.cut_short_calls == 1
    assert search9.cost_usd == Decimal("0.30") and isinstance(search9.cost_usd, Decimal)
    assert rows[2].cost_usd == Decimal("1E-12") and rows[2].cache_read_tokens == 400

    by_tag = hourly(con, ["tag.tier"], where={"team": "search"}, since=datetime(2026, 3, 2, 9))
    assert [(r.values, r.calls) for r in by_tag] == [(("gold",), 1), ((None,), 3), ((None,), 1)]
    assert [r.calls for r in hourly(con, until=H10.replace(minute=0))] == [5]
    assert [r.values for r in hourly(con, ["model"], where={"model": "x-1"})] == [("x-1",)]


def test_each_dimension_on_its_own_from_one_pass_equals_a_query_per_dimension(tmp_path):
    rows = [
        call(H9, "0.10", team="search", feature="rag", tags={"tier": "gold"}),
        call(H9, "0.20", team="search", feature=None, error_type="timeout"),
        call(H9, None, team=None, feature="rag", pricing_status="no_usage"),
        call(H10, "0.05", team="ads", feature="blurbs", request_model="gpt-4o", response_model=None),
        call(datetime(2026, 3, 3, 9), "0.40", team="ads", feature="blurbs"),
    ]
    write_calls(tmp_path, rows)
    con = connect(tmp_path)
    dimensions = ["team", "feature", "model", "tag.tier", "team"]  # a repeated one is read once
    window = {"where": {"provider": "openai"}, "periods": [(datetime(2026, 3, 2), datetime(2026, 3, 2, 12))]}
    each = hourly_each(con, dimensions, **window)
    assert list(each) == ["team", "feature", "model", "tag.tier"]
    for dimension, found in each.items():
        assert found == hourly(con, [dimension], **window), dimension
    assert sum(r.calls for r in each["team"]) == 4  # the fifth call is outside the period
    assert hourly_each(con, []) == {}
    single = hourly_each(con, ["team"])  # one grouping set: the bit of the one dimension is 0
    assert single["team"] == hourly(con, ["team"])


def test_a_tag_key_is_quoted_and_an_unknown_dimension_is_an_error():
    assert dimension_sql("tag.it's") == "tags['it''s']"
    with pytest.raises(UnknownDimension, match="'region'"):
        dimension_sql("region")
    with pytest.raises(UnknownDimension):
        dimension_sql("tag.")


def test_spend_of_several_scopes_in_one_query_by_hour_and_by_minute(tmp_path):
    from datetime import UTC

    from costspan.collector.answers.spend import calls_per_hour, hourly_by_scope

    write_calls(
        tmp_path,
        [
            call(H9, "0.10", team="search", user_id="alice", tags={"tier": "gold"}),
            call(datetime(2026, 3, 2, 9, 45), "0.20", team="search", user_id="bob"),
            call(H10, None, team="ads", pricing_status="unknown_model"),
            call(datetime(2026, 3, 2, 11, 5), "1", team="ads"),
        ],
    )
    con = connect(tmp_path)
    scopes = [
        {},
        {"team": "search"},
        {"team": "search", "user_id": "alice"},
        {"tag.tier": "gold"},
        {"team": "x"},
        {},
    ]
    since = datetime(2026, 3, 2, tzinfo=UTC)
    org, search, alice, gold, nobody, org_again = hourly_by_scope(
        con,
        scopes,
        since,
        minutes_since=datetime(2026, 3, 2, 11, tzinfo=UTC),
        minute_hours=[datetime(2026, 3, 2, 9)],
    )
    # hour 9 by minute (asked for), hour 10 by hour, from 11:00 by minute
    assert [(r.hour.hour, r.hour.minute, r.calls, r.unpriced_calls) for r in org] == [
        (9, 15, 1, 0),
        (9, 45, 1, 0),
        (10, 0, 1, 1),
        (11, 5, 1, 0),
    ]
    assert org_again == org and nobody == []
    assert [(r.hour.minute, r.cost_usd) for r in search] == [(15, Decimal("0.1")), (45, Decimal("0.2"))]
    assert [r.calls for r in alice] == [1] and [r.calls for r in gold] == [1]
    # only the hours asked for
    only = hourly_by_scope(con, [{}], since, only_hours=[datetime(2026, 3, 2, 10)])[0]
    assert [(r.hour.hour, r.calls) for r in only] == [(10, 1)]
    assert calls_per_hour(con, since, datetime(2026, 3, 2, 11, tzinfo=UTC)) == {
        datetime(2026, 3, 2, 9): 2,
        datetime(2026, 3, 2, 10): 1,
    }
