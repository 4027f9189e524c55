"""deploy/grafana/costspan.json: valid JSON, the data source a variable, every PromQL expression parses in
``promtool``, and every cost metric it reads is one the collector exports."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from costspan.exporters.prometheus import LABELS, CostMetrics
from tests.support.deploy import GRAFANA_INTERVALS, VARIABLE, concrete, expressions, load_dashboard, panels
from tests.support.prometheus import binary

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return load_dashboard()


def test_the_data_source_is_a_variable(dashboard):
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == DATASOURCE, variable["name"]


def test_panels_have_unique_ids_and_every_variable_is_defined(dashboard):
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids))
    defined = {v["name"] for v in dashboard["templating"]["list"]}
    for expr in expressions(dashboard):
        used = set(VARIABLE.findall(GRAFANA_INTERVALS.sub("5m", expr)))
        assert used <= defined, (expr, used - defined)


def test_every_expression_parses_in_promtool(dashboard, tmp_path):
    rules = [
        {"record": f"costspan_dashboard:expr_{number}", "expr": concrete(expr)}
        for number, expr in enumerate(expressions(dashboard))
    ]
    assert len(rules) >= 20
    rule_file = tmp_path / "dashboard-rules.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    checked = subprocess.run(
        [binary("promtool"), "check", "rules", str(rule_file)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rules)} rules found" in checked.stdout


def test_cost_metrics_and_labels_are_the_ones_the_collector_exports(dashboard):
    metrics = CostMetrics()
    labels = ("openai", "gpt-4o", "api", "prod", "payments", "search")
    metrics.cost.labels(*labels).inc(1)
    metrics.tokens.labels(*labels, "input").inc(1)
    metrics.calls.labels(*labels, "priced").inc()
    exported = {sample.name for family in metrics.registry.collect() for sample in family.samples}
    cost_exprs = [expr for expr in expressions(dashboard) if "costspan_collector_" not in expr]
    read = {name for expr in cost_exprs for name in re.findall(r"\bcostspan_\w+", expr)}
    assert read == {"costspan_cost_usd_total", "costspan_tokens_total", "costspan_llm_calls_total"}
    assert read <= exported
    known = {*LABELS, "type", "status", "job", "instance"}
    for expr in cost_exprs:
        for group in re.findall(r"\bby \(([^)]*)\)", expr) + re.findall(r"(\w+)=~?\"", expr):
            assert {label.strip() for label in group.split(",")} <= known, expr
