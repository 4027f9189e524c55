"""deploy/prometheus's budget rules are what ``costspan rules`` generates from the example budgets, and pass
promtool; deploy/alertmanager's routing passes amtool and sends each budget alert where it says."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.collector import COSTSPAN
from tests.support.deploy import DEPLOY, RULES
from tests.support.prometheus import binary

EXAMPLE = "costspan-budgets.example.yaml"
GENERATED = ("costspan-budget-rules.yml", "costspan-budget-rules.test.yml")
ALERTMANAGER = DEPLOY / "alertmanager" / "alertmanager.yml"


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=120, cwd=cwd)


def test_the_committed_budget_rules_are_generated_from_the_example(tmp_path):
    shutil.copy(RULES / EXAMPLE, tmp_path / EXAMPLE)
    done = run(
        str(COSTSPAN),
        "rules",
        "--config",
        EXAMPLE,
        "--output",
        GENERATED[0],
        "--tests",
        GENERATED[1],
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    for name in GENERATED:
        assert (tmp_path / name).read_text() == (RULES / name).read_text(), (
            f"regenerate {name} (see {EXAMPLE})"
        )


def test_the_budget_rules_pass_promtool():
    checked = run(binary("promtool"), "check", "rules", GENERATED[0], cwd=RULES)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = run(binary("promtool"), "test", "rules", GENERATED[1], cwd=RULES)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def amtool() -> str:
    path = shutil.which("amtool")
    assert path, "amtool is not installed: `apt-get install prometheus-alertmanager` (system-deps.sh does)"
    return path


def test_the_alertmanager_configuration_is_valid():
    checked = run(amtool(), "check-config", str(ALERTMANAGER), cwd=DEPLOY)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (
            ["alertname=CostspanBudgetThreshold", "budget=search", "team=search", "severity=warning"],
            "search-team",
        ),
        (["alertname=CostspanBudgetThreshold", "budget=org", "severity=critical"], "finops"),
        (["alertname=CostspanBudgetFastBurn", "budget=search", "team=search", "severity=critical"], "oncall"),
        (
            ["alertname=CostspanBudgetSlowBurn", "budget=search", "team=search", "severity=warning"],
            "search-team",
        ),
        (["alertname=CostspanBudgetProjectedOverrun", "budget=org", "severity=warning"], "finops"),
    ],
)
def test_budget_alerts_are_routed_by_their_labels(labels, receiver):
    routed = run(amtool(), "config", "routes", "test", f"--config.file={ALERTMANAGER}", *labels, cwd=DEPLOY)
    assert routed.returncode == 0, routed.stdout + routed.stderr
    assert routed.stdout.strip() == receiver
