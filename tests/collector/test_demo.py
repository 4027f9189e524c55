"""`costspan demo` end to end: a real collector fills with backfilled history, and the report reads it."""

from __future__ import annotations

import subprocess
from decimal import Decimal

from tests.support.collector import COSTSPAN


def test_demo_backfills_history_and_reports_from_it(tmp_path):
    data = tmp_path / "demo"
    out = subprocess.run(
        [str(COSTSPAN), "demo", "--data-dir", str(data), "--days", "14"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    report = out.stdout
    sent = int(report.split(" LLM calls);")[0].rsplit("(", 1)[1].replace(",", ""))
    for title in ("Spend by team", "The support agent, step by step", "Prompt caching", "Daily spend"):
        assert title in report
    # the prompt change six and five days ago is the anomaly the report finds first
    anomalies = report.split("Anomalies:")[1].splitlines()[2]
    assert "fraud-explain" in anomalies
    # what the report summed is what `costspan sql` finds: every call stored once, priced, attributed
    rows = (
        subprocess.run(
            [
                str(COSTSPAN),
                "sql",
                "--data-dir",
                str(data),
                "--format",
                "csv",
                "SELECT count(*), count(DISTINCT team), count(*) FILTER (WHERE pricing_status <> 'priced'), "
                "sum(cost_usd), count(DISTINCT start_time::DATE) FROM llm_calls",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        .stdout.splitlines()[1]
        .split(",")
    )
    assert int(rows[0]) == sent and int(rows[1]) == 4 and int(rows[2]) == 0 and int(rows[4]) == 14
    assert f"${Decimal(rows[3]):,.2f} in all" in report
    # a second run refuses to mix its history into the first one's
    again = subprocess.run([str(COSTSPAN), "demo", "--data-dir", str(data)], capture_output=True, text=True)
    assert again.returncode == 2 and "--replace" in again.stderr
