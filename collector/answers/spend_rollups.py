"""Hourly spend from the hourly rollups where a question fits them, from the calls where it does not.

:func:`hourly` answers what :func:`costspan.collector.answers.spend.hourly` answers, the same figures, from
the rollups the collector keeps beside ``llm_calls`` (:mod:`costspan.exporters.rollups`): the connection's
``hourly_rollups`` view holds the sums of the files that have a rollup, ``llm_calls_not_rolled_up`` the calls
of the others (the open hours, late calls not yet merged). A question fits when one dimension set holds every
column it groups and filters by, and its range is whole hours; the hours at either end of a range that is not
are read from ``llm_calls``, and a question no set fits (a tag, a user) is :func:`spend.hourly` itself.

The definitions over ``pricing_status`` (billed, unpriced, failed, cut short) are :mod:`.spend`'s, applied to
the rollups' rows here, where ``spend`` applies them to the calls.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import duckdb

from costspan.exporters.rollups import DIMENSION_SETS, GROUP_COLUMNS

from . import spend

_HOUR = timedelta(hours=1)
_UNPRICED = ", ".join(f"'{s}'" for s in spend.UNPRICED_STATUSES)
_BILLED = f"pricing_status IS DISTINCT FROM '{spend.FAILED_STATUS}'"
# the measures of HourlySpend, in its order, over rows that each sum ``calls`` calls
_MEASURES = f"""
            coalesce(sum(calls), 0),
            coalesce(sum(calls) FILTER (WHERE {_BILLED}), 0),
            coalesce(sum(calls) FILTER (WHERE pricing_status IN ({_UNPRICED})), 0),
            coalesce(sum(calls) FILTER (WHERE pricing_status = '{spend.FAILED_STATUS}'), 0),
            coalesce(sum(calls) FILTER (WHERE {_BILLED} AND errored), 0),
            coalesce(sum(input_tokens), 0),
            coalesce(sum(output_tokens), 0),
            coalesce(sum(cache_read_tokens), 0),
            coalesce(sum(cache_write_tokens), 0),
            coalesce(sum(cost_usd), 0)::DECIMAL(38, 12)"""
_SUMMED = "input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd"


def dimension_set(names: Sequence[str]) -> str | None:
    """The smallest dimension set whose columns hold every one of the dimensions ``names`` (as
    :data:`spend.DIMENSIONS` names them); None when none does (a tag, a user)."""
    needed: set[str] = set()
    for name in names:
        if name not in spend.DIMENSIONS:
            return None
        columns = set(re.findall(r"\w+", spend.DIMENSIONS[name])) & set(GROUP_COLUMNS)
        if not columns:
            return None
        needed |= columns
    return next((s for s, cols in DIMENSION_SETS.items() if needed <= set(cols)), None)


def hourly(
    con: duckdb.DuckDBPyConnection,
    dimensions: Sequence[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    where: Mapping[str, str | Sequence[str]] | None = None,
    cuts: Sequence[datetime] | None = None,
) -> list[spend.HourlySpend]:
    """:func:`spend.hourly` (the same rows), from the rollups where the question fits them.

    ``cuts``: when given, the only moments (whole hours) besides the start of each UTC day at which the
    caller will cut the rows by time: the hours are then summed per day and between cuts, each sum labelled
    with its first hour (the first at or after ``since``). A month by team is then 30 rows, not 720, which
    is what a page's time in Python is made of. Without ``cuts``, a row per hour."""
    since = spend.naive_utc(since) if since is not None else None
    until = spend.naive_utc(until) if until is not None else None
    chosen = dimension_set([*dimensions, *(where or {})])
    first = _ceil_hour(since) if since is not None else None
    last = _floor_hour(until) if until is not None else None
    if chosen is None or (first is not None and last is not None and first >= last):
        if cuts is None:
            return spend.hourly(con, dimensions, since, until, where)
        rows, params = _calls(since, until)  # no set fits: the calls themselves, summed as asked
    else:
        rows, params = _rows(chosen, since, until)
    groups = [spend.dimension_sql(d) for d in dimensions]
    conditions, where_params = spend._conditions(None, None, where)
    params.extend(where_params)
    label = "hour"
    if cuts is not None:
        marks = sorted(
            {_floor_hour(c) for c in cuts} | ({_floor_hour(since)} if since is not None else set())
        )
        steps = " ".join("WHEN hour >= ? THEN ?::TIMESTAMP" for _ in marks)
        label = f"greatest(date_trunc('day', hour), CASE {steps} END)" if marks else "date_trunc('day', hour)"
        params = [p for m in reversed(marks) for p in (m, m)] + params
    selected = "".join(f", {g} AS d{i}" for i, g in enumerate(groups))
    grouped = "".join(f", d{i}" for i in range(len(groups)))
    query = f"""
        SELECT {label} AS bucket{selected}, {_MEASURES}
        FROM ({rows}) AS rows
        {conditions}
        GROUP BY bucket{grouped}
        ORDER BY bucket{grouped}
    """
    n = len(groups)
    found = con.execute(query, params).fetchall()
    return [spend._spend(row[0], tuple(row[1 : 1 + n]), row[1 + n :]) for row in found]


