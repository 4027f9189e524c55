"""``costspan rules``: Prometheus recording and alerting rules generated from the configured budgets.

The collector evaluates each budget from the stored calls and exposes its levels on the admin ``/metrics``
(``costspan_budget_*{budget}``, see :mod:`.budgets`); the rules only compare those levels, so Prometheus's
counter resets and retention never change what a budget has spent. Per budget:

- a threshold alert per threshold (``CostspanBudgetThreshold``, label ``threshold``): spent / limit >= t.
  Spend only grows within a period, so a crossing holds until the period resets: ``for`` is two
  evaluations (a lone sample never fires it) and ``keep_firing_for`` rides over a collector restart, whose
  gauges are absent until the budget job's first run. It fires once per period and resolves at the reset;
- a projected-overrun alert (``CostspanBudgetProjectedOverrun``): projected spend at the period's end over
  the limit, for a quarter of an hour (the projection moves with every call);
- multi-window, multi-burn-rate alerts, as the Google SRE workbook's "Alerting on SLOs" does for error
  budgets (:func:`burn_tiers` says how they are adapted to a budget's period).

Labels Alertmanager routes on: ``severity`` (``critical`` pages, ``warning`` is a ticket), ``budget``,
``period`` and the budget's scope, one label per dimension (``team``, ``feature``, ``tag_<key>`` ...).
Annotations read the budget's gauges when the alert fires: dollars spent of the limit, the projection,
and the calls that could not be priced (never counted as $0 spent).

``--tests FILE`` writes a ``promtool test rules`` suite with synthetic series for every generated alert:
each fires when it should, not a step before, and not otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import yaml

from .budgets import Budget, budgets_from_config

# the windows the collector gives costspan_budget_burn_rate{window} for, in seconds
BURN_WINDOWS: dict[str, int] = {
    "5m": 300,
    "30m": 1800,
    "1h": 3600,
    "6h": 6 * 3600,
    "24h": 24 * 3600,
    "3d": 3 * 86400,
    "7d": 7 * 86400,
}
# the nominal length of each kind of period, in seconds; the workbook's alerts are for 30 days
PERIOD_SECONDS = {"day": 86400, "week": 7 * 86400, "month": 30 * 86400}
WORKBOOK_PERIOD_S = 30 * 86400
DEFAULT_INTERVAL_S = 60
# Prometheus label names for the scope's dimensions; a tag's key becomes tag_<key>
_LABEL_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


@dataclass(frozen=True)
class BurnTier:
    """One multi-window burn-rate alert: the spend rate over ``long`` and over ``short`` (the collector's
    windows) both above ``factor`` times the rate the budget allows."""

    alert: str
    severity: str
    long: str
    short: str | None
    factor: float


# The workbook's three tiers for a 30-day period (alert, severity, long window, factor): 14.4x over an hour
# spends 2% of the budget, 6x over 6 hours 5%, 1x over 3 days 10%; the short window is a twelfth of the long.
_WORKBOOK_TIERS = (
    ("CostspanBudgetFastBurn", "critical", 3600, 14.4),
    ("CostspanBudgetSlowBurn", "warning", 6 * 3600, 6.0),
    ("CostspanBudgetSteadyOverspend", "warning", 3 * 86400, 1.0),
)
# Under a day, usage's own daily cycle (working hours) runs above 1x for hours on end: no steady-overspend
# tier there; the projected-overrun alert covers a period that trends over its limit.
_MIN_STEADY_WINDOW_S = 86400


def _nearest_window(seconds: float, shorter_than: int | None = None, longer_than: int = 0) -> str | None:
    """The collector's window closest to ``seconds`` on a log scale, within the bounds (ties: the shorter)."""
    fits = [
        (abs(math.log(s / seconds)), s, name)
        for name, s in BURN_WINDOWS.items()
        if s > longer_than and (shorter_than is None or s < shorter_than)
    ]
    return min(fits)[2] if fits else None


