"""The demo's cost report: a few questions a FinOps review asks, answered with SQL over ``llm_calls``.

Every figure comes from the same views ``costspan sql`` opens, and each query is printed-ready for the user
to run and change.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import duckdb

# A call's model as its price was found: the catalog model a dated snapshot (claude-sonnet-4-5-20250929) or
# another spelling resolves to (pricing/_names.py, the catalog's match rules), as the Prometheus exporter
# labels it (exporters/_tally.py); the name as reported when the call is not priced.
MODEL = "coalesce(pricing_model, response_model, request_model)"
_DOLLAR = Decimal(1)
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
       sum(cost_usd) AS cost_usd, (sum(cost_usd) / count(*))::DECIMAL(18, 6) AS per_call_usd
FROM llm_calls GROUP BY feature ORDER BY cost_usd DESC""",
    ),
    (
        "Models by spend (each with the dated snapshots its calls named)",
        f"""SELECT provider, {MODEL} AS model, count(*) AS calls,
       sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens, sum(cost_usd) AS cost_usd,
       string_agg(DISTINCT response_model, ', ' ORDER BY response_model)
         FILTER (WHERE response_model <> {MODEL}) AS snapshots
FROM llm_calls GROUP BY provider, {MODEL} ORDER BY cost_usd DESC""",
    ),
    (
        "Top customers",
        """SELECT customer_id, count(*) AS calls, sum(cost_usd) AS cost_usd
FROM llm_calls GROUP BY customer_id ORDER BY cost_usd DESC LIMIT 5""",
    ),
    (
        "The support agent, step by step",
        f"""SELECT agent_name, step, {MODEL} AS model, count(*) AS calls,
       sum(cost_usd) AS cost_usd, (sum(cost_usd) / count(DISTINCT trace_id))::DECIMAL(18, 6) AS per_turn_usd
FROM llm_calls WHERE agent_name IS NOT NULL GROUP BY ALL ORDER BY cost_usd DESC""",
    ),
    (
        "Prompt caching: what cache reads saved, by model",
        # the input rate per token, from the same calls' uncached input; reads would otherwise pay it
        f"""WITH m AS (
  SELECT {MODEL} AS model, sum(cache_read_tokens) AS cache_read_tokens,
         sum(cost_cache_read) AS paid_for_reads_usd,
         sum(cost_input) / nullif(sum(input_tokens - coalesce(cache_read_tokens, 0)
                                           - coalesce(cache_write_tokens, 0)), 0) AS rate
  FROM llm_calls GROUP BY 1)
SELECT model, cache_read_tokens, paid_for_reads_usd,
       (cache_read_tokens * rate - paid_for_reads_usd)::DECIMAL(18, 6) AS saved_usd
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
        f"""SELECT service_name AS service, provider, {MODEL} AS model, operation, count(*) AS calls,
       count(time_to_first_chunk_s) AS streamed, sum(input_tokens) AS input_tokens,
       sum(cache_read_tokens) AS cache_read, sum(cache_write_tokens) AS cache_write,
       sum(output_tokens) AS output_tokens, sum(cost_usd) AS cost_usd
FROM llm_calls WHERE start_time >= current_date GROUP BY ALL ORDER BY service, cost_usd DESC""",
    ),
)


def headline(con: duckdb.DuckDBPyConnection) -> str:
    """Every stored call (today's live ones among them), then the last 7 whole days against the 7 before,
    and the run-rate."""
    row = con.execute(
        """WITH bounds AS (
  SELECT max(start_time)::DATE AS last FROM llm_calls WHERE start_time < current_date)
SELECT count(*), sum(cost_usd), min(start_time)::DATE, max(start_time)::DATE,
  count(*) FILTER (WHERE start_time >= current_date), sum(cost_usd) FILTER (WHERE start_time >= current_date),
  sum(cost_usd) FILTER (WHERE start_time::DATE > last - 7 AND start_time::DATE <= last),
  count(DISTINCT start_time::DATE) FILTER (WHERE start_time::DATE > last - 7 AND start_time::DATE <= last),
  sum(cost_usd) FILTER (WHERE start_time::DATE > last - 14 AND start_time::DATE <= last - 7),
  last
FROM llm_calls, bounds GROUP BY last"""
    ).fetchone()
    if row is None:
        return "No calls stored yet."
    calls, total, first, newest, today_calls, today_cost, week, week_days, before, last = row
    lines = [f"{calls:,} LLM calls from {first} to {newest}: {money(total)} in all"]
    if today_calls:
        lines[0] += f", today's {today_calls:,} (the live calls among them) {money(today_cost)}"
    lines[0] += "."
    if last is not None:
        change = f" ({(week - before) / before * 100:+.1f}% on the 7 before)" if before else ""
        daily = week / week_days
        lines.append(
            f"The {week_days} whole days to {last}: {money(week)}{change}; "
            f"run-rate {money(daily)} a day, {money(daily * 30)} a month."
        )
    return "\n".join(lines)


def report(con: duckdb.DuckDBPyConnection) -> str:
    """The headline and a table per query."""
    parts = [headline(con)]
    for title, sql in QUERIES:
        cursor = con.execute(sql)
        names = [d[0] for d in cursor.description or ()]
        parts.append(f"\n{title}\n{_table(names, cursor.fetchall())}")
    return "\n".join(parts)


def amount(value: Decimal) -> str:
    """Dollars as the report shows them, everywhere: cents from a dollar up (25.58), two significant digits
    below (0.28, 0.013, 0.0079, 0.000031), so that no amount reads as zero or as its neighbour's."""
    if value == 0 or abs(value) >= _DOLLAR:
        return f"{value:,.2f}"
    places = max(2, -value.adjusted() + 1)
    rounded = value.quantize(Decimal(1).scaleb(-places), ROUND_HALF_EVEN)
    if rounded.adjusted() > value.adjusted():  # 0.0999 rounds to 0.100: one digit fewer
        return amount(rounded)
    return f"{rounded:f}"


def money(value: Decimal | None) -> str:
    if value is None:
        return "-"
    return f"-${amount(-value)}" if value < 0 else f"${amount(value)}"


def _cell(value: Any, name: str) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        # a column of dollars is named so (cost_usd, per_call_usd ...); others are percents and ratios
        return amount(value) if name.endswith("_usd") else f"{value:,}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _table(names: list[str], rows: list[tuple[Any, ...]]) -> str:
    cells = [[_cell(v, n) for v, n in zip(row, names, strict=True)] for row in rows]
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
