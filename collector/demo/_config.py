"""The configuration the demo's collector runs with, written into its data directory.

The amounts are set against the demo company's spend (about 1.50 USD a day in all, half of it search's RAG
answers), so that the search team's rolling week is over its budget and has crossed every threshold, while
the organisation's month is on course; and the smallest anomaly reported is scaled the same way (the
default, 1 USD, is a larger company's). The backfill sends weeks of history in a minute or two, so
compaction runs every few seconds instead of every five minutes: the report and the queries that follow
read one file a day instead of a file per flush.
"""

from __future__ import annotations

from pathlib import Path

from costspan.collector.answers.anomalies import AnomalySettings

CONFIG = """\
# costspan demo's collector: budgets evaluated every 2 seconds (the default is a minute)
budgets:
  interval: 2s
  items:
    - {name: org, amount: 80, period: month}
    - {name: payments, scope: {team: payments}, amount: 12, period: month}
    - {name: search-7d, scope: {team: search}, amount: 2, period: {rolling: 7d}}
    - {name: support-daily, scope: {team: support}, amount: 2.50, period: day}
# anomalies of 0.25 USD or more (a sixth of the company's day), scanned every 30 seconds
anomalies:
  interval: 30s
  min_impact_usd: 0.25
  min_calls: 10
exporters:
  parquet: {compaction_interval_s: 5}
"""
FILE = "costspan-demo.yaml"


def write_config(data_dir: Path) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / FILE
    path.write_text(CONFIG)
    return path


def anomaly_settings(path: Path) -> AnomalySettings:
    """The anomaly settings of the demo's configuration, as its collector reads them."""
    from costspan.collector.config import load_config

    return load_config(path).anomalies
