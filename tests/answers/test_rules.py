"""``costspan rules``: the generated rules load in promtool, pass the generated promtool suite (which fails
against rules that are wrong), and say what a fixed configuration should: thresholds, projected overrun,
burn-rate tiers scaled to each period, labels Alertmanager routes on."""

from __future__ import annotations

import json
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from costspan.collector.answers.rules import BURN_WINDOWS, burn_tiers, label_name
from tests.support.collector import COSTSPAN
from tests.support.prometheus import binary

CONFIG = """\
budgets:
  - name: org
    amount: 20000
    period: month
  - name: search
    scope: {team: search, tag.cost-center: cc-42}
    amount: 250.50
    period: week
    thresholds: [87.5, 120]
  - name: chat-daily
    scope: {feature: chat}
    amount: 10
    period: day
    thresholds: [100]
  - name: alice-24h
    scope: {user_id: alice}
    amount: 3
    period: {rolling: 24h}
    thresholds: [50]
"""


def costspan(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(COSTSPAN), *args], capture_output=True, text=True, timeout=60)


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([binary("promtool"), *args], capture_output=True, text=True, timeout=120, cwd=cwd)


@pytest.fixture
def generated(tmp_path: Path) -> Path:
    config = tmp_path / "costspan.yaml"
    config.write_text(CONFIG)
    out = tmp_path / "rules"
    done = costspan(
        "rules",
        "--config",
        str(config),
        "--output",
        str(out / "budgets.yml"),
        "--tests",
        str(out / "budgets.test.yml"),
    )
    assert done.returncode == 0, done.stderr
    return out


