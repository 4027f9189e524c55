"""Every figure the console shows, as a function of a DuckDB connection and parameters.

The connection is the read-only one ``costspan sql`` uses (:func:`costspan.exporters.duckdb_views.connect`).
Spend comes from :mod:`costspan.collector.answers.spend`, the one reader of ``llm_calls``: its hourly spend
per dimension is summed here into totals, series and breakdowns, so a figure on a page is the same sum of the
same calls as in ``costspan sql`` and in the answers (budgets, forecasts, anomalies). The answers' own
figures are read from their tables (``budgets``, ``forecasts``, ``anomalies``).

The pages call nothing else, so that hourly rollups maintained as calls arrive can take the place of the
``llm_calls`` scans behind these functions without a page changing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import duckdb

from costspan.collector.answers import spend, spend_rollups
from costspan.collector.answers.forecast import ORGANISATION

# what Explore plots and sums
MEASURES = ("cost_usd", "calls", "tokens")
# the dimensions Explore groups and filters by (besides tag.<key>), with the names the pages show
DIMENSION_LABELS: dict[str, str] = {
    "team": "team",
    "feature": "feature",
    "customer_id": "customer",
    "user_id": "user",
    "model": "model",
    "provider": "provider",
    "service_name": "service",
    "environment": "environment",
    "prompt_key": "prompt key",
    "prompt_version": "prompt version",
    "agent_name": "agent",
    "operation": "operation",
}
Filters = Mapping[str, str | Sequence[str]]


@dataclass(slots=True)
class Totals:
    """What a set of calls came to."""

    calls: int = 0
    unpriced_calls: int = 0
    failed_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: Decimal = field(default_factory=lambda: Decimal(0))

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def add(self, row: spend.HourlySpend) -> None:
        self.calls += row.calls
        self.unpriced_calls += row.unpriced_calls
        self.failed_calls += row.failed_calls
        self.input_tokens += row.input_tokens
        self.output_tokens += row.output_tokens
        self.cache_read_tokens += row.cache_read_tokens
        self.cache_write_tokens += row.cache_write_tokens
        self.cost_usd += row.cost_usd

    def measure(self, name: str) -> Decimal | int:
        return self.cost_usd if name == "cost_usd" else self.calls if name == "calls" else self.tokens


class Cube:
    """Hourly spend per value of a few dimensions over a time range, read once (one pass over the calls) and
    then cut many ways in memory: a page's totals, breakdowns, series and movers come from one cube. The
    cube is what hourly rollups will hold; only :func:`cube` reads the calls.

    Cuts by time take whole hours: a moment between hours counts the hour that contains it as after it."""

    def __init__(self, dimensions: Sequence[str], rows: list[spend.HourlySpend]) -> None:
        self.dimensions = tuple(dimensions)
        self.rows = rows

    def select(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        where: Mapping[str, str] | None = None,
    ) -> Iterator[spend.HourlySpend]:
        """The rows of the hours in ``[hour of since, until)`` whose dimensions equal ``where``'s values."""
        first = _bucket(since, "hour") if since is not None else None
        wanted = [(self.dimensions.index(d), v) for d, v in (where or {}).items()]
        for row in self.rows:
            if first is not None and row.hour < first:
                continue
            if until is not None and row.hour >= until:
                continue
            if all(row.values[i] == v for i, v in wanted):
                yield row

    def totals(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        where: Mapping[str, str] | None = None,
    ) -> Totals:
        total = Totals()
        for row in self.select(since, until, where):
            total.add(row)
        return total

    def breakdown(
        self, dimension: str, since: datetime | None = None, until: datetime | None = None
    ) -> list[Group]:
        """Each value of ``dimension`` with its totals, costliest first, then by calls."""
        index = self.dimensions.index(dimension)
        groups: dict[str | None, Totals] = {}
        for row in self.select(since, until):
            groups.setdefault(row.values[index], Totals()).add(row)
        ranked = sorted(
            groups.items(), key=lambda kv: (-kv[1].cost_usd, -kv[1].calls, kv[0] is None, kv[0] or "")
        )
        return [Group(value, total) for value, total in ranked]

    def daily_cost(self, since: datetime | None = None, until: datetime | None = None) -> dict[date, Decimal]:
        """Cost per UTC day (a day without calls is absent)."""
        days: dict[date, Decimal] = {}
        for row in self.select(since, until):
            day = row.hour.date()
            days[day] = days.get(day, Decimal(0)) + row.cost_usd
        return days

    def series(
        self, measure: str, since: datetime, until: datetime, group_by: str | None = None, top: int = 8
    ) -> Series:
        """``measure`` per bucket (:func:`bucket_size`) over ``[since, until)``, for each of the ``top``
        values of ``group_by`` by the measure's total, the others summed as one group ``"(other)"``; one
        group (``None``) when not grouped. Every bucket of the range is present."""
        size = bucket_size(since, until)
        step = timedelta(hours=1) if size == "hour" else timedelta(days=1)
        buckets: list[datetime] = []
        moment = _bucket(since, size)
        while moment < until:
            buckets.append(moment)
            moment += step
        index = {b: i for i, b in enumerate(buckets)}
        column = self.dimensions.index(group_by) if group_by else None
        per_group: dict[str | None, list[Totals]] = {}
        for row in self.select(since, until):
            group = row.values[column] if column is not None else None
            cells = per_group.setdefault(group, [Totals() for _ in buckets])
            cells[index[_bucket(row.hour, size)]].add(row)
        ranked = sorted(
            per_group, key=lambda g: (-sum(c.measure(measure) for c in per_group[g]), g is None, g or "")
        )
        kept: list[str | None] = ranked[:top]
        values = [[c.measure(measure) for c in per_group[g]] for g in kept]
        if len(ranked) > top:
            other = [
                sum((per_group[g][b].measure(measure) for g in ranked[top:]), start=_zero(measure))
                for b in index.values()
            ]
            kept.append("(other)")
            values.append(other)
        return Series(buckets, kept, values)

    def movers(self, dimension: str, now: datetime, window: timedelta, top: int = 5) -> list[Mover]:
        """The values of ``dimension`` whose spend changed most (either way) between the ``window`` of hours
        that ends with the current one (:func:`mover_windows`) and the ``window`` before it, largest change
        first."""
        before_since, middle, until = mover_windows(now, window)
        index = self.dimensions.index(dimension)
        before: dict[str | None, Decimal] = {}
        after: dict[str | None, Decimal] = {}
        for row in self.select(before_since, until):
            side = after if row.hour >= middle else before
            side[row.values[index]] = side.get(row.values[index], Decimal(0)) + row.cost_usd
        found = [
            Mover(v, before.get(v, Decimal(0)), after.get(v, Decimal(0)))
            for v in before.keys() | after.keys()
        ]
        found = [m for m in found if m.change != 0]
        found.sort(key=lambda m: (-abs(m.change), m.value is None, m.value or ""))
        return found[:top]


