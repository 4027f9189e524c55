"""The answers' one reader of stored calls: hourly spend by dimensions, with what the pricing said."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from costspan.collector.answers.spend import UnknownDimension, dimension_sql, hourly
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


def test_a_tag_key_is_quoted_and_an_unknown_dimension_is_an_error():
    assert dimension_sql("tag.it's") == "tags['it''s']"
    with pytest.raises(UnknownDimension, match="'region'"):
        dimension_sql("region")
    with pytest.raises(UnknownDimension):
        dimension_sql("tag.")
