"""A page's state is its URL: what a query string asks for, and the links a view makes back into one."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import parse_qs

import pytest

from costspan.collector.console.params import BadParameter, parse_view

NOW = datetime(2026, 3, 15, 10, 30)


def args(query: str) -> dict[str, list[str]]:
    return parse_qs(query, keep_blank_values=True)


def test_defaults_are_the_last_30_days_by_team_in_dollars():
    view = parse_view({}, NOW)
    assert (view.range, view.since, view.until) == ("30d", NOW - timedelta(days=30), NOW)
    assert (view.by, view.measure, view.filters) == ("team", "cost_usd", {})
    assert parse_view({}, NOW, default_by=None).by is None
    assert parse_view(args("by="), NOW).by is None  # chosen: all calls together


def test_ranges():
    assert parse_view(args("range=24h"), NOW).since == NOW - timedelta(hours=24)
    assert parse_view(args("range=mtd"), NOW).since == datetime(2026, 3, 1)
    custom = parse_view(args("from=2026-02-01&to=2026-02-28"), NOW)
    assert (custom.range, custom.since, custom.until) == (
        "custom",
        datetime(2026, 2, 1),
        datetime(2026, 3, 1),
    )
    with pytest.raises(BadParameter, match="end is before its start"):
        parse_view(args("from=2026-02-10&to=2026-02-01"), NOW)


def test_filters_several_values_and_tags():
    view = parse_view(args("f.team=search&f.team=billing&f.tag.region=eu&f.feature="), NOW)
    assert view.filters == {"team": ["search", "billing"], "tag.region": ["eu"]}


def test_a_view_links_back_to_itself_and_to_its_drill_downs():
    view = parse_view(args("range=7d&by=team&measure=calls&f.model=gpt-4o"), NOW)
    assert parse_view(args(view.query()), NOW) == view
    drilled = parse_view(args(view.query(by="feature", filters=view.with_filter("team", "a&b=c"))), NOW)
    assert drilled.filters == {"model": ["gpt-4o"], "team": ["a&b=c"]} and drilled.by == "feature"
    assert parse_view(args(view.query(filters=view.without_filter("model", "gpt-4o"))), NOW).filters == {}
    custom = parse_view(args("from=2026-02-01&to=2026-02-03&by=model"), NOW)
    assert parse_view(args(custom.query()), NOW) == custom