def cube(
    con: duckdb.DuckDBPyConnection,
    dimensions: Sequence[str],
    since: datetime | None,
    until: datetime | None,
    where: Filters | None = None,
    cuts: Sequence[datetime] | None = None,
) -> Cube:
    """The hourly spend per value of ``dimensions`` of the calls that started in ``[since, until)`` and match
    ``where`` (:func:`costspan.collector.answers.spend.hourly`, read from the hourly rollups where they
    fit: :func:`costspan.collector.answers.spend_rollups.hourly`). ``cuts``: the only moments besides the
    start of each day at which the cube will be cut by time (its hours are then summed between them)."""
    return Cube(dimensions, spend_rollups.hourly(con, dimensions, since, until, where, cuts))


def day_cuts(since: datetime, until: datetime) -> list[datetime] | None:
    """The cuts of a cube whose series is by day (:func:`bucket_size`): none but the days; None (every
    hour) for an hourly one."""
    return [] if bucket_size(since, until) == "day" else None


def mover_windows(now: datetime, window: timedelta) -> tuple[datetime, datetime, datetime]:
    """``(before, middle, until)``: the hours ``[middle, until)`` are the ``window`` that ends with the hour
    of ``now`` (that hour so far included), ``[before, middle)`` the ``window`` before it."""
    until = _bucket(now, "hour") + timedelta(hours=1)
    return until - 2 * window, until - window, until


def totals(
    con: duckdb.DuckDBPyConnection,
    since: datetime | None,
    until: datetime | None,
    where: Filters | None = None,
) -> Totals:
    """The calls that started in ``[since, until)`` and match ``where``, summed."""
    return cube(con, (), since, until, where, cuts=[]).totals()


