"""The demo's cost report: a few questions a FinOps review asks, answered with SQL over ``llm_calls``.

Every figure comes from the same views ``costspan sql`` opens, and each query is printed-ready for the user
to run and change.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import duckdb

# Whole days only: today's calls are the live ones, shown apart.
_BEFORE_TODAY = "start_time < current_date"
# (title, SQL). Periods are relative to the newest stored call, so the report reads the same on any day.
QUERIES: tuple[tuple[str, str], ...] = (
    (
        "Spend by team, last 30 days",
        """SELECT team, count(*) AS calls, sum(cost_usd) AS cost_usd
FROM llm_calls WHERE start_time > (SELECT max(start_time) FROM llm_calls) - INTERVAL 30 DAY
GROUP BY team ORDER BY cost_usd DESC""",
    ),
    (
        "Features by spend, with cost per call and prompt version",
        """SELECT feature, string_agg(DISTINCT prompt_version, ',') AS versions, count(*) AS calls,
       sum(cost_usd) AS cost_usd, (sum(cost_usd) / count(*))::DECIMAL(18, 6) AS per_call
FROM llm_calls GROUP BY feature ORDER BY cost_usd DESC""",
    ),
    (
        "Models by spend",
        """SELECT provider, response_model AS model, count(*) AS calls,
       sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens, sum(cost_usd) AS cost_usd
FROM llm_calls GROUP BY ALL ORDER BY cost_usd DESC""",
    ),
    (
        "Top customers",
        """SELECT customer_id, count(*) AS calls, sum(cost_usd) AS cost_usd
FROM llm_calls GROUP BY customer_id ORDER BY cost_usd DESC LIMIT 5""",
    ),
    (
        "The support agent, step by step",
        """SELECT agent_name, step, response_model AS model, count(*) AS calls,
       sum(cost_usd) AS cost_usd, (sum(cost_usd) / count(DISTINCT trace_id))::DECIMAL(18, 6) AS per_turn
FROM llm_calls WHERE agent_name IS NOT NULL GROUP BY ALL ORDER BY cost_usd DESC""",
    ),
    (
        "Prompt caching: what cache reads saved, by model",
        # the input rate per token, from the same calls' uncached input; reads would otherwise pay it
        """WITH m AS (
  SELECT response_model AS model, sum(cache_read_tokens) AS cache_read_tokens,
         sum(cost_cache_read) AS paid_for_reads,
         sum(cost_input) / nullif(sum(input_tokens - coalesce(cache_read_tokens, 0)
                                           - coalesce(cache_write_tokens, 0)), 0) AS rate
  FROM llm_calls GROUP BY 1)
SELECT model, cache_read_tokens, paid_for_reads,
       (cache_read_tokens * rate - paid_for_reads)::DECIMAL(18, 2) AS saved_usd
FROM m WHERE cache_read_tokens > 0 ORDER BY saved_usd DESC""",
    ),
    (
        "Daily spend, last 14 days (weekday seasonality)",
        """SELECT start_time::DATE AS day, dayname(start_time::DATE) AS weekday, count(*) AS calls,
       sum(cost_usd) AS cost_usd
FROM llm_calls WHERE start_time::DATE > (SELECT max(start_time)::DATE FROM llm_calls) - 14
GROUP BY ALL ORDER BY day""",
    ),
    (
        "Today's calls so far, by model (the live calls through the instrumented SDKs among them)",
        """SELECT service_name AS service, provider, response_model AS model, operation, count(*) AS calls,
       count(time_to_first_chunk_s) AS streamed, sum(input_tokens) AS input_tokens,
       sum(cache_read_tokens) AS cache_read, sum(cache_write_tokens) AS cache_write,
       sum(output_tokens) AS output_tokens, sum(cost_usd) AS cost_usd
FROM llm_calls WHERE start_time >= current_date GROUP BY ALL ORDER BY service, cost_usd DESC""",
    ),
)


def headline(con: duckdb.DuckDBPyConnection) -> str:
    """Total, the last 7 whole days against the 7 before, and the run-rate."""
    row = con.execute(
        f"""WITH bounds AS (SELECT max(start_time)::DATE AS last FROM llm_calls WHERE {_BEFORE_TODAY})
SELECT count(*), sum(cost_usd),
  sum(cost_usd) FILTER (WHERE start_time::DATE > last - 7),
  sum(cost_usd) FILTER (WHERE start_time::DATE > last - 14 AND start_time::DATE <= last - 7),
  min(start_time)::DATE, last
FROM llm_calls, bounds WHERE {_BEFORE_TODAY} GROUP BY last"""
    ).fetchone()
    if row is None:
        return "No calls stored before today."
    calls, total, week, before, first, last = row
    change = (week - before) / before * 100 if before else Decimal(0)
    daily = week / 7
    return (
        f"{calls:,} LLM calls from {first} to {last}: {money(total)} in all.\n"
        f"Last 7 days {money(week)} ({change:+.1f}% on the 7 before); "
        f"run-rate {money(daily)} a day, {money(daily * 30)} a month."
    )


def report(con: duckdb.DuckDBPyConnection) -> str:
    """The headline and a table per query."""
    parts = [headline(con)]
    for title, sql in QUERIES:
        cursor = con.execute(sql)
        names = [d[0] for d in cursor.description or ()]
        parts.append(f"\n{title}\n{_table(names, cursor.fetchall())}")
    return "\n".join(parts)


def money(value: Decimal | None) -> str:
    return "-" if value is None else f"${value:,.2f}"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return f"{value:,.4f}" if abs(value) < 1 else f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _table(names: list[str], rows: list[tuple[Any, ...]]) -> str:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(n), *(len(r[i]) for r in cells)) if cells else len(n) for i, n in enumerate(names)]
    lines = ["  " + "  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True))]
    for row, raw in zip(cells, rows, strict=True):
        lines.append(
            "  "
            + "  ".join(
                c.rjust(w) if isinstance(v, (int, Decimal)) else c.ljust(w)
                for c, w, v in zip(row, widths, raw, strict=True)
            )
        )
    return "\n".join(lines)