def burn_tiers(period_s: float) -> list[BurnTier]:
    """The burn-rate alerts for a budget whose period lasts ``period_s`` seconds.

    A burn rate is already relative to the period (1x spends the limit exactly at the period's end), so the
    workbook's factors keep their meaning for any period: at 14.4x the whole budget is gone in 1/14.4 of
    the period, at 6x in a sixth. What must scale is the windows: the workbook's long windows (1 h, 6 h,
    3 d of 30 days) are scaled by period / 30 days, so that a tier fires after spending about the same
    share of the budget, and each is taken as the nearest of the collector's windows (5m ... 7d) on a log
    scale, each tier's longer than the tier before; the short window is the window nearest a twelfth of
    the long one (none when the long one is the shortest window). A month gets the workbook's windows
    (1h/5m, 6h/30m, 3d/6h), a week 30m/5m, 1h/5m and 24h/1h, a day 5m alone and 30m/5m.
    """
    tiers: list[BurnTier] = []
    floor = 0
    for alert, severity, workbook_long, factor in _WORKBOOK_TIERS:
        long = _nearest_window(workbook_long * period_s / WORKBOOK_PERIOD_S, longer_than=floor)
        if long is None:
            continue
        if factor == 1.0 and BURN_WINDOWS[long] < _MIN_STEADY_WINDOW_S:
            continue
        floor = BURN_WINDOWS[long]
        short = _nearest_window(BURN_WINDOWS[long] / 12, shorter_than=BURN_WINDOWS[long])
        tiers.append(BurnTier(alert, severity, long, short, factor))
    return tiers


def period_seconds(budget: Budget) -> float:
    """The nominal length of a budget's period: a calendar period's kind, or a rolling window's length."""
    if budget.window is not None:
        return budget.window.total_seconds()
    return float(PERIOD_SECONDS[budget.period])


def period_name(budget: Budget) -> str:
    return budget.describe_period()


def label_name(dimension: str) -> str:
    """A scope dimension as a Prometheus label name (``tag.cost-center`` -> ``tag_cost_center``)."""
    text = "".join(c if c in _LABEL_CHARS else "_" for c in dimension)
    return text if text and not text[0].isdigit() else f"_{text}"


def duration(seconds: float) -> str:
    """A Prometheus duration: the largest unit that divides ``seconds`` exactly."""
    ms = round(seconds * 1000)
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def percent(threshold: Decimal) -> str:
    text = format(threshold.normalize(), "f")
    return text


def _selector(metric: str, budget: str, **labels: str) -> str:
    matchers = ",".join(f"{k}={json.dumps(v)}" for k, v in {"budget": budget, **labels}.items())
    return f"{metric}{{{matchers}}}"


def _lookup(promql: str, fmt: str) -> str:
    """A template that prints ``promql``'s first value with ``fmt`` (nothing when it has none)."""
    shown = f"{{{{ . | first | value | printf {json.dumps(fmt)} }}}}"
    return f"{{{{ with query {json.dumps(promql)} }}}}{shown}{{{{ end }}}}"


@dataclass(frozen=True)
class Timing:
    """``for`` and ``keep_firing_for`` of each alert, in evaluation intervals of Prometheus."""

    interval_s: float = DEFAULT_INTERVAL_S

    @property
    def threshold_for(self) -> float:
        return 2 * self.interval_s

    @property
    def threshold_keep(self) -> float:
        return 10 * self.interval_s

    @property
    def projected_for(self) -> float:
        return 15 * self.interval_s

    @property
    def projected_keep(self) -> float:
        return 15 * self.interval_s

    @property
    def burn_for(self) -> float:
        return 2 * self.interval_s


# the figures the annotations print, each read from the budget's gauges when the alert fires
def _figures(name: str) -> dict[str, str]:
    def gauge(metric: str) -> str:
        return f"max({_selector(metric, name)})"

    return {
        "spent": _lookup(gauge("costspan_budget_spent_usd"), "%.2f"),
        "limit": _lookup(gauge("costspan_budget_limit_usd"), "%.2f"),
        "percent": _lookup(f"100 * {gauge('costspan_budget_used_ratio')}", "%.0f"),
        "projected": _lookup(gauge("costspan_budget_projected_usd"), "%.2f"),
        "unpriced": _lookup(gauge("costspan_budget_unpriced_calls"), "%.0f"),
    }


def _scope_text(budget: Budget) -> str:
    return ", ".join(f"{k}={v}" for k, v in budget.scope.items()) or "whole organisation"


def _literal(text: str) -> str:
    """``text`` as template text: a name holding ``{{`` prints as written."""
    return text.replace("{{", '{{ "{{" }}')


def _annotations(budget: Budget, headline: str) -> dict[str, str]:
    f = _figures(budget.name)
    name, scope = _literal(budget.name), _literal(_scope_text(budget))
    return {
        "summary": f"Budget {name}: {headline}; ${f['spent']} of ${f['limit']} spent ({f['percent']}%)",
        "description": (
            f"Budget {name} ({scope}, {period_name(budget)}): ${f['spent']} of "
            f"${f['limit']} spent, ${f['projected']} projected by the period's end; {f['unpriced']} calls "
            "could not be priced and are not in the spend. Details: costspan budgets."
        ),
    }


def _labels(budget: Budget, severity: str, **extra: str) -> dict[str, str]:
    labels = {"severity": severity, "budget": budget.name, "period": period_name(budget)}
    labels.update({label_name(k): str(v) for k, v in budget.scope.items()})
    labels.update(extra)
    return labels


# Levels by budget for dashboards: several collectors over one store each export the same figures, and max is
# one of them. The alerts read the gauges themselves: a rule reading another group's recording lags it by up
# to an evaluation, as groups run independently.
RECORDING_RULES = [
    ("budget:costspan_budget_used:ratio", "max by (budget) (costspan_budget_used_ratio)"),
    ("budget:costspan_budget_spent_usd:max", "max by (budget) (costspan_budget_spent_usd)"),
    ("budget:costspan_budget_limit_usd:max", "max by (budget) (costspan_budget_limit_usd)"),
    ("budget:costspan_budget_remaining_usd:max", "max by (budget) (costspan_budget_remaining_usd)"),
    ("budget:costspan_budget_projected_usd:max", "max by (budget) (costspan_budget_projected_usd)"),
    ("budget_window:costspan_budget_burn_rate:max", "max by (budget, window) (costspan_budget_burn_rate)"),
]


def _level(metric: str, budget: str, **labels: str) -> str:
    return f"max by (budget) ({_selector(metric, budget, **labels)})"


def _burn_expr(name: str, tier: BurnTier) -> str:
    def over(window: str) -> str:
        return f"{_level('costspan_budget_burn_rate', name, window=window)} > {tier.factor:g}"

    return over(tier.long) + (f"\nand\n{over(tier.short)}" if tier.short else "")


def budget_rules(budget: Budget, timing: Timing) -> list[dict[str, Any]]:
    """The alerting rules of one budget."""
    name = budget.name
    rules: list[dict[str, Any]] = []
    for threshold in sorted(budget.thresholds):
        t = percent(threshold)
        rules.append(
            {
                "alert": "CostspanBudgetThreshold",
                "expr": f"{_level('costspan_budget_used_ratio', name)} >= {threshold / 100}",
                "for": duration(timing.threshold_for),
                "keep_firing_for": duration(timing.threshold_keep),
                "labels": _labels(budget, "critical" if threshold >= 100 else "warning", threshold=t),
                "annotations": _annotations(budget, f"{t}% of the budget crossed"),
            }
        )
    rules.append(
        {
            "alert": "CostspanBudgetProjectedOverrun",
            "expr": (
                f"{_level('costspan_budget_projected_usd', name)}\n> "
                f"{_level('costspan_budget_limit_usd', name)}"
            ),
            "for": duration(timing.projected_for),
            "keep_firing_for": duration(timing.projected_keep),
            "labels": _labels(budget, "warning"),
            "annotations": _annotations(budget, "projected over its limit by the period's end"),
        }
    )
    length = period_seconds(budget)
    for tier in burn_tiers(length):
        windows = f"{tier.long} and {tier.short}" if tier.short else tier.long
        gone = duration(round(length / tier.factor))
        rules.append(
            {
                "alert": tier.alert,
                "expr": _burn_expr(name, tier),
                "for": duration(timing.burn_for),
                "labels": _labels(budget, tier.severity, burn_windows=windows),
                "annotations": _annotations(
                    budget,
                    f"spending over {tier.factor:g}x the rate it allows over the last {windows} "
                    f"(the whole budget would be gone within {gone})",
                ),
            }
        )
    return rules


def rules_document(budgets: Sequence[Budget], timing: Timing) -> dict[str, Any]:
    groups: list[dict[str, Any]] = [
        {
            "name": "costspan-budgets-recording",
            "rules": [{"record": record, "expr": expr} for record, expr in RECORDING_RULES],
        }
    ]
    for budget in budgets:
        groups.append({"name": f"costspan-budget-{budget.name}", "rules": budget_rules(budget, timing)})
    return {"groups": groups}


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the longer expressions) as literal blocks, as people write them."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _text)


def dump(document: dict[str, Any], header: str = "") -> str:
    text = yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1_000_000)
    return header + text


# ---- promtool test suite -------------------------------------------------------------------------------

_SERIES_LABELS = {"job": "costspan", "instance": "collector:9464"}


def _series(metric: str, labels: dict[str, str], values: Sequence[float | Decimal | None]) -> dict[str, str]:
    matchers = ",".join(f"{k}={json.dumps(v)}" for k, v in {**labels, **_SERIES_LABELS}.items())
    text = " ".join(
        "_" if v is None else (format(v, "f") if isinstance(v, Decimal) else repr(v)) for v in values
    )
    return {"series": f"{metric}{{{matchers}}}", "values": text}


@dataclass
class _Levels:
    """A budget's synthetic gauges, one value per evaluation step."""

    limit: Decimal
    used: list[Decimal]
    projected: list[Decimal]
    unpriced: int = 3

    def series(self, name: str) -> list[dict[str, str]]:
        steps = len(self.used)
        labels = {"budget": name}
        return [
            _series("costspan_budget_limit_usd", labels, [self.limit] * steps),
            _series("costspan_budget_spent_usd", labels, [self.limit * u for u in self.used]),
            _series("costspan_budget_used_ratio", labels, self.used),
            _series("costspan_budget_projected_usd", labels, self.projected),
            _series("costspan_budget_unpriced_calls", labels, [Decimal(self.unpriced)] * steps),
        ]

    def annotations(self, budget: Budget, headline: str, step: int) -> dict[str, str]:
        """The annotations as Prometheus renders them at ``step`` (Go's printf rounds as Python's does)."""
        spent = f"{float(self.limit * self.used[step]):.2f}"
        limit = f"{float(self.limit):.2f}"
        pct = f"{100 * float(self.used[step]):.0f}"
        projected = f"{float(self.projected[step]):.2f}"
        return {
            "summary": f"Budget {budget.name}: {headline}; ${spent} of ${limit} spent ({pct}%)",
            "description": (
                f"Budget {budget.name} ({_scope_text(budget)}, {period_name(budget)}): ${spent} of "
                f"${limit} spent, ${projected} projected by the period's end; {self.unpriced} calls "
                "could not be priced and are not in the spend. Details: costspan budgets."
            ),
        }


def _alert_test(alert: str, step: int, interval_s: float, expected: list[dict[str, Any]]) -> dict[str, Any]:
    return {"alertname": alert, "eval_time": duration(step * interval_s), "exp_alerts": expected}


def _threshold_case(budget: Budget, timing: Timing) -> dict[str, Any]:
    """Spend climbs to just under each threshold, holds, then exactly on it, and holds: each threshold's
    alert is silent below it, pending for ``for``, then firing, with every threshold under it firing too."""
    pending = round(timing.threshold_for / timing.interval_s)
    hold = pending + 3
    thresholds = sorted(budget.thresholds)
    used: list[Decimal] = []
    checks: list[tuple[int, list[Decimal]]] = []  # (step, thresholds expected firing)
    below = Decimal(0)
    fired: list[Decimal] = []
    for t in thresholds:
        under = (below + t / 100) / 2
        used += [under] * hold
        checks.append((len(used) - 1, list(fired)))
        start = len(used)
        used += [t / 100] * hold
        checks.append((start + pending - 1, list(fired)))  # one step before ``for`` has passed
        fired.append(t)
        checks.append((start + pending, list(fired)))
        below = t / 100
    limit = Decimal(budget.amount)
    levels = _Levels(limit, used, [limit * u for u in used])
    tests = []
    for step, firing in checks:
        expected = [
            {
                "exp_labels": {"budget": budget.name, **_labels(budget, _severity(t), threshold=percent(t))},
                "exp_annotations": levels.annotations(budget, f"{percent(t)}% of the budget crossed", step),
            }
            for t in firing
        ]
        tests.append(_alert_test("CostspanBudgetThreshold", step, timing.interval_s, expected))
    return {
        "name": f"budget {budget.name}: each threshold fires once crossed, not before",
        "interval": duration(timing.interval_s),
        "input_series": levels.series(budget.name),
        "alert_rule_test": tests,
    }


def _severity(threshold: Decimal) -> str:
    return "critical" if threshold >= 100 else "warning"


def _projected_case(budget: Budget, timing: Timing) -> dict[str, Any]:
    """The projection at the limit (not over it), then over it: pending for ``for``, then firing."""
    hold = round(timing.projected_for / timing.interval_s)
    limit = Decimal(budget.amount)
    used = [Decimal("0.4")] * (2 * hold + 4)
    projected = [limit] * (hold + 2) + [limit * Decimal("1.25")] * (hold + 2)
    levels = _Levels(limit, used, projected)
    start = hold + 2
    headline = "projected over its limit by the period's end"
    firing = [
        {
            "exp_labels": {"budget": budget.name, **_labels(budget, "warning")},
            "exp_annotations": levels.annotations(budget, headline, start + hold),
        }
    ]
    return {
        "name": f"budget {budget.name}: projected overrun",
        "interval": duration(timing.interval_s),
        "input_series": levels.series(budget.name),
        "alert_rule_test": [
            _alert_test("CostspanBudgetProjectedOverrun", start - 1, timing.interval_s, []),
            _alert_test("CostspanBudgetProjectedOverrun", start + hold - 1, timing.interval_s, []),
            _alert_test("CostspanBudgetProjectedOverrun", start + hold, timing.interval_s, firing),
        ],
    }


def _burn_case(budget: Budget, tier: BurnTier, timing: Timing) -> dict[str, Any]:
    """Four phases: both windows calm; only the long one over the factor; only the short one; both. The
    tier fires in the last phase only, once ``for`` has passed."""
    hold = round(timing.burn_for / timing.interval_s) + 3
    calm, hot = 0.5, tier.factor * 1.5
    windows = [tier.long] + ([tier.short] if tier.short else [])
    phases = (
        [(calm, calm), (hot, calm), (calm, hot), (hot, hot)] if tier.short else [(calm, calm), (hot, hot)]
    )
    values: dict[str, list[float]] = {w: [] for w in windows}
    for long_value, short_value in phases:
        values[tier.long] += [long_value] * hold
        if tier.short:
            values[tier.short] += [short_value] * hold
    steps = len(phases) * hold
    limit = Decimal(budget.amount)
    levels = _Levels(limit, [Decimal("0.3")] * steps, [limit * Decimal("0.9")] * steps)
    series = levels.series(budget.name)
    series += [
        _series("costspan_budget_burn_rate", {"budget": budget.name, "window": w}, values[w]) for w in windows
    ]
    windows_text = " and ".join(windows)
    gone = duration(round(period_seconds(budget) / tier.factor))
    headline = (
        f"spending over {tier.factor:g}x the rate it allows over the last {windows_text} "
        f"(the whole budget would be gone within {gone})"
    )
    last = steps - hold
    burn_for = round(timing.burn_for / timing.interval_s)
    tests = [
        _alert_test(tier.alert, (i + 1) * hold - 1, timing.interval_s, []) for i in range(len(phases) - 1)
    ]
    tests.append(_alert_test(tier.alert, last + burn_for - 1, timing.interval_s, []))
    tests.append(
        _alert_test(
            tier.alert,
            last + burn_for,
            timing.interval_s,
            [
                {
                    "exp_labels": {
                        "budget": budget.name,
                        **_labels(budget, tier.severity, burn_windows=windows_text),
                    },
                    "exp_annotations": levels.annotations(budget, headline, last + burn_for),
                }
            ],
        )
    )
    return {
        "name": f"budget {budget.name}: {tier.alert} over {windows_text}",
        "interval": duration(timing.interval_s),
        "input_series": series,
        "alert_rule_test": tests,
    }