def _calls(since: datetime | None, until: datetime | None) -> tuple[str, list[Any]]:
    """Every column of the calls of ``[since, until)``, with the rollups' ``hour``, ``errored`` and
    ``calls`` (1), for a question no dimension set holds (a tag, a user)."""
    clauses, params = spend._conditions(since, until, None)
    query = (
        "SELECT *, date_trunc('hour', start_time) AS hour, error_type IS NOT NULL AS errored, "
        f"1::BIGINT AS calls FROM llm_calls {clauses}"
    )
    return query, params


def pricing_sources(
    con: duckdb.DuckDBPyConnection, since: datetime | None = None, until: datetime | None = None
) -> list[spend.PricingSource]:
    """:func:`spend.pricing_sources` (the same rows), from the rollups."""
    since = spend.naive_utc(since) if since is not None else None
    until = spend.naive_utc(until) if until is not None else None
    first = _ceil_hour(since) if since is not None else None
    last = _floor_hour(until) if until is not None else None
    if first is not None and last is not None and first >= last:
        return spend.pricing_sources(con, since, until)
    rows, params = _rows("pricing", since, until)
    query = f"""
        SELECT provider, {spend.DIMENSIONS["model"]} AS model, pricing_provider, pricing_model,
            catalog_version, sum(calls) AS calls
        FROM ({rows}) AS rows
        GROUP BY ALL ORDER BY calls DESC, model, pricing_model
    """
    return [spend.PricingSource(*row[:5], int(row[5])) for row in con.execute(query, params).fetchall()]


def _rows(chosen: str, since: datetime | None, until: datetime | None) -> tuple[str, list[Any]]:
    """A query (and its parameters) for rows of dimension set ``chosen`` that sum the calls of
    ``[since, until)`` once each: ``hour``, the set's columns, ``pricing_status``, ``errored``, ``calls`` and
    the sums. The whole hours come from the rollups and the files without one, the part-hours at either end
    of the range from the calls themselves."""
    first = _ceil_hour(since) if since is not None else None
    last = _floor_hour(until) if until is not None else None
    columns = DIMENSION_SETS[chosen]
    kept = "".join(f"{c}, " for c in columns)
    params: list[Any] = [chosen]
    rolled = ["dimension_set = ?"]
    rest: list[str] = []
    if first is not None:
        rolled.append("hour >= ?")
        rest.append("start_time >= ?")
    if last is not None:
        rolled.append("hour < ?")
        rest.append("start_time < ?")
    bounds = [b for b in (first, last) if b is not None]
    params.extend([*bounds, *bounds])
    raw = f"pricing_status, error_type IS NOT NULL, 1::BIGINT, {_SUMMED}"
    parts = [
        f"SELECT hour, {kept}pricing_status, errored, calls, {_SUMMED} FROM hourly_rollups "
        f"WHERE {' AND '.join(rolled)}",
        f"SELECT date_trunc('hour', start_time), {kept}{raw} FROM llm_calls_not_rolled_up {_where(rest)}",
    ]
    edges: list[str] = []
    if since is not None and first is not None and since < first:
        edges.append("(start_time >= ? AND start_time < ?)")
        params.extend([since, first])
    if until is not None and last is not None and last < until:
        edges.append("(start_time >= ? AND start_time < ?)")
        params.extend([last, until])
    if edges:
        parts.append(
            f"SELECT date_trunc('hour', start_time), {kept}{raw} FROM llm_calls WHERE {' OR '.join(edges)}"
        )
    return " UNION ALL ".join(parts), params


def _where(clauses: list[str]) -> str:
    return f"WHERE {' AND '.join(clauses)}" if clauses else ""


def _floor_hour(moment: datetime) -> datetime:
    moment = spend.naive_utc(moment)
    return moment.replace(minute=0, second=0, microsecond=0)


def _ceil_hour(moment: datetime) -> datetime:
    floor = _floor_hour(moment)
    return floor if floor == spend.naive_utc(moment) else floor + _HOUR