@dataclass(frozen=True, slots=True)
class Group:
    value: str | None
    totals: Totals


def breakdown(
    con: duckdb.DuckDBPyConnection,
    dimension: str,
    since: datetime | None,
    until: datetime | None,
    where: Filters | None = None,
) -> list[Group]:
    """Each value of ``dimension`` with its totals over ``[since, until)``, costliest first, then by calls."""
    return cube(con, (dimension,), since, until, where, cuts=[]).breakdown(dimension)


@dataclass(frozen=True, slots=True)
class Series:
    """A measure per bucket (an hour or a day) for each group: ``values[g][b]`` is group ``groups[g]``'s
    figure in bucket ``buckets[b]`` (0 where it had no calls)."""

    buckets: list[datetime]
    groups: list[str | None]
    values: list[list[Decimal | int]]


def bucket_size(since: datetime, until: datetime) -> str:
    """``hour`` for a range of two days or less, else ``day``."""
    return "hour" if until - since <= timedelta(days=2) else "day"


def series(
    con: duckdb.DuckDBPyConnection,
    measure: str,
    since: datetime,
    until: datetime,
    group_by: str | None = None,
    where: Filters | None = None,
    top: int = 8,
) -> Series:
    """:meth:`Cube.series` over the calls of ``[since, until)`` that match ``where``."""
    dimensions = (group_by,) if group_by else ()
    cuts = day_cuts(since, until)
    return cube(con, dimensions, since, until, where, cuts).series(measure, since, until, group_by, top)


def _zero(measure: str) -> Decimal | int:
    return Decimal(0) if measure == "cost_usd" else 0


def _bucket(moment: datetime, size: str) -> datetime:
    if size == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True, slots=True)
class Mover:
    value: str | None
    before: Decimal
    after: Decimal

    @property
    def change(self) -> Decimal:
        return self.after - self.before


def movers(
    con: duckdb.DuckDBPyConnection, dimension: str, now: datetime, window: timedelta, top: int = 5
) -> list[Mover]:
    """:meth:`Cube.movers` over every call."""
    since, _, until = mover_windows(now, window)
    return cube(con, (dimension,), since, until).movers(dimension, now, window, top)


def unpriced(cut: Cube, since: datetime | None, until: datetime | None, top: int = 10) -> list[Group]:
    """The models (a dimension of ``cut``) of calls that could not be priced in ``[since, until)``, most
    calls first."""
    groups = [g for g in cut.breakdown("model", since, until) if g.totals.unpriced_calls]
    groups.sort(key=lambda g: (-g.totals.unpriced_calls, g.value is None, g.value or ""))
    return groups[:top]


# --- models and prices ------------------------------------------------------------------------------------


@dataclass
class ModelSpend:
    provider: str | None
    model: str | None
    totals: Totals
    sources: list[spend.PricingSource] = field(default_factory=list)  # what priced its calls
    price: PriceInForce | None = None  # the price the collector's catalogs give it now


def models(
    con: duckdb.DuckDBPyConnection,
    since: datetime | None,
    until: datetime | None,
    where: Filters | None = None,
) -> list[ModelSpend]:
    """Each provider's model with its calls, tokens and cost over ``[since, until)``, costliest first, and
    the catalog entries that priced those calls."""
    found: dict[tuple[str | None, str | None], Totals] = {}
    for row in spend_rollups.hourly(con, ("provider", "model"), since, until, where, cuts=[]):
        found.setdefault((row.values[0], row.values[1]), Totals()).add(row)
    sources: dict[tuple[str | None, str | None], list[spend.PricingSource]] = {}
    for source in spend_rollups.pricing_sources(con, since, until):
        sources.setdefault((source.provider, source.model), []).append(source)
    ranked = sorted(found.items(), key=lambda kv: (-kv[1].cost_usd, -kv[1].calls, str(kv[0])))
    return [ModelSpend(p, m, total, sources.get((p, m), [])) for (p, m), total in ranked]


@dataclass(frozen=True, slots=True)
class PriceInForce:
    """A model's prices now, per million tokens (a tiered price: its base, and ``tiered`` says so)."""

    catalog_model: str
    priced_as: str  # the provider whose prices apply
    since: str
    input_mtok: Decimal | None
    output_mtok: Decimal | None
    cache_read_mtok: Decimal | None
    cache_write_mtok: Decimal | None
    tiered: bool
    estimated: bool
    catalog: str
    source_url: str | None


