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


def test_the_disk_alerts_read_what_the_collector_exports():
    # the names the rules use are the ones collector/health.py exports (and test_full_disk_e2e reads)
    rules = (RULES / "costspan-rules.yml").read_text()
    for name in (
        "costspan_collector_data_dir_free_bytes",
        "costspan_collector_data_dir_size_bytes",
        'costspan_collector_requests_refused_total{reason="disk"}',
    ):
        assert name in rules


def test_rules_pass_their_unit_tests():
    tested = promtool("test", "rules", "costspan-rules.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout
