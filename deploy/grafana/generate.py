"""costspan's Grafana dashboards, built with grafana-foundation-sdk and written to ``dashboards/*.json``.

    python deploy/grafana/generate.py            # (re)write the committed JSON
    python deploy/grafana/generate.py --check    # exit 1 when the committed JSON differs

Five dashboards, linked to each other by the ``costspan`` tag: an overview, teams and features, models and
providers, budgets and burn rate (with the forecasts, anomalies and notifications), and the collector's
health. Every panel reads what the collector's admin ``/metrics`` exports (docs/design.md, "Prometheus") and
needs no recording rule, so the dashboards work on a plain scrape. The data source is the ``datasource``
variable: Grafana picks its default Prometheus, and a provisioned one (uid ``prometheus``) when present.

Label filters are regular expressions (``=~"$team"``), as Grafana sends a multi-value or "All" selection;
the forecast, budget and anomaly gauges carry their own labels (``scope``/``value``, ``budget``) rather than
the cost labels, so only ``job`` filters them. The answers' runner labels its series ``answer_job``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import bargauge, dashboard, piechart, prometheus, stat, table, timeseries
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

OUT = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = model.DataSourceRef(type_val="prometheus", uid="${datasource}")
TAG = "costspan"
COST_LABELS = ("environment", "team", "feature", "service", "provider", "model")

COST = "costspan_cost_usd_total"
TOKENS = "costspan_tokens_total"
CALLS = "costspan_llm_calls_total"
FORECAST = "costspan_forecast_period_spend_usd"
JOB = 'job=~"$job"'
PRICED = 'status=~"priced|estimated"'  # the statuses that carry a cost (pricing/_result.py)
UNPRICED = 'status="unknown_model"'
ORGANISATION = 'scope="organisation"'
P50 = 'bound="p50"'
TABLE_HIDDEN = ("Time", "__name__", "job", "instance")  # columns an instant table query brings along


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""
    instant: bool = False  # one value per series (stat, bar gauge, table) rather than a graph over time


@dataclass(frozen=True)
class Panel:
    title: str
    kind: str  # stat, timeseries, bargauge, table, piechart
    queries: Sequence[Query]
    unit: str = "short"
    width: int = 12
    height: int = 0  # 0: 4 rows for a stat, 8 for the others
    description: str = ""
    decimals: int | None = None
    thresholds: Sequence[tuple[float, str]] = ()  # (from value, colour) above the base green
    stack: bool = False


@dataclass(frozen=True)
class Row:
    title: str
    panels: Sequence[Panel]


@dataclass(frozen=True)
class Board:
    uid: str
    title: str
    description: str
    variables: Sequence[str]  # job first; cost labels and budget follow
    rows: Sequence[Row]
    time_from: str = "now-24h"


class Filters:
    """A dashboard's label matchers: the scrape job, and each cost label it has a variable for."""

    def __init__(self, variables: Sequence[str]) -> None:
        self.variables = variables

    def cost(self, metric: str, *extra: str) -> str:
        matchers = [JOB, *(f'{label}=~"${label}"' for label in COST_LABELS if label in self.variables)]
        return selector(metric, *matchers, *extra)

    def job(self, metric: str, *extra: str) -> str:
        return selector(metric, JOB, *extra)


def selector(metric: str, *matchers: str) -> str:
    return metric + "{" + ",".join(matchers) + "}"


def per_hour(by: str, series: str) -> str:
    """Spend in US dollars per hour, by ``by`` (empty: in total)."""
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping} (rate({series}[$__rate_interval])) * 3600"


def in_range(by: str, series: str) -> str:
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping} (increase({series}[$__range]))"


def per_second(by: str, series: str) -> str:
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping} (rate({series}[$__rate_interval]))"


# --- the dashboards --------------------------------------------------------------------------------------


