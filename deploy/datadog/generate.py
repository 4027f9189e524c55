"""costspan's Datadog dashboard, written to ``costspan-dashboard.json`` from the description below.

    python deploy/datadog/generate.py            # (re)write the committed JSON
    python deploy/datadog/generate.py --check    # exit 1 when the committed JSON differs

It reads the metrics as ``openmetrics.d/conf.yaml`` has the Agent submit them: a counter as
``costspan.<name>.count`` (a monotonic count: ``.as_count()`` sums it over an interval, ``.as_rate()`` is per
second), a gauge under ``costspan.<name>``; tags are the collector's labels, ``service`` as ``service_name``
and the answers' ``job`` as ``answer_job``. The JSON is the body of Datadog's dashboard API (v1) with the
ordered layout, the form its "Import dashboard JSON" takes.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "costspan-dashboard.json"
VARIABLES = ("environment", "team", "feature", "service_name", "provider", "model", "budget")
# the cost metrics' template variables; the budget, forecast, anomaly and health metrics have other tags
COST_SCOPE = "$environment,$team,$feature,$service_name,$provider,$model"
COST = "costspan.cost_usd.count"
CALLS = "costspan.llm_calls.count"
TOKENS = "costspan.tokens.count"
Widget = dict[str, Any]


def query(name: str, text: str, aggregator: str | None = None) -> dict[str, str]:
    found = {"data_source": "metrics", "name": name, "query": text}
    if aggregator:
        found["aggregator"] = aggregator
    return found


def cost(metric: str, by: str = "", extra: str = "", as_: str = "as_count") -> str:
    scope = COST_SCOPE + (f",{extra}" if extra else "")
    grouping = f" by {{{by}}}" if by else ""
    return f"sum:{metric}{{{scope}}}{grouping}.{as_}()"


def title(kind: str, text: str) -> Widget:
    return {"type": kind, "title": text, "title_size": "16", "title_align": "left"}


def value(text: str, q: str, unit: str | None = None, precision: int = 2, aggregator: str = "sum") -> Widget:
    definition = title("query_value", text) | {
        "precision": precision,
        "autoscale": True,
        "requests": [
            {
                "response_format": "scalar",
                "queries": [query("q1", q, aggregator)],
                "formulas": [{"formula": "q1"}],
            }
        ],
    }
    if unit:
        definition["custom_unit"] = unit
    return {"definition": definition}


def series(text: str, queries: Sequence[str], formulas: Sequence[str] = (), display: str = "line") -> Widget:
    named = [query(f"q{n}", q) for n, q in enumerate(queries, 1)]
    return {
        "definition": title("timeseries", text)
        | {
            "show_legend": True,
            "legend_layout": "auto",
            "legend_columns": ["avg", "max", "value"],
            "requests": [
                {
                    "response_format": "timeseries",
                    "queries": named,
                    "formulas": [{"formula": f} for f in formulas or [q["name"] for q in named]],
                    "display_type": display,
                }
            ],
        }
    }


def toplist(text: str, q: str, aggregator: str = "sum") -> Widget:
    return {
        "definition": title("toplist", text)
        | {
            "requests": [
                {
                    "response_format": "scalar",
                    "queries": [query("q1", q, aggregator)],
                    "formulas": [{"formula": "q1", "limit": {"count": 10, "order": "desc"}}],
                }
            ]
        }
    }


def group(text: str, widgets: Sequence[Widget]) -> Widget:
    return {
        "definition": {
            "type": "group",
            "title": text,
            "layout_type": "ordered",
            "show_title": True,
            "widgets": list(widgets),
        }
    }


def budget(metric: str, by: str = "budget", reducer: str = "max") -> str:
    return f"{reducer}:costspan.budget.{metric}{{$budget}} by {{{by}}}"


def health(metric: str, by: str = "", reducer: str = "max", as_: str = "") -> str:
    grouping = f" by {{{by}}}" if by else ""
    return f"{reducer}:costspan.collector.{metric}{{*}}{grouping}" + (f".{as_}()" if as_ else "")


def dashboard() -> dict[str, Any]:
    per_hour = ["q1 * 3600"]
    unpriced = "status:unknown_model"
    return {
        "title": "costspan: LLM cost",
        "description": "LLM spend, usage, budgets, forecasts, anomalies and the collector's health, from "
        "costspan's /metrics through the Agent's OpenMetrics check (deploy/datadog/openmetrics.d/conf.yaml).",
        "layout_type": "ordered",
        "reflow_type": "auto",
        "template_variables": [
            {"name": n, "prefix": n, "available_values": [], "default": "*"} for n in VARIABLES
        ],
        "widgets": [
            group(
                "Spend",
                [
                    value("Spend (USD)", cost(COST), unit="USD"),
                    value("LLM calls", cost(CALLS), precision=0),
                    value("Unpriced calls", cost(CALLS, extra=unpriced), precision=0),
                    value(
                        "Month forecast, p50 (USD)",
                        "max:costspan.forecast.period_spend_usd{scope:organisation,bound:p50}",
                        unit="USD",
                        aggregator="last",
                    ),
                    series("Spend by team (USD/hour)", [cost(COST, "team", as_="as_rate")], per_hour, "bars"),
                    series(
                        "Spend by feature (USD/hour)",
                        [cost(COST, "team,feature", as_="as_rate")],
                        per_hour,
                        "bars",
                    ),
                    series(
                        "Spend by model (USD/hour)", [cost(COST, "provider,model", as_="as_rate")], per_hour
                    ),
                    series(
                        "Spend by service and environment (USD/hour)",
                        [cost(COST, "service_name,environment", as_="as_rate")],
                        per_hour,
                    ),
                    toplist("Top features (USD)", cost(COST, "team,feature")),
                    toplist("Top models (USD)", cost(COST, "provider,model")),
                ],
            ),
            group(
                "Usage",
                [
                    series(
                        "Tokens by type (per second)", [cost(TOKENS, "type", as_="as_rate")], display="area"
                    ),
                    series(
                        "Cache reads as a share of input tokens",
                        [
                            cost(TOKENS, extra="type:cache_read", as_="as_rate"),
                            cost(TOKENS, extra="type:input", as_="as_rate"),
                        ],
                        ["q1 / q2"],
                    ),
                    series(
                        "Calls by pricing status (per second)",
                        [cost(CALLS, "status", as_="as_rate")],
                        display="bars",
                    ),
                    toplist("Unpriced models (calls)", cost(CALLS, "provider,model", extra=unpriced)),
                ],
            ),
            group(
                "Budgets and forecast",
                [
                    toplist("Budget used (spent / amount)", budget("used_ratio"), aggregator="last"),
                    series(
                        "Spent against amount (USD)",
                        [budget("spent_usd"), budget("limit_usd"), budget("projected_usd")],
                    ),
                    series(
                        "Burn rate by window (1: spends the amount in exactly the period)",
                        [budget("burn_rate", "budget,window")],
                    ),
                    toplist("Remaining (USD)", budget("remaining_usd", reducer="min"), aggregator="last"),
                    toplist(
                        "Forecast at the period's end, p50 (USD)",
                        "max:costspan.budget.forecast_usd{$budget,bound:p50} by {budget}",
                        aggregator="last",
                    ),
                    toplist("Unpriced calls in the period", budget("unpriced_calls"), aggregator="last"),
                    series(
                        "Month forecast, organisation (USD)",
                        ["max:costspan.forecast.period_spend_usd{scope:organisation} by {bound}"],
                    ),
                    toplist(
                        "Month forecast by team, p50 (USD)",
                        "max:costspan.forecast.period_spend_usd{scope:team,bound:p50} by {value}",
                        aggregator="last",
                    ),
                ],
            ),
            group(
                "Anomalies and notifications",
                [
                    toplist(
                        "Open anomalies by kind",
                        "max:costspan.anomalies.open{*} by {kind}",
                        aggregator="last",
                    ),
                    toplist(
                        "Open anomalies: impact (USD)",
                        "max:costspan.anomaly.open_impact_usd{*} by {kind,scope,value}",
                        aggregator="last",
                    ),
                    series(
                        "Notification attempts by target and outcome",
                        ["sum:costspan.notifications.count{*} by {target,outcome}.as_count()"],
                        display="bars",
                    ),
                    series(
                        "Events waiting in each outbox",
                        ["max:costspan.notifications.outbox_events{*} by {target}"],
                    ),
                ],
            ),
            group(
                "Collector health",
                [
                    series(
                        "Spans received, written, rejected and unreadable (per second)",
                        [
                            health(f"{name}.count", reducer="sum", as_="as_rate")
                            for name in (
                                "spans_received",
                                "spans_written",
                                "spans_rejected",
                                "spans_unreadable",
                            )
                        ],
                    ),
                    series(
                        "Requests refused, by reason (per second)",
                        [health("requests_refused.count", "reason", "sum", "as_rate")],
                        display="bars",
                    ),
                    series(
                        "Write-ahead log and memory held (bytes)",
                        [health("wal_pending_bytes"), health("wal_disk_bytes"), health("in_flight_bytes")],
                    ),
                    series(
                        "Data directory free (share)",
                        [health("data_dir_free_bytes", reducer="min"), health("data_dir_size_bytes")],
                        ["q1 / q2"],
                    ),
                    series(
                        "Waiting to be exported",
                        [
                            health("exporter_queue_bytes", "exporter"),
                            health("exporter_queue_records", "exporter"),
                        ],
                    ),
                    series(
                        "Sent spans by exporter (per second)",
                        [health("exporter_sent_spans.count", "exporter", "sum", "as_rate")],
                    ),
                    series(
                        "Exporter errors and drops",
                        [
                            health("exporter_errors.count", "exporter,kind", "sum", "as_count"),
                            health("exporter_dropped_spans.count", "exporter,reason", "sum", "as_count"),
                        ],
                        display="bars",
                    ),
                    series("Export lag (seconds)", [health("export_lag_seconds", "exporter")]),
                    series(
                        "Pipeline workers alive, and restarts",
                        [
                            health("pipeline_workers", reducer="min"),
                            health("pipeline_worker_restarts.count", reducer="sum", as_="as_count"),
                        ],
                    ),
                    series(
                        "Answer job runs by outcome",
                        [health("answer_runs.count", "answer_job,outcome", "sum", "as_count")],
                        display="bars",
                    ),
                ],
            ),
        ],
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"


def main(argv: Sequence[str]) -> int:
    text = render()
    if "--check" in argv:
        if not OUT.is_file() or OUT.read_text() != text:
            print(f"deploy/datadog/{OUT.name} is out of date: run python deploy/datadog/generate.py")
            return 1
        return 0
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