def tests_document(budgets: Sequence[Budget], timing: Timing, rule_file: str) -> dict[str, Any]:
    """A ``promtool test rules`` suite for the rules of ``budgets`` in ``rule_file``."""
    cases: list[dict[str, Any]] = []
    for budget in budgets:
        cases.append(_threshold_case(budget, timing))
        cases.append(_projected_case(budget, timing))
        cases += [_burn_case(budget, tier, timing) for tier in burn_tiers(period_seconds(budget))]
    return {"rule_files": [rule_file], "evaluation_interval": duration(timing.interval_s), "tests": cases}


# ---- command -------------------------------------------------------------------------------------------


def register(subparsers: Any) -> None:
    rules = subparsers.add_parser(
        "rules", help="Prometheus recording and alerting rules for the configured budgets"
    )
    rules.add_argument("--config", help="collector configuration (YAML) whose budgets the rules are for")
    rules.add_argument("--output", help="write the rules to this file (default: standard output)")
    rules.add_argument(
        "--tests", help="also write a promtool test suite for them to this file (needs --output)"
    )
    rules.add_argument(
        "--interval",
        default=duration(DEFAULT_INTERVAL_S),
        help="Prometheus's scrape and evaluation interval; for and keep_firing_for are multiples of it "
        "(default 1m)",
    )
    rules.add_argument(
        "--format",
        choices=("yaml", "table", "csv", "json"),
        default="yaml",
        help="yaml: the rule file; table, csv, json: a list of the alerts",
    )
    rules.set_defaults(handler=run)


def _interval(text: str) -> float:
    from costspan.collector.config import _DURATION, _SECONDS

    match = _DURATION.match(text)
    if match is None or float(match.group(1)) <= 0:
        raise ValueError(f"--interval: a duration such as 15s or 1m; got {text!r}")
    return float(match.group(1)) * _SECONDS[match.group(2)]


def load_budgets(config_path: str | None) -> list[Budget]:
    from costspan.collector.config import CollectorConfig, load_config

    config = load_config(config_path) if config_path else CollectorConfig()
    return list(budgets_from_config(config))


def run(args: argparse.Namespace) -> int:
    from costspan.collector.config import ConfigFileError

    try:
        timing = Timing(_interval(args.interval))
        if args.tests and not args.output:
            raise ValueError("--tests needs --output: the suite names the rule file it tests")
        budgets = load_budgets(args.config)
    except (ConfigFileError, ValueError) as exc:
        print(f"costspan rules: {exc}", file=sys.stderr)
        return 2
    document = rules_document(budgets, timing)
    if args.format != "yaml":
        _list(document, args.format, sys.stdout)
        return 0
    source = args.config or "the default configuration (no budgets)"
    header = (
        "# Prometheus rules for costspan's budgets, generated by `costspan rules` from\n"
        f"# {source}: edit the budgets and generate them again (evaluation interval\n"
        f"# {duration(timing.interval_s)}). Check with `promtool check rules FILE`.\n"
    )
    text = dump(document, header)
    if not args.output:
        sys.stdout.write(text)
        return 0
    _write(Path(args.output), text)
    if args.tests:
        tests = Path(args.tests)
        rule_file = os.path.relpath(Path(args.output).resolve(), tests.resolve().parent)
        suite = tests_document(budgets, timing, rule_file)
        _write(tests, dump(suite, f"# promtool test rules {tests.name}: generated by `costspan rules`\n"))
    return 0


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _list(document: dict[str, Any], fmt: str, out: TextIO) -> None:
    from costspan.collector.sql import write_rows

    rows = []
    for group in document["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                labels = rule["labels"]
                rows.append(
                    (
                        rule["alert"],
                        group["name"].removeprefix("costspan-budget-"),
                        labels["severity"],
                        labels.get("threshold") or labels.get("burn_windows") or "",
                        rule.get("for", ""),
                        " ".join(rule["expr"].split()),
                    )
                )
    write_rows(["alert", "budget", "severity", "threshold_or_windows", "for", "expr"], rows, fmt, out)