def overview() -> Board:
    f = Filters(("job", "environment"))
    cost, calls = f.cost(COST), f.cost(CALLS)
    return Board(
        uid="costspan-overview",
        title="costspan / Overview",
        description="LLM spend at a glance: totals, the month's forecast, budgets, anomalies, unpriced calls "
        "and whether the collector is scraped.",
        variables=f.variables,
        rows=[
            Row(
                "Spend",
                [
                    Panel(
                        "Spend in range", "stat", [Query(in_range("", cost), instant=True)], "currencyUSD", 4
                    ),
                    Panel(
                        "Spend rate (USD/hour)",
                        "stat",
                        [Query(per_hour("", cost), instant=True)],
                        "currencyUSD",
                        4,
                    ),
                    Panel(
                        "Month forecast (p50)",
                        "stat",
                        [Query(f"sum({f.job(FORECAST, ORGANISATION, P50)})", instant=True)],
                        "currencyUSD",
                        4,
                        description="The current UTC month's spend so far plus the forecast of the rest "
                        "(costspan forecast).",
                    ),
                    Panel(
                        "LLM calls in range", "stat", [Query(in_range("", calls), instant=True)], "short", 3
                    ),
                    Panel(
                        "Unpriced calls in range",
                        "stat",
                        [Query(f"{in_range('', f.cost(CALLS, UNPRICED))} or vector(0)", instant=True)],
                        "short",
                        3,
                        thresholds=[(1, "orange")],
                    ),
                    Panel(
                        "Open anomalies",
                        "stat",
                        [Query(f"sum({f.job('costspan_anomalies_open')})", instant=True)],
                        "short",
                        3,
                        thresholds=[(1, "orange")],
                    ),
                    Panel(
                        "Budgets at or over their amount",
                        "stat",
                        [
                            Query(
                                f"count({f.job('costspan_budget_used_ratio')} >= 1) or vector(0)",
                                instant=True,
                            )
                        ],
                        "short",
                        3,
                        thresholds=[(1, "red")],
                    ),
                    Panel(
                        "Spend by team (USD/hour)", "timeseries", [Query(per_hour("team", cost), "{{team}}")]
                    ),
                    Panel(
                        "Spend against the same time yesterday (USD/hour)",
                        "timeseries",
                        [
                            Query(f"sum(rate({cost}[1h])) * 3600", "today"),
                            Query(f"sum(rate({cost}[1h] offset 1d)) * 3600", "yesterday"),
                        ],
                        description="Hourly averages, so the two lines compare like with like.",
                    ),
                    Panel(
                        "Month forecast with its 80% and 95% intervals (USD)",
                        "bargauge",
                        [Query(f.job(FORECAST, 'scope="organisation"'), "{{bound}}", instant=True)],
                        "currencyUSD",
                        8,
                    ),
                    Panel(
                        "Top features in range",
                        "table",
                        [Query(f"topk(10, {in_range('team, feature', cost)})", "spent", True)],
                        "currencyUSD",
                        8,
                    ),
                    Panel(
                        "Top models in range",
                        "table",
                        [Query(f"topk(10, {in_range('provider, model', cost)})", "spent", True)],
                        "currencyUSD",
                        8,
                    ),
                    Panel(
                        "Collector scraped",
                        "stat",
                        [Query(f"min({f.job('up')})", instant=True)],
                        "bool_yes_no",
                        24,
                        4,
                        thresholds=[(0, "red"), (1, "green")],
                    ),
                ],
            )
        ],
    )


def teams() -> Board:
    f = Filters(("job", "environment", "team", "feature", "service"))
    cost, calls, tokens = f.cost(COST), f.cost(CALLS), f.cost(TOKENS)
    return Board(
        uid="costspan-teams",
        title="costspan / Teams and features",
        description="Who spends what: spend, calls and tokens by team, feature and service, each team's "
        "forecast and its open anomalies.",
        variables=f.variables,
        rows=[
            Row(
                "Spend",
                [
                    Panel(
                        "Spend by team (USD/hour)", "timeseries", [Query(per_hour("team", cost), "{{team}}")]
                    ),
                    Panel(
                        "Spend by feature (USD/hour)",
                        "timeseries",
                        [Query(per_hour("team, feature", cost), "{{team}} / {{feature}}")],
                    ),
                    Panel(
                        "Share of spend by team in range",
                        "piechart",
                        [Query(in_range("team", cost), "{{team}}", instant=True)],
                        "currencyUSD",
                        8,
                    ),
                    Panel(
                        "Features in range (USD)",
                        "table",
                        [Query(in_range("team, feature", cost), "spent", True)],
                        "currencyUSD",
                        8,
                    ),
                    Panel(
                        "Average cost per priced call, by feature (USD)",
                        "table",
                        [
                            Query(
                                f"{in_range('team, feature', cost)} / "
                                f"{in_range('team, feature', f.cost(CALLS, PRICED))}",
                                "per call",
                                instant=True,
                            )
                        ],
                        "currencyUSD",
                        8,
                        decimals=4,
                    ),
                    Panel(
                        "Spend by service (USD/hour)",
                        "timeseries",
                        [Query(per_hour("service", cost), "{{service}}")],
                    ),
                    Panel(
                        "Spend by environment (USD/hour)",
                        "timeseries",
                        [Query(per_hour("environment", cost), "{{environment}}")],
                    ),
                ],
            ),
            Row(
                "Usage",
                [
                    Panel(
                        "Calls by team (per second)",
                        "timeseries",
                        [Query(per_second("team", calls), "{{team}}")],
                        "reqps",
                    ),
                    Panel(
                        "Tokens by team and type (per second)",
                        "timeseries",
                        [Query(per_second("team, type", tokens), "{{team}} {{type}}")],
                        stack=True,
                    ),
                ],
            ),
            Row(
                "Forecasts and anomalies",
                [
                    Panel(
                        "Month forecast by team (p50)",
                        "bargauge",
                        [
                            Query(
                                f.job(FORECAST, 'scope="team"', 'value=~"$team"', 'bound="p50"'),
                                "{{value}}",
                                True,
                            )
                        ],
                        "currencyUSD",
                        8,
                    ),
                    Panel(
                        "Month forecast by feature (p50)",
                        "bargauge",
                        [
                            Query(
                                f.job(FORECAST, 'scope="feature"', 'value=~"$feature"', 'bound="p50"'),
                                "{{value}}",
                                True,
                            )
                        ],
                        "currencyUSD",
                        8,
                        description="The top features by spend; calls that name no feature are the empty "
                        "value.",
                    ),
                    Panel(
                        "Open anomalies of teams and features: impact (USD)",
                        "table",
                        [Query(f.job("costspan_anomaly_open", 'scope=~"team|feature"'), "impact", True)],
                        "currencyUSD",
                        8,
                        description="Observed minus expected spend since each anomaly began "
                        "(costspan anomalies).",
                    ),
                ],
            ),
        ],
    )


def models() -> Board:
    f = Filters(("job", "environment", "provider", "model"))
    cost, calls, tokens = f.cost(COST), f.cost(CALLS), f.cost(TOKENS)
    unpriced = f.cost(CALLS, UNPRICED)
    return Board(
        uid="costspan-models",
        title="costspan / Models and providers",
        description="Spend, calls and tokens by provider and model, cache reuse, and the models costspan "
        "could not price.",
        variables=f.variables,
        rows=[
            Row(
                "Spend",
                [
                    Panel(
                        "Spend by model (USD/hour)",
                        "timeseries",
                        [Query(per_hour("provider, model", cost), "{{provider}} {{model}}")],
                    ),
                    Panel(
                        "Spend by provider (USD/hour)",
                        "timeseries",
                        [Query(per_hour("provider", cost), "{{provider}}")],
                    ),
                    Panel(
                        "Models in range (USD)",
                        "table",
                        [Query(in_range("provider, model", cost), "spent", True)],
                        "currencyUSD",
                    ),
                    Panel(
                        "Average cost per priced call, by model (USD)",
                        "table",
                        [
                            Query(
                                f"{in_range('provider, model', cost)} / "
                                f"{in_range('provider, model', f.cost(CALLS, PRICED))}",
                                "per call",
                                instant=True,
                            )
                        ],
                        "currencyUSD",
                        decimals=4,
                    ),
                ],
            ),
            Row(
                "Usage",
                [
                    Panel(
                        "Calls by model (per second)",
                        "timeseries",
                        [Query(per_second("provider, model", calls), "{{provider}} {{model}}")],
                        "reqps",
                    ),
                    Panel(
                        "Tokens by type (per second)",
                        "timeseries",
                        [Query(per_second("type", tokens), "{{type}}")],
                        stack=True,
                    ),
                    Panel(
                        "Cache reads as a share of input tokens, by model",
                        "timeseries",
                        [
                            Query(
                                per_second("provider, model", f.cost(TOKENS, 'type="cache_read"'))
                                + " / "
                                + per_second("provider, model", f.cost(TOKENS, 'type="input"')),
                                "{{provider}} {{model}}",
                            )
                        ],
                        "percentunit",
                    ),
                    Panel(
                        "Calls by pricing status (per second)",
                        "timeseries",
                        [Query(per_second("status", calls), "{{status}}")],
                        "reqps",
                    ),
                    Panel(
                        "Unpriced models in range (calls)",
                        "table",
                        [Query(f"{in_range('provider, model, service', unpriced)} > 0", "calls", True)],
                        width=24,
                        description="Calls of models the price catalog does not know: stored and flagged, "
                        "with no cost. Add the model's price (costspan pricing) and reprice.",
                    ),
                ],
            ),
        ],
    )


