"""A dashboard's queries as Grafana's Prometheus data source sends them, for tests against a real Prometheus.

Grafana substitutes, before a query leaves it (Grafana docs, "Prometheus template variables" and "Global
variables"; ``$__rate_interval`` as fixed in grafana/grafana#77234):

- ``$__range``: the time range in whole seconds, ``86400s`` for the last 24 hours;
- ``$__interval``: the range over the points a panel asks for, at least the data source's scrape interval;
- ``$__rate_interval``: ``max($__interval + scrape interval, 4 * scrape interval)``;
- a template variable: a value picked alone stays as it is; several values picked, each regex-escaped, are
  joined as ``(a|b)``; "All" is the variable's ``allValue`` (``.*`` here) when it has one.

Regex escaping puts a backslash before each regular-expression metacharacter, written doubled inside the
PromQL string (``gpt-4\\\\.1`` is the regex ``gpt-4\\.1``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MAX_DATA_POINTS = 1000  # a wide panel's points; Grafana asks for about one per pixel
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_RELATIVE = re.compile(r"now-(\d+)([smhdw])")
_META = re.compile(r"([\\^$*+?.()|{}\[\]])")
_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


@dataclass(frozen=True)
class Target:
    dashboard: str
    panel: str
    ref_id: str
    expr: str
    instant: bool


def range_seconds(time_from: str) -> int:
    """The length of a dashboard's relative time range (``now-24h``) in seconds."""
    found = _RELATIVE.fullmatch(time_from)
    assert found, time_from
    return int(found[1]) * _UNITS[found[2]]


def intervals(range_s: int, scrape_s: int) -> dict[str, str]:
    interval = max(scrape_s, round(range_s / MAX_DATA_POINTS))
    return {
        "__range": f"{range_s}s",
        "__range_s": str(range_s),
        "__interval": f"{interval}s",
        "__rate_interval": f"{max(interval + scrape_s, 4 * scrape_s)}s",
    }


def regex_escape(value: str) -> str:
    return _META.sub(r"\\\\\1", value)


def variable_text(variable: Mapping[str, Any], picked: Sequence[str] | None) -> str:
    """What Grafana puts for ``variable``: ``picked`` values, or "All" when ``picked`` is None."""
    if picked is None:
        assert variable.get("includeAll"), variable["name"]
        return variable["allValue"]
    if len(picked) == 1:
        return regex_escape(picked[0]) if variable.get("multi") or variable.get("includeAll") else picked[0]
    assert variable.get("multi"), variable["name"]
    return "(" + "|".join(regex_escape(value) for value in picked) + ")"


def interpolate(expr: str, values: Mapping[str, str]) -> str:
    def value_of(found: re.Match[str]) -> str:
        name = found[1] or found[2]
        assert name in values, f"${name} is not defined: {expr}"
        return values[name]

    return _VARIABLE.sub(value_of, expr)


def targets(name: str, dashboard: Mapping[str, Any]) -> list[Target]:
    found = []
    for panel in dashboard["panels"]:
        for inner in [panel, *panel.get("panels", [])]:
            for target in inner.get("targets", []):
                found.append(
                    Target(name, inner["title"], target["refId"], target["expr"], bool(target.get("instant")))
                )
    return found
