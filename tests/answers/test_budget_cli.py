"""`costspan budgets`: with --config it evaluates now from the stored calls; without, it shows what the
collector last wrote and when; an empty history is 0 spent and "not enough data"."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from costspan.collector.answers.budget_job import BudgetJob
from costspan.collector.answers.budgets import Budget
from costspan.exporters.duckdb_views import connect
from tests.support.stored_calls import call, write_calls

COSTSPAN = Path(sys.executable).with_name("costspan")
CONFIG = """\
budgets:
  - {name: org, amount: 100, period: month, timezone: Europe/Berlin}
  - {name: search, scope: {team: search}, amount: 2, period: {rolling: 24h}}
"""


def budgets(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(COSTSPAN), "budgets", *args], capture_output=True, text=True, timeout=60)


def test_evaluated_now_from_a_configuration(tmp_path):
    now = datetime.now(UTC).replace(tzinfo=None)
    write_calls(
        tmp_path,
        [
            call(now - timedelta(minutes=3), "1.25", team="search"),
            call(now - timedelta(minutes=2), None, team="search", pricing_status="unknown_model"),
            call(now - timedelta(hours=30), "0.5", team="search"),  # outside the rolling day
        ],
    )
    (tmp_path / "costspan.yaml").write_text(CONFIG)
    out = budgets(
        "--config", str(tmp_path / "costspan.yaml"), "--data-dir", str(tmp_path), "--format", "json"
    )
    assert out.returncode == 0, out.stderr
    rows = {r["budget"]: r for r in map(json.loads, out.stdout.splitlines())}
    search = rows["search"]
    assert (search["spent_usd"], search["remaining_usd"], search["percent"]) == ("1.25", "0.75", "62.5")
    assert (search["unpriced_calls"], search["calls"], search["resets_at"]) == (1, 2, None)
    assert search["burn_1h_usd_per_hour"] == "1.25"
    # the rolling day's allowed rate is 2/24 USD an hour: 1.25 an hour is 15 times it
    assert Decimal(search["burn_1h_ratio"]) == Decimal(15)
    org = rows["org"]
    assert org["period"] == "month, Europe/Berlin" and org["resets_at"].endswith(("+01:00", "+02:00"))
    assert org["projected_usd"] != "not enough data"  # 30 hours of history
    table = budgets("--config", str(tmp_path / "costspan.yaml"), "--data-dir", str(tmp_path))
    assert table.stdout.splitlines()[0].split()[:5] == ["budget", "scope", "period", "limit_usd", "spent_usd"]
    assert "(2 rows)" in table.stdout


def test_shows_what_the_collector_last_wrote_and_when(tmp_path):
    write_calls(tmp_path, [call(datetime(2026, 3, 10, 9), "3", team="search")])
    empty = budgets("--data-dir", str(tmp_path))
    assert empty.returncode == 0 and "(0 rows)" in empty.stdout
    assert "has not evaluated budgets here yet" in empty.stderr
    job = BudgetJob(tmp_path, [Budget("search", {"team": "search"}, Decimal(4), "day")])
    job.run(connect(tmp_path), datetime(2026, 3, 10, 12, tzinfo=UTC))
    out = budgets("--data-dir", str(tmp_path), "--format", "csv")
    assert out.returncode == 0, out.stderr
    assert "as the collector evaluated them at 2026-03-10 12:00:00 UTC" in out.stderr
    header, row = out.stdout.splitlines()
    values = dict(zip(header.split(","), row.split(","), strict=True))
    assert (values["spent_usd"], values["percent"], values["thresholds_crossed"]) == ("3", "75", "50% 75%")
    # 3 USD in the 3 hours of history: the last dollar at 1 USD an hour, at 13:00
    assert values["resets_at"] == "2026-03-11T00:00+00:00"
    assert values["crosses_at"] == "2026-03-10T13:00+00:00"


def test_an_empty_history_is_not_enough_data(tmp_path):
    (tmp_path / "costspan.yaml").write_text(CONFIG)
    (tmp_path / "data").mkdir()
    out = budgets(
        "--config", str(tmp_path / "costspan.yaml"), "--data-dir", str(tmp_path / "data"), "--format", "json"
    )
    assert out.returncode == 0, out.stderr
    for row in map(json.loads, out.stdout.splitlines()):
        assert (row["spent_usd"], row["calls"], row["projected_usd"]) == ("0", 0, "not enough data")
        assert row["crosses_at"] is None and row["burn_24h_usd_per_hour"] is None


def test_mistakes_are_reported_not_raised(tmp_path):
    (tmp_path / "bad.yaml").write_text("budgets:\n  - {name: a, amount: -1, period: day}\n")
    out = budgets("--config", str(tmp_path / "bad.yaml"), "--data-dir", str(tmp_path))
    assert out.returncode == 1 and "bad.yaml:2: budgets[0].amount: more than 0 USD" in out.stderr
    missing = budgets("--data-dir", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "no data directory" in missing.stderr
