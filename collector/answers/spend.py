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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
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
    unpriced = ", ".join(f"'{s}'" for s in UNPRICED_STATUSES)
    billed = f"pricing_status IS DISTINCT FROM '{FAILED_STATUS}'"
    query = f"""
        SELECT
            date_trunc('hour', start_time) AS hour{selected},
            count(*),
            count(*) FILTER (WHERE {billed}),
            count(*) FILTER (WHERE pricing_status IN ({unpriced})),
            count(*) FILTER (WHERE pricing_status = '{FAILED_STATUS}'),
            count(*) FILTER (WHERE {billed} AND error_type IS NOT NULL),
            coalesce(sum(input_tokens), 0),
            coalesce(sum(output_tokens), 0),
            coalesce(sum(cache_read_tokens), 0),
            coalesce(sum(cache_write_tokens), 0),
            coalesce(sum(cost_usd), 0)::DECIMAL(38, 12)
        FROM llm_calls
        {conditions}
        GROUP BY hour{grouped}
        ORDER BY hour{grouped}
    """
    n = len(groups)
    return [
        HourlySpend(row[0], tuple(row[1 : 1 + n]), *(int(v) for v in row[1 + n : 10 + n]), row[10 + n])
        for row in con.execute(query, params).fetchall()
    ]


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
