"""Hourly spend from the stored calls: the one query the answers read ``llm_calls`` with.

:func:`hourly` groups ``llm_calls`` by UTC hour and any of :data:`DIMENSIONS`, and returns for each group
the measures of :class:`HourlySpend`: calls, what the pricing said of them, tokens and cost, the cost in
exact ``Decimal``. A call's hour is the hour of its ``start_time``.

The definitions every answer shares live here, once:

- a *billed* call is any call but a failed attempt that carried no usage (``pricing_status = 'failed'``,
  cost 0: the provider billed nothing);
- an *unpriced* call is one that could not be priced (``unknown_model``, ``no_usage``, ``invalid_usage``):
  it cost something the spend does not show, so answers count these beside the spend, never as $0 spent;
- a *cut-short* call is a billed call with an ``error_type`` (a stream cut off, a timeout after the
  provider began answering): it was billed, though the caller got an error;
- the *model* is the response model, else the requested one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import duckdb

# The dimensions an answer may group or scope by: a column of llm_calls, or ``tag.<key>`` for a tag.
DIMENSIONS: dict[str, str] = {
    "team": "team",
    "feature": "feature",
    "customer_id": "customer_id",
    "user_id": "user_id",
    "service_name": "service_name",
    "environment": "environment",
    "provider": "provider",
    "model": "coalesce(response_model, request_model)",
    "operation": "operation",
    "agent_name": "agent_name",
    "prompt_key": "prompt_key",
    "prompt_version": "prompt_version",
}
TAG_PREFIX = "tag."
UNPRICED_STATUSES = ("unknown_model", "no_usage", "invalid_usage")
FAILED_STATUS = "failed"


_BILLED = f"pricing_status IS DISTINCT FROM '{FAILED_STATUS}'"
# the measures of HourlySpend after its hour and values, in order
_MEASURES = f"""
            count(*),
            count(*) FILTER (WHERE {_BILLED}),
            count(*) FILTER (WHERE pricing_status IN ({", ".join(f"'{s}'" for s in UNPRICED_STATUSES)})),
            count(*) FILTER (WHERE pricing_status = '{FAILED_STATUS}'),
            count(*) FILTER (WHERE {_BILLED} AND error_type IS NOT NULL),
            coalesce(sum(input_tokens), 0),
            coalesce(sum(output_tokens), 0),
            coalesce(sum(cache_read_tokens), 0),
            coalesce(sum(cache_write_tokens), 0),
            coalesce(sum(cost_usd), 0)::DECIMAL(38, 12)"""


class UnknownDimension(ValueError):
    pass


def dimension_sql(name: str) -> str:
    """The SQL expression of dimension ``name``; raises :class:`UnknownDimension`."""
    if name in DIMENSIONS:
        return DIMENSIONS[name]
    if name.startswith(TAG_PREFIX) and len(name) > len(TAG_PREFIX):
        key = name[len(TAG_PREFIX) :].replace("'", "''")
        return f"tags['{key}']"
    known = ", ".join([*DIMENSIONS, f"{TAG_PREFIX}<key>"])
    raise UnknownDimension(f"unknown dimension {name!r}: one of {known}")


@dataclass(frozen=True, slots=True)
class HourlySpend:
    hour: datetime  # UTC, naive, the start of the hour
    values: tuple[str | None, ...]  # the group's value of each dimension asked for, in order
    calls: int  # every stored call (llm_calls: duplicates left out)
    billed_calls: int
    unpriced_calls: int
    failed_calls: int  # failed attempts without usage: not billed
    cut_short_calls: int  # billed, but the caller got an error
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cost_usd: Decimal


def hourly(
    con: duckdb.DuckDBPyConnection,
    dimensions: Sequence[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    where: Mapping[str, str | Sequence[str]] | None = None,
    periods: Sequence[tuple[datetime, datetime]] = (),
) -> list[HourlySpend]:
    """Spend per UTC hour and value of ``dimensions`` over calls that started in ``[since, until)`` (and in
    one of ``periods``, ``[since, until)`` each, when given) and whose dimensions equal ``where``'s values
    (or one of them, for a list); sorted by hour."""
    groups = [dimension_sql(d) for d in dimensions]
    conditions, params = _conditions(since, until, where, periods)
    selected = "".join(f", {g} AS d{i}" for i, g in enumerate(groups))
    grouped = "".join(f", d{i}" for i in range(len(groups)))
    query = f"""
        SELECT
            date_trunc('hour', start_time) AS hour{selected},
            {_MEASURES}
        FROM llm_calls
        {conditions}
        GROUP BY hour{grouped}
        ORDER BY hour{grouped}
    """
    n = len(groups)
    return [
        _spend(row[0], tuple(row[1 : 1 + n]), row[1 + n :]) for row in con.execute(query, params).fetchall()
    ]


def hourly_each(
    con: duckdb.DuckDBPyConnection,
    dimensions: Sequence[str],
    since: datetime | None = None,
    until: datetime | None = None,
    where: Mapping[str, str | Sequence[str]] | None = None,
    periods: Sequence[tuple[datetime, datetime]] = (),
) -> dict[str, list[HourlySpend]]:
    """For each of ``dimensions`` on its own, what :func:`hourly` gives for ``[dimension]`` (each row's
    ``values`` is that dimension's value), from one pass over the calls rather than one per dimension: a
    query's cost is mostly that of reading the files, however few its groups."""
    names = list(dict.fromkeys(dimensions))
    if not names:
        return {}
    conditions, params = _conditions(since, until, where, periods)
    selected = "".join(f", {dimension_sql(d)} AS d{i}" for i, d in enumerate(names))
    sets = ", ".join(f"(hour, d{i})" for i in range(len(names)))
    which = ", ".join(f"d{i}" for i in range(len(names)))
    query = f"""
        SELECT hour, grouping({which}) AS set_id, {which}, {_MEASURES}
        FROM (
            SELECT *, date_trunc('hour', start_time) AS hour{selected} FROM llm_calls {conditions}
        )
        GROUP BY GROUPING SETS ({sets})
        ORDER BY hour, {which}
    """
    # grouping() sets a bit per dimension left out, the first dimension the highest: the one kept is clear
    width = len(names)
    by_set = {((1 << width) - 1) ^ (1 << (width - 1 - i)): name for i, name in enumerate(names)}
    found: dict[str, list[HourlySpend]] = {name: [] for name in names}
    for row in con.execute(query, params).fetchall():
        name = by_set[row[1]]
        value = row[2 + names.index(name)]
        found[name].append(_spend(row[0], (value,), row[2 + width :]))
    return found


def _spend(hour: datetime, values: tuple[str | None, ...], measures: Sequence[Any]) -> HourlySpend:
    """A row's measures (in :data:`_MEASURES`' order) as :class:`HourlySpend`."""
    return HourlySpend(hour, values, *(int(v) for v in measures[:9]), measures[9])


def first_seen(
    con: duckdb.DuckDBPyConnection,
    dimension: str,
    since: datetime | None = None,
    until: datetime | None = None,
    where: Mapping[str, str | Sequence[str]] | None = None,
) -> dict[str | None, datetime]:
    """When each value of ``dimension`` was first seen (its earliest ``start_time``, naive UTC) among the
    calls that started in ``[since, until)`` and match ``where``."""
    conditions, params = _conditions(since, until, where)
    query = (
        f"SELECT {dimension_sql(dimension)} AS value, min(start_time) FROM llm_calls {conditions} GROUP BY 1"
    )
    return {value: first for value, first in con.execute(query, params).fetchall()}


def _conditions(
    since: datetime | None,
    until: datetime | None,
    where: Mapping[str, str | Sequence[str]] | None,
    periods: Sequence[tuple[datetime, datetime]] = (),
) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if since is not None:
        clauses.append("start_time >= ?")
        params.append(since)
    if until is not None:
        clauses.append("start_time < ?")
        params.append(until)
    if periods:
        clauses.append("(" + " OR ".join("(start_time >= ? AND start_time < ?)" for _ in periods) + ")")
        params.extend(moment for period in periods for moment in period)
    for name, value in (where or {}).items():
        if isinstance(value, str):
            clauses.append(f"{dimension_sql(name)} = ?")
            params.append(value)
        else:  # one of several values (an empty list matches none)
            values = list(value)
            clauses.append(f"{dimension_sql(name)} IN ({', '.join('?' * len(values)) or 'NULL'})")
            params.extend(values)
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


def hourly_by_scope(
    con: duckdb.DuckDBPyConnection,
    scopes: Sequence[Mapping[str, str]],
    since: datetime,
    until: datetime | None = None,
    minutes_since: datetime | None = None,
    minute_hours: Iterable[datetime] = (),
    only_hours: Iterable[datetime] | None = None,
) -> list[list[HourlySpend]]:
    """For each of ``scopes`` (dimension -> value; ``{}`` is every call), its spend per bucket over calls
    that started in ``[since, until)``, sorted by bucket: one query, one pass over ``llm_calls`` however many
    scopes. A bucket is a UTC hour, or a minute for calls at or after ``minutes_since`` and in the hours
    ``minute_hours`` (where a window that begins between hours is to be counted exactly). ``hour`` is the
    start of the bucket, ``values`` is empty. ``only_hours``: the calls of these UTC hours alone."""
    distinct: dict[tuple[tuple[str, str], ...], int] = {}
    for scope in scopes:
        distinct.setdefault(tuple(sorted(scope.items())), len(distinct))
    # scopes over the same dimensions share a join: each call matches at most one of them
    by_dimensions: dict[tuple[str, ...], list[tuple[tuple[str, ...], int]]] = {}
    for key, index in distinct.items():
        by_dimensions.setdefault(tuple(d for d, _ in key), []).append((tuple(v for _, v in key), index))
    params: list[Any] = []
    fine: list[str] = []
    if minutes_since is not None:
        fine.append("start_time >= ?")
        params.append(naive_utc(minutes_since))
    hours = sorted({naive_utc(h) for h in minute_hours})
    if hours:
        fine.append(f"date_trunc('hour', start_time) IN ({', '.join('?' for _ in hours)})")
        params.extend(hours)
    bucket = "date_trunc('hour', start_time)"
    if fine:
        bucket = f"CASE WHEN {' OR '.join(fine)} THEN date_trunc('minute', start_time) ELSE {bucket} END"
    dimensions = sorted({d for dims in by_dimensions for d in dims})
    columns = "".join(f", {dimension_sql(d)} AS x{i}" for i, d in enumerate(dimensions))
    conditions, where_params = _conditions(naive_utc(since), until and naive_utc(until), None)
    params.extend(where_params)
    if only_hours is not None:
        chosen = sorted({naive_utc(h) for h in only_hours})
        listed = ", ".join("?" for _ in chosen)
        conditions += f" AND date_trunc('hour', start_time) IN ({listed})" if chosen else " AND FALSE"
        params.extend(chosen)
    joins: list[str] = []
    marks: list[str] = []
    for k, (dims, wanted) in enumerate(by_dimensions.items()):
        if not dims:
            marks.append(f"{wanted[0][1]} AS m{k}")
            continue
        rows = ", ".join(f"({', '.join('?' for _ in dims)}, {index})" for _, index in wanted)
        for values, _ in wanted:
            params.extend(values)
        names = ", ".join(f"v{j}" for j in range(len(dims)))
        on = " AND ".join(f"x{dimensions.index(d)} = w{k}.v{j}" for j, d in enumerate(dims))
        joins.append(f"LEFT JOIN (VALUES {rows}) AS w{k}({names}, i) ON {on}")
        marks.append(f"w{k}.i AS m{k}")
    sets = ", ".join(f"(bucket, m{k})" for k in range(len(marks)))
    query = f"""
        WITH calls AS (
            SELECT {bucket} AS bucket{columns}, pricing_status, error_type, input_tokens, output_tokens,
                   cache_read_tokens, cache_write_tokens, cost_usd
            FROM llm_calls
            {conditions}
        ), marked AS (
            SELECT calls.*, {", ".join(marks)}
            FROM calls {" ".join(joins)}
        )
        SELECT bucket, {", ".join(f"m{k}" for k in range(len(marks)))},
            {_MEASURES}
        FROM marked
        GROUP BY GROUPING SETS ({sets})
        ORDER BY bucket
    """
    found: list[list[HourlySpend]] = [[] for _ in distinct]
    if not marks:
        return []
    n = len(marks)
    for row in con.execute(query, params).fetchall():
        index = next((m for m in row[1 : 1 + n] if m is not None), None)
        if index is None:  # the calls of no scope of this set
            continue
        found[index].append(_spend(row[0], (), row[1 + n :]))
    return [found[distinct[tuple(sorted(scope.items()))]] for scope in scopes]


def naive_utc(moment: datetime) -> datetime:
    """``start_time`` is a TIMESTAMP in UTC without a zone: an aware moment is compared as such."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo is not None else moment


def daily_cost(
    con: duckdb.DuckDBPyConnection,
    dimensions: Sequence[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    where: dict[str, str] | None = None,
) -> dict[tuple[str | None, ...], dict[date, Decimal]]:
    """Cost per UTC day for each value of ``dimensions`` (as :func:`hourly` selects the calls): the hours
    summed, so that a day is exactly its 24 hours. A day without calls is absent."""
    return cost_by_day(hourly(con, dimensions, since, until, where))


def cost_by_day(rows: Iterable[HourlySpend]) -> dict[tuple[str | None, ...], dict[date, Decimal]]:
    """The cost of hourly rows per group (``values``) and UTC day: each day its hours summed."""
    days: dict[tuple[str | None, ...], dict[date, Decimal]] = {}
    for row in rows:
        series = days.setdefault(row.values, {})
        day = row.hour.date()
        series[day] = series.get(day, Decimal(0)) + row.cost_usd
    return days


def count_calls(con: duckdb.DuckDBPyConnection, since: datetime, until: datetime) -> int:
    """The number of calls stored in ``[since, until)``."""
    query = "SELECT count(*) FROM llm_calls WHERE start_time >= ? AND start_time < ?"
    row = con.execute(query, [naive_utc(since), naive_utc(until)]).fetchone()
    return int(row[0]) if row else 0


class StoredCount:
    """Whether the calls stored in a span of past days changed since the last look: a cheap way (one count)
    for a reader that keeps what it read of them to learn of calls stored late (a backfill, a replay)."""

    def __init__(self) -> None:
        self.calls: int | None = None  # at the last look; None before the first

    def changed(self, con: duckdb.DuckDBPyConnection, since: datetime, until: datetime) -> bool:
        calls = count_calls(con, since, until)
        changed, self.calls = calls != self.calls, calls
        return changed


def calls_per_hour(con: duckdb.DuckDBPyConnection, since: datetime, until: datetime) -> dict[datetime, int]:
    """The number of calls in each UTC hour of ``[since, until)`` (naive UTC hours): a cheap look at which
    hours changed since they were read (calls stored late)."""
    query = """
        SELECT date_trunc('hour', start_time) AS hour, count(*)
        FROM llm_calls WHERE start_time >= ? AND start_time < ?
        GROUP BY hour
    """
    return dict(con.execute(query, [naive_utc(since), naive_utc(until)]).fetchall())


# --- traces: the console's drill-down from spend to the calls of one trace ---------------------------------


@dataclass(frozen=True, slots=True)
class TraceSpend:
    trace_id: str
    start_time: datetime  # its first call's, naive UTC
    service_name: str | None  # its first call's service
    calls: int
    unpriced_calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal


def costliest_traces(
    con: duckdb.DuckDBPyConnection,
    since: datetime | None = None,
    until: datetime | None = None,
    where: Mapping[str, str | Sequence[str]] | None = None,
    limit: int = 50,
) -> list[TraceSpend]:
    """The ``limit`` traces whose calls (those that started in ``[since, until)`` and match ``where``) cost
    the most, costliest first; a trace's figures are those of these calls."""
    conditions, params = _conditions(since, until, where)
    query = f"""
        SELECT trace_id, min(start_time), arg_min(service_name, start_time), count(*),
            count(*) FILTER (WHERE pricing_status IN ({", ".join(f"'{s}'" for s in UNPRICED_STATUSES)})),
            coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0),
            coalesce(sum(cost_usd), 0)::DECIMAL(38, 12) AS cost
        FROM llm_calls
        {conditions}
        GROUP BY trace_id
        ORDER BY cost DESC, trace_id
        LIMIT ?
    """
    rows = con.execute(query, [*params, limit]).fetchall()
    return [TraceSpend(r[0], r[1], r[2], int(r[3]), int(r[4]), int(r[5]), int(r[6]), r[7]) for r in rows]


# the columns of a trace's calls that its cost tree shows, in this order
TRACE_CALL_COLUMNS = (
    "span_id",
    "parent_span_id",
    "start_time",
    "duration_s",
    "service_name",
    "provider",
    "operation",
    "request_model",
    "response_model",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cost_usd",
    "pricing_status",
    "team",
    "feature",
    "customer_id",
    "agent_name",
    "step",
    "error_type",
)


def trace_calls(con: duckdb.DuckDBPyConnection, trace_id: str) -> list[dict[str, Any]]:
    """The calls of one trace (:data:`TRACE_CALL_COLUMNS`), in the order they started."""
    columns = ", ".join(TRACE_CALL_COLUMNS)
    query = f"SELECT {columns} FROM llm_calls WHERE trace_id = ? ORDER BY start_time, span_id"
    cursor = con.execute(query, [trace_id])
    return [dict(zip(TRACE_CALL_COLUMNS, row, strict=True)) for row in cursor.fetchall()]


def tag_keys(con: duckdb.DuckDBPyConnection, since: datetime | None = None, limit: int = 50) -> list[str]:
    """The tag keys of calls that started at or after ``since``, sorted (at most ``limit``): what
    ``tag.<key>`` may name."""
    conditions, params = _conditions(since, None, None)
    query = f"""
        SELECT DISTINCT unnest(map_keys(tags)) AS key FROM llm_calls {conditions} ORDER BY key LIMIT ?
    """
    return [row[0] for row in con.execute(query, [*params, limit]).fetchall() if row[0] is not None]


@dataclass(frozen=True, slots=True)
class PricingSource:
    provider: str | None
    model: str | None  # as DIMENSIONS["model"]
    pricing_provider: str | None  # the catalog entry that priced the calls
    pricing_model: str | None
    catalog_version: str | None
    calls: int


def pricing_sources(
    con: duckdb.DuckDBPyConnection, since: datetime | None = None, until: datetime | None = None
) -> list[PricingSource]:
    """Which catalog entry (and catalog version) priced each provider's model's calls in ``[since, until)``:
    one row per combination, most calls first."""
    conditions, params = _conditions(since, until, None)
    query = f"""
        SELECT provider, {DIMENSIONS["model"]} AS model, pricing_provider, pricing_model, catalog_version,
            count(*) AS calls
        FROM llm_calls {conditions}
        GROUP BY ALL ORDER BY calls DESC, model, pricing_model
    """
    return [PricingSource(*row[:5], int(row[5])) for row in con.execute(query, params).fetchall()]


def calls(
    con: duckdb.DuckDBPyConnection,
    since: datetime | None = None,
    until: datetime | None = None,
    where: Mapping[str, str | Sequence[str]] | None = None,
    limit: int = 200,
    unpriced_only: bool = False,
) -> list[dict[str, Any]]:
    """The latest ``limit`` calls that started in ``[since, until)`` and match ``where`` (only the unpriced
    ones with ``unpriced_only``), newest first: ``trace_id`` and :data:`TRACE_CALL_COLUMNS`."""
    conditions, params = _conditions(since, until, where)
    if unpriced_only:
        unpriced = f"""pricing_status IN ({", ".join(f"'{s}'" for s in UNPRICED_STATUSES)})"""
        conditions = f"{conditions} AND {unpriced}" if conditions else f"WHERE {unpriced}"
    columns = ("trace_id", *TRACE_CALL_COLUMNS)
    query = f"""
        SELECT {", ".join(columns)} FROM llm_calls {conditions}
        ORDER BY start_time DESC, span_id LIMIT ?
    """
    return [dict(zip(columns, row, strict=True)) for row in con.execute(query, [*params, limit]).fetchall()]
