"""deploy/datadog: the OpenMetrics check configuration is one the Agent's check accepts, in latest (V2) mode,
with a name and a type for each metric; the dashboard is what its generator makes, a valid Datadog dashboard
(read by Datadog's own API client models) whose queries read only metrics the check submits and template
variables it defines. (The check run against a real collector: test_dashboards_e2e.py.)"""

from __future__ import annotations

import json
import re

import pytest
import yaml
from datadog_api_client import ApiClient, Configuration
from datadog_api_client.v1.model.dashboard import Dashboard
from datadog_checks.base import OpenMetricsBaseCheckV2

from tests.support.deploy import DEPLOY, generator

DATADOG = DEPLOY / "datadog"
QUERY = re.compile(r"\b(?:sum|max|min|avg):([\w.]+)\{([^}]*)\}")


@pytest.fixture(scope="module")
def instance() -> dict:
    conf = yaml.safe_load((DATADOG / "openmetrics.d" / "conf.yaml").read_text())
    assert set(conf) == {"init_config", "instances"}
    [instance] = conf["instances"]
    return instance


@pytest.fixture(scope="module")
def dashboard_text() -> str:
    return (DATADOG / "costspan-dashboard.json").read_text()


def submitted_names(instance: dict) -> set[str]:
    names = set()
    for entry in instance["metrics"]:
        [(_, mapping)] = entry.items()
        suffix = ".count" if mapping["type"] == "counter" else ""
        names.add(f"{instance['namespace']}.{mapping['name']}{suffix}")
    return names


def test_the_configuration_is_latest_mode_with_a_name_and_type_for_each_metric(instance):
    assert instance["openmetrics_endpoint"] == "http://127.0.0.1:9464/metrics"  # the admin port's default
    assert "prometheus_url" not in instance  # the legacy mode's key
    assert instance["namespace"] == "costspan"
    keys = [key for entry in instance["metrics"] for key in entry]
    assert len(keys) == len(set(keys))
    for entry in instance["metrics"]:
        [(key, mapping)] = entry.items()
        assert key.startswith("costspan_") and not key.endswith("_total"), key
        assert set(mapping) == {"name", "type"} and mapping["type"] in {"counter", "gauge"}, key
        assert re.fullmatch(r"[a-z_]+(\.[a-z_]+)*", mapping["name"]), mapping["name"]


def test_the_agents_check_accepts_the_configuration(instance):
    check = OpenMetricsBaseCheckV2("openmetrics", {}, [dict(instance)])
    scraper = check.create_scraper(check.get_config_with_defaults(dict(instance)))
    assert scraper.namespace == "costspan"
    assert scraper.rename_labels == {"service": "service_name"}
    for entry in instance["metrics"]:
        [key] = entry
        assert key in scraper.metric_transformer.transformer_data, key


def test_the_committed_dashboard_is_what_the_generator_makes(dashboard_text, tmp_path, monkeypatch):
    module = generator(DATADOG / "generate.py")
    assert module.render() == dashboard_text, "run deploy/datadog/generate.py"
    monkeypatch.setattr(module, "OUT", tmp_path / "dashboard.json")
    assert module.main([]) == 0 and module.main(["--check"]) == 0
    module.OUT.write_text(dashboard_text.replace("Spend by team", "Spend"))
    assert module.main(["--check"]) == 1


def test_the_dashboard_is_a_valid_datadog_dashboard(dashboard_text):
    dashboard = ApiClient(Configuration()).deserialize(dashboard_text, (Dashboard,), True)
    assert dashboard._unparsed is False  # a widget or request the API's models do not know is left unparsed
    assert dashboard.layout_type.value == "ordered"
    # the same check finds a mistake: a display type the API does not have
    broken = dashboard_text.replace('"display_type": "line"', '"display_type": "lines"', 1)
    assert broken != dashboard_text
    assert ApiClient(Configuration()).deserialize(broken, (Dashboard,), True)._unparsed is True


def test_the_dashboard_reads_only_metrics_the_check_submits(instance, dashboard_text):
    queries = QUERY.findall(dashboard_text)
    assert len(queries) >= 40
    used = {metric for metric, _ in queries}
    assert used <= submitted_names(instance), used - submitted_names(instance)
    defined = {v["name"] for v in json.loads(dashboard_text)["template_variables"]}
    for _, scope in queries:
        assert set(re.findall(r"\$(\w+)", scope)) <= defined, scope
