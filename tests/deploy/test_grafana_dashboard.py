"""deploy/grafana: the committed dashboards are what the generator makes, the data source is a variable,
every PromQL expression parses in ``promtool``, every metric and label read is one the collector exports,
and the provisioning files point Grafana at them. (Each panel returning data from a real collector:
test_dashboards_e2e.py.)"""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from costspan.exporters.prometheus import LABELS
from tests.support.deploy import (
    DEPLOY,
    GRAFANA_INTERVALS,
    VARIABLE,
    concrete,
    expressions,
    generator,
    load_dashboards,
    panels,
)
from tests.support.prometheus import binary

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
PROVISIONING = DEPLOY / "grafana" / "provisioning"
SETS = {"overview", "teams-and-features", "models-and-providers", "budgets-and-burn-rate", "collector-health"}

# what the collector exports under each name, and the labels of each (collector/health.py,
# exporters/prometheus.py, collector/answers/: budget_job.py, forecast.py, anomalies.py, notify.py, runner.py)
COST = {*LABELS, "type", "status"}
EXPORTED = {
    "costspan_cost_usd_total": COST,
    "costspan_tokens_total": COST,
    "costspan_llm_calls_total": COST,
    "costspan_forecast_period_spend_usd": {"scope", "value", "bound"},
    "costspan_anomaly_open": {"kind", "grain", "scope", "value"},
    "costspan_anomalies_open": {"kind"},
    "costspan_notifications_total": {"target", "outcome"},
    "costspan_notifications_outbox_events": {"target"},
    "costspan_budget_burn_rate": {"budget", "window"},
    "costspan_budget_forecast_usd": {"budget", "bound"},
    "costspan_collector_answer_runs_total": {"answer_job", "outcome"},
    "costspan_collector_answer_last_success_timestamp_seconds": {"answer_job"},
    **{
        f"costspan_budget_{name}": {"budget"}
        for name in (
            "limit_usd",
            "spent_usd",
            "remaining_usd",
            "projected_usd",
            "used_ratio",
            "unpriced_calls",
            "period_end_timestamp_seconds",
        )
    },
    **{
        f"costspan_collector_{name}": {"exporter", "kind", "reason"}
        for name in (
            "spans_received_total",
            "spans_rejected_total",
            "spans_unreadable_total",
            "spans_written_total",
            "requests_refused_total",
            "wal_pending_bytes",
            "wal_disk_bytes",
            "data_dir_free_bytes",
            "data_dir_size_bytes",
            "in_flight_bytes",
            "exporter_queue_bytes",
            "exporter_queue_records",
            "exporter_sent_spans_total",
            "exporter_errors_total",
            "exporter_dropped_spans_total",
            "export_lag_seconds",
            "pipeline_workers",
            "pipeline_worker_restarts_total",
        )
    },
    "up": set(),
}
SCRAPE = {"job", "instance"}


@pytest.fixture(scope="module")
def dashboards() -> dict[str, dict]:
    return load_dashboards()


def test_the_committed_dashboards_are_what_the_generator_makes():
    generated = generator().render()
    committed = {f"{name}.json" for name in load_dashboards()}
    assert set(generated) == committed == {f"{name}.json" for name in SETS}
    for name, text in generated.items():
        assert (DEPLOY / "grafana" / "dashboards" / name).read_text() == text, (
            f"deploy/grafana/dashboards/{name} differs from what deploy/grafana/generate.py makes: run it"
        )


def test_the_check_mode_finds_a_hand_edited_file(tmp_path, monkeypatch):
    module = generator()
    monkeypatch.setattr(module, "OUT", tmp_path)
    assert module.main([]) == 0 and module.main(["--check"]) == 0
    edited = tmp_path / "overview.json"
    edited.write_text(edited.read_text().replace("Spend in range", "Spend"))
    assert module.main(["--check"]) == 1


def test_the_data_source_is_a_variable_and_the_dashboards_link_each_other(dashboards):
    uids = set()
    for name, dashboard in dashboards.items():
        uids.add(dashboard["uid"])
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        assert "costspan" in dashboard["tags"]
        assert dashboard["links"][0]["tags"] == ["costspan"] and dashboard["links"][0]["type"] == "dashboards"
        for panel in panels(dashboard):
            if panel["type"] == "row":
                continue
            assert panel["datasource"] == DATASOURCE, (name, panel["title"])
            assert panel["targets"], (name, panel["title"])
            assert panel["options"], (name, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"] == DATASOURCE, (name, panel["title"])
        for variable in variables.values():
            if variable["type"] == "query":
                assert variable["datasource"] == DATASOURCE, (name, variable["name"])
    assert len(uids) == len(dashboards)


def test_panels_have_unique_ids_fit_the_grid_and_every_variable_is_defined(dashboards):
    for name, dashboard in dashboards.items():
        ids = [panel["id"] for panel in panels(dashboard)]
        assert len(ids) == len(set(ids)), name
        for panel in panels(dashboard):
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24, (name, panel["title"])
        defined = {v["name"] for v in dashboard["templating"]["list"]}
        queries = [v["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
        for expr in [*expressions(dashboard), *queries]:
            used = set(VARIABLE.findall(GRAFANA_INTERVALS.sub("5m", expr)))
            assert used <= defined, (name, expr, used - defined)


def test_every_expression_parses_in_promtool(dashboards, tmp_path):
    rules = [
        {"record": f"costspan_dashboard:expr_{number}", "expr": concrete(expr)}
        for number, expr in enumerate(expr for d in dashboards.values() for expr in expressions(d))
    ]
    assert len(rules) >= 70
    rule_file = tmp_path / "dashboard-rules.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    checked = subprocess.run(
        [binary("promtool"), "check", "rules", str(rule_file)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rules)} rules found" in checked.stdout


def test_every_metric_and_label_read_is_one_the_collector_exports(dashboards):
    read: set[str] = set()
    for name, dashboard in dashboards.items():
        for expr in expressions(dashboard):
            metrics = set(re.findall(r"\b(costspan_\w+|up)\{", expr))
            assert metrics, (name, expr)
            read |= metrics
            known = set.union(SCRAPE, *(EXPORTED[m] for m in metrics if m in EXPORTED))
            for group in re.findall(r"\bby \(([^)]*)\)", expr) + re.findall(r"(\w+)=~?\"", expr):
                assert {label.strip() for label in group.split(",")} <= known, (name, expr)
    assert read <= set(EXPORTED), read - set(EXPORTED)
    assert set(EXPORTED) - read == set(), "exported and shown nowhere"


def test_the_provisioning_files_point_grafana_at_prometheus_and_the_dashboards():
    datasources = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yaml").read_text())
    assert datasources["apiVersion"] == 1
    [source] = datasources["datasources"]
    assert (source["uid"], source["type"], source["url"], source["isDefault"]) == (
        "prometheus",
        "prometheus",
        "http://prometheus:9090",
        True,
    )
    providers = yaml.safe_load((PROVISIONING / "dashboards" / "costspan.yaml").read_text())
    assert providers["apiVersion"] == 1
    [provider] = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