def budgets() -> Board:
    f = Filters(("job", "budget"))

    def level(metric: str, *extra: str) -> str:
        return f.job(metric, 'budget=~"$budget"', *extra)

    return Board(
        uid="costspan-budgets",
        title="costspan / Budgets and burn rate",
        description="Each budget's spend against its amount, its burn rate and projection; the month's "
        "forecast; open anomalies; and the delivery of notifications.",
        variables=f.variables,
        rows=[
            Row(
                "Budgets",
                [
                    Panel(
                        "Used (spent / amount)",
                        "bargauge",
                        [Query(level("costspan_budget_used_ratio"), "{{budget}}", True)],
                        "percentunit",
                        8,
                        thresholds=[(0.8, "orange"), (1, "red")],
                    ),
                    Panel(
                        "Spent, amount and projection (USD)",
                        "table",
                        [
                            Query(level("costspan_budget_spent_usd"), "spent", True),
                            Query(level("costspan_budget_limit_usd"), "amount", True),
                            Query(level("costspan_budget_remaining_usd"), "remaining", True),
                            Query(level("costspan_budget_projected_usd"), "projected", True),
                            Query(level("costspan_budget_forecast_usd", 'bound="p50"'), "forecast", True),
                        ],
                        "currencyUSD",
                        16,
                        description="Projected: the spend at the period's end at the recent rate (absent "
                        "until there is enough history). Forecast: spent plus the forecast rest of the "
                        "period from the scope's daily series (p50; absent for a rolling budget).",
                    ),
                    Panel(
                        "Spent against amount (USD)",
                        "timeseries",
                        [
                            Query(level("costspan_budget_spent_usd"), "{{budget}} spent"),
                            Query(level("costspan_budget_limit_usd"), "{{budget}} amount"),
                            Query(level("costspan_budget_projected_usd"), "{{budget}} projected"),
                        ],
                        "currencyUSD",
                    ),
                    Panel(
                        "Burn rate by window (1: spends exactly the amount in the period)",
                        "timeseries",
                        [Query(level("costspan_budget_burn_rate"), "{{budget}} {{window}}")],
                        thresholds=[(1, "orange"), (2, "red")],
                    ),
                    Panel(
                        "Time left in the period",
                        "stat",
                        [
                            Query(
                                f"{level('costspan_budget_period_end_timestamp_seconds')} - time()",
                                "{{budget}}",
                                True,
                            )
                        ],
                        "s",
                        12,
                        5,
                    ),
                    Panel(
                        "Unpriced calls in the period",
                        "stat",
                        [Query(level("costspan_budget_unpriced_calls"), "{{budget}}", True)],
                        "short",
                        12,
                        5,
                        description="Calls in the budget's scope costspan could not price: its spend is "
                        "understated by their cost.",
                        thresholds=[(1, "orange")],
                    ),
                ],
            ),
            Row(
                "Forecast",
                [
                    Panel(
                        "Month forecast, organisation (USD)",
                        "timeseries",
                        [Query(f.job(FORECAST, 'scope="organisation"'), "{{bound}}")],
                        "currencyUSD",
                        description="p50 with the 80% and 95% intervals (lo80 to hi80, lo95 to hi95).",
                    ),
                    Panel(
                        "Budgets' forecast at the period's end (USD)",
                        "timeseries",
                        [Query(level("costspan_budget_forecast_usd"), "{{budget}} {{bound}}")],
                        "currencyUSD",
                        description="Each budget's spend so far plus the forecast rest of its period, p50 "
                        "with the 80% and 95% intervals.",
                    ),
                    Panel(
                        "Month forecast by team (p50)",
                        "bargauge",
                        [Query(f.job(FORECAST, 'scope="team"', 'bound="p50"'), "{{value}}", True)],
                        "currencyUSD",
                    ),
                ],
            ),
            Row(
                "Anomalies",
                [
                    Panel(
                        "Open anomalies by kind",
                        "bargauge",
                        [Query(f.job("costspan_anomalies_open"), "{{kind}}", True)],
                        "short",
                        8,
                    ),
                    Panel(
                        "Open anomalies: impact (USD)",
                        "table",
                        [Query(f.job("costspan_anomaly_open"), "impact", True)],
                        "currencyUSD",
                        16,
                    ),
                ],
            ),
            Row(
                "Notifications",
                [
                    Panel(
                        "Notification attempts by target and outcome (per second)",
                        "timeseries",
                        [
                            Query(
                                per_second("target, outcome", f.job("costspan_notifications_total")),
                                "{{target}} {{outcome}}",
                            )
                        ],
                    ),
                    Panel(
                        "Events waiting in each outbox",
                        "timeseries",
                        [Query(f.job("costspan_notifications_outbox_events"), "{{target}}")],
                    ),
                ],
            ),
        ],
    )


def collector() -> Board:
    f = Filters(("job",))
    c = "costspan_collector_"
    return Board(
        uid="costspan-collector",
        title="costspan / Collector health",
        description="The collector's own health: scrape, spans in and out, refusals, the write-ahead log, "
        "exporters, pipeline workers, the data directory's disk and the answers' jobs.",
        variables=f.variables,
        time_from="now-6h",
        rows=[
            Row(
                "Pipeline",
                [
                    Panel(
                        "Scrape up", "stat", [Query(f.job("up"), "{{instance}}", True)], "bool_yes_no", 6, 4
                    ),
                    Panel(
                        "Pipeline workers alive",
                        "stat",
                        [Query(f.job(c + "pipeline_workers"), "{{instance}}", True)],
                        "short",
                        6,
                        4,
                    ),
                    Panel(
                        "Data directory free",
                        "stat",
                        [
                            Query(
                                f"{f.job(c + 'data_dir_free_bytes')} / {f.job(c + 'data_dir_size_bytes')}",
                                "{{instance}}",
                                True,
                            )
                        ],
                        "percentunit",
                        6,
                        4,
                        thresholds=[(0, "red"), (0.1, "orange"), (0.25, "green")],
                    ),
                    Panel(
                        "Worker restarts in range",
                        "stat",
                        [
                            Query(
                                in_range("instance", f.job(c + "pipeline_worker_restarts_total")),
                                "{{instance}}",
                                True,
                            )
                        ],
                        "short",
                        6,
                        4,
                        thresholds=[(1, "orange")],
                    ),
                    Panel(
                        "Spans received, written, rejected and unreadable (per second)",
                        "timeseries",
                        [
                            Query(
                                per_second("instance", f.job(c + name + "_total")),
                                name.removeprefix("spans_"),
                            )
                            for name in (
                                "spans_received",
                                "spans_written",
                                "spans_rejected",
                                "spans_unreadable",
                            )
                        ],
                    ),
                    Panel(
                        "Requests refused, by reason (per second)",
                        "timeseries",
                        [
                            Query(
                                per_second("instance, reason", f.job(c + "requests_refused_total")),
                                "{{reason}}",
                            )
                        ],
                        "reqps",
                    ),
                    Panel(
                        "Write-ahead log and memory held",
                        "timeseries",
                        [
                            Query(f.job(c + "wal_pending_bytes"), "unprocessed"),
                            Query(f.job(c + "wal_disk_bytes"), "on disk"),
                            Query(f.job(c + "in_flight_bytes"), "in flight"),
                        ],
                        "bytes",
                    ),
                    Panel(
                        "Data directory's file system",
                        "timeseries",
                        [
                            Query(f.job(c + "data_dir_free_bytes"), "free"),
                            Query(f.job(c + "data_dir_size_bytes"), "size"),
                        ],
                        "bytes",
                    ),
                ],
            ),
            Row(
                "Exporters",
                [
                    Panel(
                        "Sent spans by exporter (per second)",
                        "timeseries",
                        [
                            Query(
                                per_second("exporter", f.job(c + "exporter_sent_spans_total")), "{{exporter}}"
                            )
                        ],
                    ),
                    Panel(
                        "Waiting to be exported",
                        "timeseries",
                        [
                            Query(
                                f"sum by (exporter) ({f.job(c + 'exporter_queue_bytes')})",
                                "{{exporter}} bytes",
                            ),
                            Query(
                                f"sum by (exporter) ({f.job(c + 'exporter_queue_records')})",
                                "{{exporter}} records",
                            ),
                        ],
                    ),
                    Panel(
                        "Exporter errors and drops (per second)",
                        "timeseries",
                        [
                            Query(
                                per_second("exporter, kind", f.job(c + "exporter_errors_total")),
                                "{{exporter}} {{kind}} errors",
                            ),
                            Query(
                                per_second("exporter, reason", f.job(c + "exporter_dropped_spans_total")),
                                "{{exporter}} dropped: {{reason}}",
                            ),
                        ],
                    ),
                    Panel(
                        "Export lag (oldest record not yet exported)",
                        "timeseries",
                        [Query(f"max by (exporter) ({f.job(c + 'export_lag_seconds')})", "{{exporter}}")],
                        "s",
                    ),
                ],
            ),
            Row(
                "Answers",
                [
                    Panel(
                        "Answer job runs by outcome (per second)",
                        "timeseries",
                        [
                            Query(
                                per_second("answer_job, outcome", f.job(c + "answer_runs_total")),
                                "{{answer_job}} {{outcome}}",
                            )
                        ],
                        description="Budgets, forecasts and anomalies are kept by jobs of the collector; a "
                        "job that fails runs again at its next turn.",
                    ),
                    Panel(
                        "Since each answer job last succeeded",
                        "timeseries",
                        [
                            Query(
                                f"time() - {f.job(c + 'answer_last_success_timestamp_seconds')}",
                                "{{answer_job}}",
                            )
                        ],
                        "s",
                    ),
                ],
            ),
        ],
    )