def price_in_force(engine: Any, provider: str | None, model: str | None, at: datetime) -> PriceInForce | None:
    """What ``engine`` (the collector's pricing) charges for ``model`` at ``provider`` at ``at``; None when
    it knows no such model."""
    if not model:
        return None
    resolution = engine.resolve(model, provider)
    if resolution is None:
        return None
    price_set = engine.price_set_at(resolution, at)
    prices = price_set.prices

    def base(key: str) -> Decimal | None:
        value = prices.get(key)
        return getattr(value, "base", value)

    urls = resolution.owner.pricing_urls
    return PriceInForce(
        catalog_model=resolution.model.id,
        priced_as=resolution.owner.id,
        since=price_set.when.describe() if price_set.when else "",
        input_mtok=base("input_mtok"),
        output_mtok=base("output_mtok"),
        cache_read_mtok=base("cache_read_mtok"),
        cache_write_mtok=base("cache_write_mtok"),
        tiered=any(hasattr(v, "tiers") for v in prices.values()),
        estimated=resolution.estimated,
        catalog=resolution.catalog.version,
        source_url=urls[0] if urls else None,
    )


# --- the answers' tables ----------------------------------------------------------------------------------


def _dicts(con: duckdb.DuckDBPyConnection, query: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    cursor = con.execute(query, list(params))
    names = [d[0] for d in cursor.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def budgets(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Each budget's status at the collector's last evaluation (the ``budgets`` table), fullest first."""
    return _dicts(
        con,
        """SELECT budget, scope, period, period_start, period_end, limit_usd, spent_usd, remaining_usd,
                  used_percent, unpriced_calls, projected_usd, crossing_at, thresholds_crossed, evaluated_at
           FROM budgets ORDER BY used_percent DESC NULLS LAST, budget""",
    )


def budget_periods(con: duckdb.DuckDBPyConnection, limit: int = 200) -> list[dict[str, Any]]:
    """Every budget's periods (the ``budget_periods`` table), the latest first."""
    return _dicts(
        con,
        """SELECT budget, scope, period, period_start, period_end, limit_usd, spent_usd, calls,
                  unpriced_calls, len(crossings) AS crossings, closed
           FROM budget_periods ORDER BY period_start DESC, budget LIMIT ?""",
        [limit],
    )


def forecast_totals(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Each forecast series' total for its period (the ``forecasts`` table's ``period_total`` rows): the
    organisation first, then the largest."""
    return _dicts(
        con,
        """SELECT scope, value, period, period_start, period_end, actual_usd, p50, lo80, hi80, lo95, hi95,
                  method, backtest_error_pct, history_days, note, generated_at
           FROM forecasts WHERE kind = 'period_total'
           ORDER BY scope <> ?, p50 DESC NULLS LAST, scope, value""",
        [ORGANISATION],
    )


def month_forecast(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """The organisation's forecast of the current month (the ``forecasts`` table): its rows by day, the
    ``period_total`` row last."""
    return _dicts(
        con,
        """SELECT day, kind, actual_usd, p50, lo80, hi80, lo95, hi95, method, period_start, period_end,
                  generated_at
           FROM forecasts WHERE scope = ? AND period = 'month'
           ORDER BY kind = 'period_total', day""",
        [ORGANISATION],
    )


def open_anomalies(con: duckdb.DuckDBPyConnection, limit: int = 20) -> list[dict[str, Any]]:
    """Open anomalies first (largest impact first), then the others, latest first."""
    return _dicts(
        con,
        """SELECT id, kind, grain, dimension, value, start, "end", status, expected_usd, observed_usd,
                  impact_usd, explanation
           FROM anomalies
           ORDER BY "end" IS NOT NULL, CASE WHEN "end" IS NULL THEN impact_usd END DESC NULLS LAST,
                    start DESC, id
           LIMIT ?""",
        [limit],
    )


# --- traces -----------------------------------------------------------------------------------------------


def latest_calls(
    con: duckdb.DuckDBPyConnection,
    since: datetime | None,
    until: datetime | None,
    where: Filters | None = None,
    limit: int = 200,
    unpriced_only: bool = False,
) -> list[dict[str, Any]]:
    """The raw calls behind a figure: the latest ``limit`` of the range and filters, newest first."""
    return spend.calls(con, since, until, where, limit, unpriced_only)


def costliest_traces(
    con: duckdb.DuckDBPyConnection,
    since: datetime | None,
    until: datetime | None,
    where: Filters | None = None,
    limit: int = 50,
) -> list[spend.TraceSpend]:
    return spend.costliest_traces(con, since, until, where, limit)


@dataclass
class Node:
    """A span of a trace's cost tree: an agent, tool, workflow, retrieval or plain span, or a call."""

    span_id: str
    parent_span_id: str | None
    kind: str  # agent, tool, workflow, retrieval, other, or "llm" for a call
    name: str
    start_time: datetime | None
    duration_s: float | None
    self_cost_usd: Decimal  # a call's own cost; 0 for any other span
    detail: dict[str, Any]  # the call's or span's columns
    children: list[Node] = field(default_factory=list)
    total_cost_usd: Decimal = Decimal(0)  # its own and every descendant's
    calls: int = 0  # calls in its subtree, itself included
    depth: int = 0


def trace_tree(con: duckdb.DuckDBPyConnection, trace_id: str) -> list[Node]:
    """The stored spans and calls of a trace as trees (roots first by start), each node with its self and
    total cost. A span whose parent is not stored is a root (its cost is still counted, under it)."""
    nodes: dict[str, Node] = {}
    spans = _dicts(
        con,
        """SELECT span_id, parent_span_id, kind, coalesce(name, agent_name, kind) AS name, start_time,
                  duration_s, service_name, team, feature, agent_name, step, error_type
           FROM genai_spans WHERE trace_id = ? ORDER BY start_time, span_id""",
        [trace_id],
    )
    for span in spans:
        nodes[span["span_id"]] = Node(
            span["span_id"],
            span["parent_span_id"],
            span["kind"],
            span["name"],
            span["start_time"],
            span["duration_s"],
            Decimal(0),
            span,
        )
    for call in spend.trace_calls(con, trace_id):
        model = call["response_model"] or call["request_model"] or "?"
        nodes[call["span_id"]] = Node(
            call["span_id"],
            call["parent_span_id"],
            "llm",
            f"{call['operation'] or 'call'} {model}",
            call["start_time"],
            call["duration_s"],
            call["cost_usd"] or Decimal(0),
            call,
        )
    roots: list[Node] = []
    for node in nodes.values():
        parent = nodes.get(node.parent_span_id) if node.parent_span_id else None
        (parent.children if parent is not None and parent is not node else roots).append(node)
    order = _start_order
    for node in nodes.values():
        node.children.sort(key=order)
    roots.sort(key=order)
    seen: set[str] = set()
    for root in roots:
        _sum(root, 0, seen)
    # spans whose parents form a cycle reach no root: each such cycle is cut where it is first met
    for node in sorted(nodes.values(), key=order):
        if node.span_id not in seen:
            roots.append(node)
            _sum(node, 0, seen)
    return roots


def _start_order(node: Node) -> tuple[datetime, str]:
    return (node.start_time or datetime.min, node.span_id)


def _sum(node: Node, depth: int, seen: set[str]) -> None:
    # a corrupt parent chain (a cycle) must not loop: a span already visited is not walked again
    seen.add(node.span_id)
    node.depth = depth
    node.children = [c for c in node.children if c.span_id not in seen]
    for child in node.children:
        _sum(child, depth + 1, seen)
    node.total_cost_usd = node.self_cost_usd + sum((c.total_cost_usd for c in node.children), Decimal(0))
    node.calls = (node.kind == "llm") + sum(c.calls for c in node.children)


def flatten(roots: Sequence[Node]) -> list[Node]:
    """The tree's nodes depth first, as a table shows them."""
    out: list[Node] = []
    stack = list(reversed(roots))
    while stack:
        node = stack.pop()
        out.append(node)
        stack.extend(reversed(node.children))
    return out


def tag_keys(con: duckdb.DuckDBPyConnection, since: datetime | None, limit: int = 50) -> list[str]:
    """The tag keys seen on calls since ``since`` (for Explore's dimension list)."""
    return spend.tag_keys(con, since, limit)
