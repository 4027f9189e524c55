"""What a new user does first, end to end: ``costspan demo --keep-running``, then the console at the address
it prints, in a real headless Chromium: the month's spend by team and its forecast on the overview, a team
clicked to its features, a feature to its costliest traces, a trace to its cost, each figure equal to
``costspan sql`` on the demo's data. A short backfill (3 days) keeps it to well under a minute."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Iterator
from decimal import Decimal

import httpx2 as httpx
import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.console.conftest import costspan_sql
from tests.console.test_browser import Watched, chromium, exact
from tests.support.collector import COSTSPAN

MONTH = "start_time >= date_trunc('month', now()::TIMESTAMP)"


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Iterator[tuple[str, str]]:
    """The demo's data directory and the console's address it printed, its collector kept running."""
    data = tmp_path_factory.mktemp("demo-console") / "demo"
    proc = subprocess.Popen(
        [str(COSTSPAN), "demo", "--data-dir", str(data), "--days", "3", "--keep-running"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        printed: list[str] = []
        url = None
        deadline = time.monotonic() + 240
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, "".join(printed)  # the demo ended before it printed the console's address
            printed.append(line)
            found = re.match(r"Open the console: (http://127\.0\.0\.1:\d+/console/)$", line.strip())
            url = found.group(1) if found else None
        assert url is not None, "".join(printed)
        assert "the month's forecasts are made" in "".join(printed), "".join(printed)
        yield str(data), url.rstrip("/")
    finally:
        proc.send_signal(signal.SIGTERM)  # as Ctrl-C: the demo stops its collector, never leaves it behind
        assert proc.wait(60) == 0
    with pytest.raises(httpx.TransportError):
        httpx.get(url, timeout=2)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        yield launched
        launched.close()


def test_the_demos_console_from_the_months_teams_to_a_features_costliest_traces(demo, browser):
    data, base = demo
    watched = Watched(browser)
    page = watched.open(base + "/")

    # the month's spend by team, as SQL sums it
    teams = costspan_sql(
        data, f"SELECT team, sum(cost_usd) AS cost FROM llm_calls WHERE {MONTH} GROUP BY 1 ORDER BY 2 DESC"
    )
    rows = page.locator("#teams tbody tr")
    assert rows.count() == len(teams) == 4
    for i, team in enumerate(teams):
        assert rows.nth(i).locator("td").first.inner_text() == team["team"]
        assert exact(rows.nth(i), ".money") == Decimal(team["cost"])
    # the month's forecast: the organisation's period total the collector's forecast job wrote
    [forecast] = costspan_sql(
        data,
        "SELECT p50, lo80, hi80, method FROM forecasts "
        "WHERE kind = 'period_total' AND scope = 'organisation' AND period = 'month'",
    )
    card = page.locator("#card-forecast")
    assert forecast["method"] and exact(card, ".big .money") == Decimal(forecast["p50"])
    assert [Decimal(m.get_attribute("data-exact")) for m in card.locator(".sub .money").all()] == [
        Decimal(forecast["lo80"]),
        Decimal(forecast["hi80"]),
    ]

    # a team, clicked: its features this month
    watched.follow(page.locator("#teams a", has_text="support"))
    assert "f.team=support" in page.url and "by=feature" in page.url
    features = costspan_sql(
        data,
        f"SELECT feature, sum(cost_usd) AS cost FROM llm_calls WHERE team = 'support' AND {MONTH} GROUP BY 1",
    )
    rows = page.locator("#groups tbody tr")
    shown = {
        rows.nth(i).get_attribute("data-value"): exact(rows.nth(i), ".money") for i in range(rows.count())
    }
    assert shown == {f["feature"]: Decimal(f["cost"]) for f in features}

    # a feature, clicked: its costliest traces this month
    watched.follow(page.locator("#groups a.drill", has_text="reply-draft"))
    assert "/traces?" in page.url and "f.feature=reply-draft" in page.url and "f.team=support" in page.url
    traces = costspan_sql(
        data,
        "SELECT trace_id, sum(cost_usd) AS cost FROM llm_calls WHERE team = 'support' "
        f"AND feature = 'reply-draft' AND {MONTH} GROUP BY 1 ORDER BY 2 DESC LIMIT 10",
    )
    rows = page.locator("#traces tbody tr")
    assert rows.count() >= len(traces) == 10
    assert [exact(rows.nth(i), ".money") for i in range(10)] == [Decimal(t["cost"]) for t in traces]

    # the costliest, clicked: its cost tree's total
    first = rows.first.locator("a.trace")
    trace_id = first.inner_text()
    watched.follow(first)
    [trace] = costspan_sql(data, f"SELECT sum(cost_usd) AS cost FROM llm_calls WHERE trace_id = '{trace_id}'")
    assert exact(page, "#total .money") == Decimal(trace["cost"]) == Decimal(traces[0]["cost"])
    page.close()