BOARDS: dict[str, Callable[[], Board]] = {
    "overview": overview,
    "teams-and-features": teams,
    "models-and-providers": models,
    "budgets-and-burn-rate": budgets,
    "collector-health": collector,
}


# --- from the description to the SDK's builders ----------------------------------------------------------


def _variable(name: str) -> Builder[model.VariableModel]:
    if name == "job":
        return (
            dashboard.QueryVariable("job")
            .label("Job")
            .datasource(DATASOURCE)
            .query("label_values(up, job)")
            .refresh(model.VariableRefresh.ON_DASHBOARD_LOAD)
            .regex("/costspan.*/")
            .current(model.VariableOption(selected=True, text="costspan", value="costspan"))
        )
    # every call counts in llm_calls, priced or not: an unpriced model is a value to pick too
    metric = "costspan_budget_limit_usd" if name == "budget" else CALLS
    matchers = [JOB]
    if name == "feature":  # a team's features when a team is picked
        matchers.append('team=~"$team"')
    return (
        dashboard.QueryVariable(name)
        .label(name.capitalize())
        .datasource(DATASOURCE)
        .query(f"label_values({metric}{{{','.join(matchers)}}}, {name})")
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .current(model.VariableOption(selected=True, text=["All"], value=["$__all"]))
    )


def _thresholds(steps: Sequence[tuple[float, str]]) -> dashboard.ThresholdsConfig:
    base = [model.Threshold(value=None, color="green")]
    return (
        dashboard.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps(base + [model.Threshold(value=v, color=c) for v, c in steps])
    )


def _ref(number: int) -> str:
    return chr(ord("A") + number)


def _legend(placement: common.LegendPlacement) -> common_builders.VizLegendOptions:
    return (
        common_builders.VizLegendOptions()
        .display_mode(common.LegendDisplayMode.LIST)
        .placement(placement)
        .show_legend(True)
    )


def _panel(spec: Panel, panel_id: int) -> Builder[model.Panel]:
    builders: dict[str, Callable[[], Any]] = {
        "stat": stat.Panel,
        "timeseries": timeseries.Panel,
        "bargauge": bargauge.Panel,
        "table": table.Panel,
        "piechart": piechart.Panel,
    }
    panel = (
        builders[spec.kind]()
        .id(panel_id)
        .title(spec.title)
        .datasource(DATASOURCE)
        .unit(spec.unit)
        .span(spec.width)
        .height(spec.height or (4 if spec.kind == "stat" else 8))
    )
    if spec.description:
        panel = panel.description(spec.description)
    if spec.decimals is not None:
        panel = panel.decimals(spec.decimals)
    if spec.thresholds:
        panel = panel.thresholds(_thresholds(spec.thresholds))
    last = common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False)
    if spec.kind == "stat":
        panel = (
            panel.reduce_options(last)
            .graph_mode(common.BigValueGraphMode.NONE)
            .color_mode(common.BigValueColorMode.VALUE)
            .text_mode(common.BigValueTextMode.AUTO)
        )
    elif spec.kind == "bargauge":
        panel = (
            panel.reduce_options(last)
            .display_mode(common.BarGaugeDisplayMode.GRADIENT)
            .orientation(common.VizOrientation.HORIZONTAL)
        )
    elif spec.kind == "piechart":
        panel = panel.reduce_options(last).legend(_legend(common.LegendPlacement.RIGHT))
    elif spec.kind == "timeseries":
        panel = panel.fill_opacity(10).line_width(1).legend(_legend(common.LegendPlacement.BOTTOM))
        if spec.stack:
            panel = panel.stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
    elif spec.kind == "table":
        # instant queries as one table: a row per series, the labels as columns, each query's value a
        # column named by its legend (Grafana names them "Value", or "Value #A", "Value #B" ... when merged)
        values = {
            ("Value" if len(spec.queries) == 1 else f"Value #{_ref(n)}"): q.legend
            for n, q in enumerate(spec.queries)
            if q.legend
        }
        panel = (
            panel.show_header(True)
            .with_transformation(model.DataTransformerConfig(id_val="merge", options={}))
            .with_transformation(
                model.DataTransformerConfig(
                    id_val="organize",
                    options={"excludeByName": dict.fromkeys(TABLE_HIDDEN, True), "renameByName": values},
                )
            )
        )
    for number, query in enumerate(spec.queries):
        target = prometheus.Dataquery().expr(query.expr).ref_id(_ref(number)).datasource(DATASOURCE)
        if query.legend:
            target = target.legend_format(query.legend)
        if query.instant:
            target = target.instant()
            if spec.kind == "table":
                target = target.format(PromQueryFormat.TABLE)
        else:
            target = target.range()
        panel = panel.with_target(target)
    return panel


def build(board: Board) -> dict[str, Any]:
    builder = (
        dashboard.Dashboard(board.title)
        .uid(board.uid)
        .description(board.description)
        .tags([TAG])
        .editable()
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .time(board.time_from, "now")
        .timezone("browser")
        .refresh("1m")
        .link(
            dashboard.DashboardLink("costspan")
            .type(model.DashboardLinkType.DASHBOARDS)
            .tags([TAG])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
        .with_variable(dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus"))
    )
    for name in board.variables:
        builder = builder.with_variable(_variable(name))
    panel_id = 0
    for row in board.rows:
        panel_id += 1
        builder = builder.with_row(dashboard.Row(row.title).id(panel_id))
        for spec in row.panels:
            panel_id += 1
            builder = builder.with_panel(_panel(spec, panel_id))
    return json.loads(JSONEncoder(sort_keys=True).encode(builder.build()))


def render() -> dict[str, str]:
    """Each dashboard's file name and its JSON text, as committed."""
    return {
        f"{name}.json": json.dumps(build(board()), indent=2, sort_keys=True) + "\n"
        for name, board in BOARDS.items()
    }


def main(argv: Sequence[str]) -> int:
    files = render()
    if "--check" in argv:
        stale = [
            name
            for name, text in files.items()
            if not (OUT / name).is_file() or (OUT / name).read_text() != text
        ]
        extra = sorted(p.name for p in OUT.glob("*.json") if p.name not in files)
        for name in [*stale, *extra]:
            print(f"deploy/grafana/dashboards/{name} is out of date: run python deploy/grafana/generate.py")
        return 1 if stale or extra else 0
    OUT.mkdir(exist_ok=True)
    for name, text in files.items():
        (OUT / name).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
