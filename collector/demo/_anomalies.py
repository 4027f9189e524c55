"""The report's anomalies section: the scan ``costspan anomalies`` runs, over the last week, with the demo
collector's settings, the largest anomalies first, each with its explanation."""

from __future__ import annotations

import textwrap
from datetime import datetime
from pathlib import Path
from typing import TextIO

from costspan.collector.answers.anomalies import Anomaly, AnomalySettings, scan

from ._report import money

SHOWN = 3
WEEK_HOURS = 7 * 24


def largest(data_dir: Path, settings: AnomalySettings, now: datetime) -> tuple[list[Anomaly], bool]:
    """The :data:`SHOWN` largest anomalies of the week before ``now``, and whether there was a baseline."""
    from costspan.exporters.duckdb_views import read_views

    result = read_views(
        data_dir, lambda con: scan(con, now, settings, scan_hours=WEEK_HOURS, explain_top=SHOWN)
    )
    ranked = sorted(result.anomalies, key=lambda a: a.impact_usd, reverse=True)
    return ranked[:SHOWN], result.enough_data


def print_anomalies(data_dir: Path, settings: AnomalySettings, now: datetime, out: TextIO) -> None:
    shown, enough = largest(data_dir, settings, now)
    print(
        f"\nAnomalies, last 7 days, largest first (costspan anomalies --min-impact {settings.min_impact_usd};"
        " the collector keeps them in the anomalies view)",
        file=out,
    )
    if not enough:
        print("  not enough data for a baseline yet", file=out)
    elif not shown:
        print(f"  none of {settings.min_impact_usd} USD or more", file=out)
    for a in shown:
        until = f"to {a.end:%Y-%m-%d %H:%M}" if a.end is not None else "still open"
        print(
            f"  {a.scope}: {a.kind.replace('_', ' ')}, {a.grain}, from {a.start:%Y-%m-%d %H:%M} {until}: "
            f"{money(a.observed_usd)} against {money(a.expected_usd)} expected (+{money(a.impact_usd)})",
            file=out,
        )
        for line in textwrap.wrap(a.explanation, width=100):
            print(f"      {line}", file=out)
