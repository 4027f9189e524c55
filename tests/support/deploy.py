"""The files under deploy/ and what tests read from them: the rules' path, the Grafana dashboards' panels
and PromQL expressions, made concrete the way Grafana sends them, and their generator."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus"
DASHBOARDS = DEPLOY / "grafana" / "dashboards"
GENERATOR = DEPLOY / "grafana" / "generate.py"

# Grafana's own interval variables, replaced by a duration PromQL accepts
GRAFANA_INTERVALS = re.compile(r"\$__(rate_interval|range|interval)\b")
VARIABLE = re.compile(r"\$\{?(\w+)\}?")


def load_dashboard(name: str = "overview") -> dict[str, Any]:
    return json.loads((DASHBOARDS / f"{name}.json").read_text())


def load_dashboards() -> dict[str, dict[str, Any]]:
    """Every committed dashboard, by file name without ``.json``."""
    return {path.stem: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def generator(path: Path = GENERATOR) -> ModuleType:
    """A dashboards' generator (deploy/grafana/generate.py by default), imported: it is a script beside the
    files it writes, not a package."""
    spec = importlib.util.spec_from_file_location(f"costspan_{path.parent.name}_generate", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it runs
    spec.loader.exec_module(module)
    return module


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
