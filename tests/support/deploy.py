"""The files under deploy/ and what tests read from them: the rules' path, the Grafana dashboard's panels
and PromQL expressions, made concrete the way Grafana sends them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus"
DASHBOARD = DEPLOY / "grafana" / "costspan.json"

# Grafana's own interval variables, replaced by a duration PromQL accepts
GRAFANA_INTERVALS = re.compile(r"\$__(rate_interval|range|interval)\b")
VARIABLE = re.compile(r"\$\{?(\w+)\}?")


def load_dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))  # a collapsed row holds its panels
    return found


def expressions(dashboard: dict[str, Any]) -> list[str]:
    return [target["expr"] for panel in panels(dashboard) for target in panel.get("targets", [])]


def concrete(expr: str) -> str:
    """The expression as Grafana sends it with every variable set to all values and 5-minute intervals."""
    # template variables only ever stand in regex matchers (=~"$team"), where ".*" is "All"
    return VARIABLE.sub(".*", GRAFANA_INTERVALS.sub("5m", expr))
