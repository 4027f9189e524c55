"""Budgets: what a scope of the spend may cost per period, as declared in the collector's configuration.

    budgets:
      - name: org
        amount: 20000                 # USD, exact
        period: month                 # day | week (ISO, Monday 00:00) | month | {rolling: 24h}
        reset_day: 1                  # month only: the day of the month it resets, 1 to 28
        timezone: Europe/Berlin       # IANA name; default UTC
        thresholds: [50, 75, 90, 100] # percent of the amount; the default
      - name: search
        scope: {team: search}         # dimensions of llm_calls, or tag.<key>; none: the organisation
        amount: 5000
        period: month
        timezone: Europe/Berlin
      - name: search-alice
        scope: {team: search, user_id: alice}
        parent: search                # optional: else inferred
        amount: 500
        period: month
        timezone: Europe/Berlin

The section is a list like this one, or ``{file: budgets.yaml}`` naming a file (relative to the
configuration) that holds the list, or ``{items: [...]}``; either mapping may set ``interval`` (how often
the collector evaluates them, default 60s).

A budget's *parent* is the one it is counted in: its scope is a proper part of the child's (a call of team
search and user alice is a call of team search), so the child's spend is in the parent's naturally. Unless
``parent`` names it, the parent is the budget with the same period whose scope is the largest proper part
of the child's (the first declared among equals). ``costspan config check`` warns where the children of a
budget, with the same period, may spend more in total than the budget itself.

Each mistake is a configuration error naming the file, the line and the key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .periods import MAX_RESET_DAY, PERIOD_KINDS, describe_window, parse_window
from .spend import UnknownDimension, dimension_sql

DEFAULT_THRESHOLDS: tuple[Decimal, ...] = (Decimal(50), Decimal(75), Decimal(90), Decimal(100))
MAX_THRESHOLD = Decimal(1000)  # percent: a threshold past ten times the amount is a typo
THRESHOLD_STEP = Decimal("0.0001")  # as stored (DECIMAL(38, 4)): a threshold read back is the one declared
MAX_AMOUNT = Decimal(10) ** 15
DEFAULT_INTERVAL_S = 60.0
MIN_WINDOW = timedelta(minutes=1)
MAX_WINDOW = timedelta(days=366)
_KEYS = {"name", "scope", "amount", "period", "reset_day", "timezone", "thresholds", "parent"}


@dataclass(frozen=True)
class Budget:
    """One declared budget. ``parent`` is the budget it is counted in, declared or inferred."""

    name: str
    scope: dict[str, str]  # dimension -> value; empty: the organisation
    amount: Decimal  # USD per period
    period: str  # "day" | "week" | "month" | "rolling"
    reset_day: int = 1  # month: the day it resets
    window: timedelta | None = None  # rolling: its length
    timezone: str = "UTC"
    thresholds: tuple[Decimal, ...] = DEFAULT_THRESHOLDS  # percent of amount, ascending
    parent: str | None = None
    where: str = field(default="", compare=False, repr=False)  # "file:line" it was declared at

    def __hash__(self) -> int:  # the scope is a dict: a budget is known by its name
        return hash(self.name)

    def describe_period(self) -> str:
        """``month from day 15, Europe/Berlin``, ``rolling 24h``: the period as a person reads it."""
        if self.period == "rolling":
            assert self.window is not None
            return f"rolling {describe_window(self.window)}"
        text = self.period
        if self.period == "month" and self.reset_day != 1:
            text = f"month from day {self.reset_day}"
        return text if self.timezone == "UTC" else f"{text}, {self.timezone}"

    def describe_scope(self) -> str:
        """``team=search,user_id=alice``; ``*`` for the organisation."""
        return ",".join(f"{k}={v}" for k, v in sorted(self.scope.items())) or "*"

    def same_period(self, other: Budget) -> bool:
        return (self.period, self.reset_day, self.window, self.timezone) == (
            other.period,
            other.reset_day,
            other.window,
            other.timezone,
        )


@dataclass(frozen=True)
class BudgetEvent:
    """A threshold crossed, once per period: what the job hands to each notification hook."""

    budget: str
    scope: dict[str, str]
    period_start: datetime  # aware UTC
    period_end: datetime  # aware UTC (a rolling budget: the instant of the crossing)
    threshold: Decimal  # percent
    crossed_at: datetime  # aware UTC
    spent_usd: Decimal
    limit_usd: Decimal
    projected_usd: Decimal | None  # None: not enough data


def budgets_from_config(config: Any) -> list[Budget]:
    """The budgets of a :class:`costspan.collector.config.CollectorConfig`."""
    return list(getattr(config, "budgets", ()) or ())


# ``error(node, key, message)`` makes the configuration error, naming the file and the line of ``key``
ErrorFactory = Callable[[Any, "str | None", str], Exception]


def read_budgets(
    items: Any, where: str, error: ErrorFactory, path: str, container: Any = None, key: str | None = None
) -> list[Budget]:
    """The budgets of the list ``items`` (YAML, with lines), or the first mistake as ``error(...)``.
    ``where`` names the list in messages (``budgets``); ``path`` is the file, for :attr:`Budget.where`;
    ``container[key]`` is the list, for the line of a mistake in the list itself."""
    if not isinstance(items, list):
        raise error(container, key, f"{where}: a list of budgets")
    budgets: list[Budget] = []
    nodes: dict[str, Any] = {}
    for i, node in enumerate(items):
        here = f"{where}[{i}]"
        if not isinstance(node, Mapping):
            raise error(container, key, f"{here}: a budget is a mapping (name, amount, period ...)")
        budget = _read_one(node, here, error, path)
        if budget.name in nodes:
            raise error(node, "name", f"{here}.name: {budget.name!r} is declared twice")
        nodes[budget.name] = node
        budgets.append(budget)
    return _with_parents(budgets, nodes, where, error)


def _read_one(node: Any, here: str, error: ErrorFactory, path: str) -> Budget:
    for key in node:
        if key not in _KEYS:
            raise error(node, key, f"{here}.{key}: unknown key; expected one of {', '.join(sorted(_KEYS))}")
    name = node.get("name")
    if not isinstance(name, str) or not name.strip():
        raise error(node, "name" if "name" in node else None, f"{here}.name: required, a non-empty string")
    scope = _scope(node, here, error)
    amount = _amount(node, here, error)
    period, window = _period(node, here, error)
    reset_day = 1
    if "reset_day" in node:
        value = node["reset_day"]
        if period != "month":
            raise error(node, "reset_day", f"{here}.reset_day: only a month has a reset day")
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_RESET_DAY:
            raise error(
                node,
                "reset_day",
                f"{here}.reset_day: a day of the month from 1 to {MAX_RESET_DAY} (every month has it); "
                f"got {value!r}",
            )
        reset_day = value
    timezone = node.get("timezone", "UTC")
    if not isinstance(timezone, str) or not _zone_exists(timezone):
        raise error(
            node, "timezone", f"{here}.timezone: an IANA time zone such as Europe/Berlin; got {timezone!r}"
        )
    if period == "rolling" and "timezone" in node and timezone != "UTC":
        raise error(node, "timezone", f"{here}.timezone: a rolling window is the same in every time zone")
    thresholds = _thresholds(node, here, error)
    parent = node.get("parent")
    if parent is not None and (not isinstance(parent, str) or not parent):
        raise error(node, "parent", f"{here}.parent: the name of another budget")
    line = node.line_of("name") if hasattr(node, "line_of") else 0
    return Budget(
        name=name,
        scope=scope,
        amount=amount,
        period=period,
        reset_day=reset_day,
        window=window,
        timezone=timezone,
        thresholds=thresholds,
        parent=parent,
        where=f"{path}:{line}",
    )


def _scope(node: Any, here: str, error: ErrorFactory) -> dict[str, str]:
    scope = node.get("scope")
    if scope is None:
        return {}
    if not isinstance(scope, Mapping):
        raise error(node, "scope", f"{here}.scope: a mapping of dimension to value (team: search)")
    out: dict[str, str] = {}
    for dimension, value in scope.items():
        try:
            dimension_sql(dimension)
        except UnknownDimension as exc:
            raise error(scope, dimension, f"{here}.scope.{dimension}: {exc}") from None
        # an id written without quotes reads as a number: the same value as text
        if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
            raise error(scope, dimension, f"{here}.scope.{dimension}: a value (text); got {value!r}")
        out[str(dimension)] = str(value)
    return out


def _amount(node: Any, here: str, error: ErrorFactory) -> Decimal:
    if "amount" not in node:
        raise error(node, None, f"{here}.amount: required, in USD")
    value = node["amount"]
    amount: Decimal | None = None
    if isinstance(value, (int, Decimal, str)) and not isinstance(value, bool):
        try:
            amount = Decimal(str(value).strip())
        except InvalidOperation:
            amount = None
    if amount is None or not amount.is_finite():
        raise error(node, "amount", f"{here}.amount: a number of USD such as 250 or 99.50; got {value!r}")
    if amount <= 0:
        raise error(node, "amount", f"{here}.amount: more than 0 USD; got {value!r}")
    # stored as DECIMAL(38, 12), as cost_usd
    if amount >= MAX_AMOUNT or amount != amount.quantize(Decimal("1E-12")):
        raise error(
            node,
            "amount",
            f"{here}.amount: less than {MAX_AMOUNT:,} USD, to 12 decimal places; got {value!r}",
        )
    return amount


def _period(node: Any, here: str, error: ErrorFactory) -> tuple[str, timedelta | None]:
    if "period" not in node:
        raise error(node, None, f"{here}.period: required: day, week, month or {{rolling: 24h}}")
    value = node["period"]
    if isinstance(value, Mapping):
        if set(value) != {"rolling"}:
            raise error(node, "period", f"{here}.period: a rolling window is {{rolling: 24h}}")
        try:
            window = parse_window(value["rolling"])
        except ValueError as exc:
            raise error(value, "rolling", f"{here}.period.rolling: {exc}") from None
        if not MIN_WINDOW <= window <= MAX_WINDOW:
            raise error(value, "rolling", f"{here}.period.rolling: from 1m to 366d; got {value['rolling']!r}")
        return "rolling", window
    if value not in PERIOD_KINDS or value == "rolling":
        raise error(node, "period", f"{here}.period: day, week, month or {{rolling: 24h}}; got {value!r}")
    return str(value), None


def _thresholds(node: Any, here: str, error: ErrorFactory) -> tuple[Decimal, ...]:
    if "thresholds" not in node:
        return DEFAULT_THRESHOLDS
    values = node["thresholds"]
    if not isinstance(values, list) or not values:
        raise error(node, "thresholds", f"{here}.thresholds: a list of percentages such as [50, 90, 100]")
    found: set[Decimal] = set()
    for value in values:
        percent = None
        if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
            percent = Decimal(value)
        if (
            percent is None
            or not percent.is_finite()
            or not 0 < percent <= MAX_THRESHOLD
            or percent != percent.quantize(THRESHOLD_STEP)
        ):
            raise error(
                node,
                "thresholds",
                f"{here}.thresholds: each a percentage above 0 and at most {MAX_THRESHOLD}, to 4 decimal "
                f"places; got {value!r}",
            )
        found.add(percent)
    return tuple(sorted(found))


def _zone_exists(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _with_parents(
    budgets: list[Budget], nodes: Mapping[str, Any], where: str, error: ErrorFactory
) -> list[Budget]:
    by_name = {b.name: b for b in budgets}
    for budget in budgets:
        if budget.parent is not None and budget.parent not in by_name:
            message = f"{where}: budget {budget.name!r}: parent {budget.parent!r} is not declared"
            raise error(nodes[budget.name], "parent", message)
    for budget in budgets:  # a declared chain that comes back to where it began
        seen = [budget.name]
        current = budget
        while current.parent is not None:
            if current.parent in seen:
                chain = " -> ".join([*seen[seen.index(current.parent) :], current.parent])
                message = f"{where}: budget {budget.name!r}: parents form a cycle: {chain}"
                raise error(nodes[budget.name], "parent", message)
            seen.append(current.parent)
            current = by_name[current.parent]
    out: list[Budget] = []
    for budget in budgets:
        if budget.parent is not None:
            parent = by_name[budget.parent]
            if not _proper_part(parent.scope, budget.scope):
                raise error(
                    nodes[budget.name],
                    "parent",
                    f"{where}: budget {budget.name!r}: parent {parent.name!r} must have a scope that is a "
                    f"proper part of this one's ({parent.describe_scope()} is not within "
                    f"{budget.describe_scope()}), so that this budget's calls are counted in it",
                )
            out.append(budget)
            continue
        candidates = [o for o in budgets if o.same_period(budget) and _proper_part(o.scope, budget.scope)]
        best = max(candidates, key=lambda b: len(b.scope), default=None)  # the first among equals
        out.append(replace(budget, parent=best.name if best else None))
    return out


def _proper_part(outer: Mapping[str, str], inner: Mapping[str, str]) -> bool:
    """Whether every call of scope ``inner`` is also in scope ``outer``, and ``outer`` is wider."""
    return len(outer) < len(inner) and all(inner.get(k) == v for k, v in outer.items())


def hierarchy_warnings(budgets: Sequence[Budget]) -> list[str]:
    """``file:line: warning: ...`` for each budget whose children (same period) add up to more than it."""
    warnings = []
    for parent in budgets:
        children = [b for b in budgets if b.parent == parent.name and b.same_period(parent)]
        total = sum((c.amount for c in children), Decimal(0))
        if children and total > parent.amount:
            names = ", ".join(f"{c.name} ({c.amount})" for c in children)
            warnings.append(
                f"{parent.where}: warning: budget {parent.name!r} ({parent.amount} USD per "
                f"{parent.describe_period()}) is less than its children's total {total} USD: {names}"
            )
    return warnings