def alerts(rules_file: Path) -> list[dict]:
    doc = yaml.safe_load(rules_file.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"] if "alert" in rule]


def test_the_generated_rules_pass_promtool_and_their_generated_suite(generated):
    checked = promtool("check", "rules", "budgets.yml", cwd=generated)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", "budgets.test.yml", cwd=generated)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout
    # every alert is exercised: each threshold, the projection and each burn-rate tier, per budget
    suite = yaml.safe_load((generated / "budgets.test.yml").read_text())
    exercised = {
        (t["alertname"], case["name"].split(":")[0])
        for case in suite["tests"]
        for t in case["alert_rule_test"]
    }
    names = {
        (rule["alert"], "budget " + rule["labels"]["budget"]) for rule in alerts(generated / "budgets.yml")
    }
    assert names == exercised


@pytest.mark.parametrize(
    ("wrong", "right"),
    [
        (") >= 0.875", ") > 0.875"),  # a threshold reached exactly must fire
        ("> 14.4\n", "> 144\n"),  # a fast burn must fire at 1.5 times its factor
        ("for: 2m", "for: 5m"),  # not later than for says
        ("team: search", "team: Search"),  # the label Alertmanager routes on
    ],
)
def test_the_generated_suite_fails_against_wrong_rules(generated, wrong, right):
    rules = generated / "budgets.yml"
    text = rules.read_text()
    assert wrong in text
    rules.write_text(text.replace(wrong, right))
    tested = promtool("test", "rules", "budgets.test.yml", cwd=generated)
    assert tested.returncode != 0, tested.stdout


def test_a_fixed_configuration_gets_the_expected_alerts(generated):
    doc = yaml.safe_load((generated / "budgets.yml").read_text())
    groups = {g["name"]: g["rules"] for g in doc["groups"]}
    search = groups["costspan-budget-search"]
    assert [(r["alert"], r["labels"].get("threshold"), r["labels"]["severity"]) for r in search[:3]] == [
        ("CostspanBudgetThreshold", "87.5", "warning"),
        ("CostspanBudgetThreshold", "120", "critical"),
        ("CostspanBudgetProjectedOverrun", None, "warning"),
    ]
    assert search[0]["expr"] == 'max by (budget) (costspan_budget_used_ratio{budget="search"}) >= 0.875'
    assert search[0]["for"] == "2m" and search[0]["keep_firing_for"] == "10m"
    assert search[0]["labels"]["team"] == "search" and search[0]["labels"]["tag_cost_center"] == "cc-42"
    assert search[0]["labels"]["period"] == "week"
    assert "costspan_budget_spent_usd" in search[0]["annotations"]["summary"]
    burns = {r["alert"]: r for r in search if "burn_windows" in r["labels"]}
    assert {a: r["labels"]["burn_windows"] for a, r in burns.items()} == {
        "CostspanBudgetFastBurn": "30m and 5m",
        "CostspanBudgetSlowBurn": "1h and 5m",
        "CostspanBudgetSteadyOverspend": "24h and 1h",
    }
    assert burns["CostspanBudgetFastBurn"]["labels"]["severity"] == "critical"
    org_fast = next(r for r in groups["costspan-budget-org"] if r["alert"] == "CostspanBudgetFastBurn")
    assert org_fast["expr"].splitlines() == [
        'max by (budget) (costspan_budget_burn_rate{budget="org",window="1h"}) > 14.4',
        "and",
        'max by (budget) (costspan_budget_burn_rate{budget="org",window="5m"}) > 14.4',
    ]
    assert groups["costspan-budget-alice-24h"][-1]["labels"]["user_id"] == "alice"
    assert groups["costspan-budget-alice-24h"][-1]["labels"]["period"] == "rolling 1d"


def test_burn_rate_tiers_follow_the_workbook_for_a_month_and_scale_to_shorter_periods():
    def table(period: timedelta) -> list[tuple[str, str, str | None, float]]:
        return [(t.alert, t.long, t.short, t.factor) for t in burn_tiers(period.total_seconds())]

    assert table(timedelta(days=30)) == [
        ("CostspanBudgetFastBurn", "1h", "5m", 14.4),
        ("CostspanBudgetSlowBurn", "6h", "30m", 6.0),
        ("CostspanBudgetSteadyOverspend", "3d", "6h", 1.0),
    ]
    assert table(timedelta(days=7)) == [
        ("CostspanBudgetFastBurn", "30m", "5m", 14.4),
        ("CostspanBudgetSlowBurn", "1h", "5m", 6.0),
        ("CostspanBudgetSteadyOverspend", "24h", "1h", 1.0),
    ]
    # a day: no steady-overspend tier (working hours alone run above 1x for hours)
    assert table(timedelta(days=1)) == [
        ("CostspanBudgetFastBurn", "5m", None, 14.4),
        ("CostspanBudgetSlowBurn", "30m", "5m", 6.0),
    ]
    for days in (1, 2, 7, 14, 30, 90, 365):
        tiers = burn_tiers(days * 86400.0)
        longs = [BURN_WINDOWS[t.long] for t in tiers]
        assert longs == sorted(set(longs))  # each tier's window longer than the one before
        assert all(t.short is None or BURN_WINDOWS[t.short] < BURN_WINDOWS[t.long] for t in tiers)


BURST_SUMMARY = (
    "Budget search: spending over 14.4x the rate it allows over the last 30m and 5m (the whole budget would "
    "be gone within 700m); $ of $ spent (%)"
)
BURST_DESCRIPTION = (
    "Budget search (team=search, tag.cost-center=cc-42, week): $ of $ spent, $ projected by the period's "
    "end;  calls could not be priced and are not in the spend. Details: costspan budgets."
)


def test_a_hand_written_burst_fires_the_fast_burn_of_a_weekly_budget_only(generated):
    # 20x over the last 30 and 5 minutes, 3x over the hour: the weekly budget's fast tier (30m/5m over 14.4)
    # fires, its slow tier (1h/5m over 6) does not; the monthly org budget (1h/5m) does not either.
    series = []
    for budget, window, value in [
        ("search", "5m", 20),
        ("search", "30m", 20),
        ("search", "1h", 3),
        ("org", "5m", 20),
        ("org", "1h", 3),
    ]:
        labels = f'budget="{budget}",window="{window}",job="costspan",instance="c:9464"'
        series.append({"series": f"costspan_budget_burn_rate{{{labels}}}", "values": f"{value}x10"})
    suite = {
        "rule_files": ["budgets.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    {"alertname": "CostspanBudgetSlowBurn", "eval_time": "5m", "exp_alerts": []},
                    {
                        "alertname": "CostspanBudgetFastBurn",
                        "eval_time": "5m",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "budget": "search",
                                    "severity": "critical",
                                    "period": "week",
                                    "team": "search",
                                    "tag_cost_center": "cc-42",
                                    "burn_windows": "30m and 5m",
                                },
                                # no budget gauges in this suite: the figures print empty
                                "exp_annotations": {
                                    "summary": BURST_SUMMARY,
                                    "description": BURST_DESCRIPTION,
                                },
                            }
                        ],
                    },
                ],
            }
        ],
    }
    (generated / "burst.test.yml").write_text(json.dumps(suite))
    tested = promtool("test", "rules", "burst.test.yml", cwd=generated)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_label_names_of_scope_dimensions():
    assert label_name("team") == "team"
    assert label_name("tag.cost-center") == "tag_cost_center"


def test_the_alert_list_and_mistakes(tmp_path):
    config = tmp_path / "costspan.yaml"
    config.write_text(CONFIG)
    listed = costspan("rules", "--config", str(config), "--format", "csv", "--interval", "15s")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0] == "alert,budget,severity,threshold_or_windows,for,expr"
    assert "CostspanBudgetThreshold,search,warning,87.5,30s," in listed.stdout
    # 4 + 2 + 1 + 1 thresholds, a projection each, 3 + 3 + 2 + 2 burn tiers
    assert len(lines) - 1 == 8 + 4 + 10
    printed = costspan("rules", "--config", str(config))
    assert printed.returncode == 0 and printed.stdout.startswith("# Prometheus rules for costspan's budgets")
    assert costspan("rules", "--config", str(config), "--tests", "x.yml").returncode == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("budgets:\n  - name: x\n    amount: -5\n    period: month\n")
    failed = costspan("rules", "--config", str(bad))
    assert failed.returncode == 2 and f"{bad}:3:" in failed.stderr
    assert costspan("rules", "--interval", "soon").returncode == 2
