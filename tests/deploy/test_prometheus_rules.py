"""deploy/prometheus: the rules load in ``promtool`` and pass their unit tests."""

from __future__ import annotations

import subprocess

from tests.support.deploy import RULES
from tests.support.prometheus import binary


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([binary("promtool"), *args], capture_output=True, text=True, timeout=120, cwd=RULES)


def test_rules_are_valid():
    checked = promtool("check", "rules", "costspan-rules.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


def test_rules_pass_their_unit_tests():
    tested = promtool("test", "rules", "costspan-rules.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout
