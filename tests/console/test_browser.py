"""The console in a real headless Chromium (Debian's ``chromium``, driven by Playwright through its executable
path) against a real ``costspan serve`` holding stored calls: every page loads without a console error or a
failed request, figures on the pages equal SQL on the same data, a filter and the drill-down from a team to
its features to their costliest traces work, and each page is photographed.

Screenshots go to a temporary folder, or to ``$COSTSPAN_SCREENSHOTS`` (``make screenshots``: docs/img/).
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, sync_playwright

from tests.console.conftest import sql_rows
from tests.console.history import TRACE, TRACE_COSTS, write_history
from tests.support.collector import Collector

BUDGETS = """\
budgets:
  - {name: org, amount: 400, period: month}
  - {name: search, scope: {team: search}, amount: 100, period: month}
"""


def chromium() -> str:
    """Debian's chromium (tests/support/system-deps.sh installs it); missing, the test fails, never skips."""
    path = shutil.which("chromium")
    assert path is not None, "chromium is not installed: run tests/support/system-deps.sh"
    return path


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[Collector, str]]:
    own = os.environ.get("COSTSPAN_SCREENSHOT_DATA")  # make screenshots SCREENSHOT_DATA=costspan-demo
    if own:
        collector = Collector(Path(own).resolve()).start()
    else:
        data_dir = tmp_path_factory.mktemp("console-browser")
        write_history(data_dir, datetime.now(UTC).replace(tzinfo=None))
        config = data_dir.parent / f"{data_dir.name}.yaml"
        config.write_text(BUDGETS)
        collector = Collector(data_dir).start("--config", str(config))
    try:
        yield collector, f"{collector.admin_url}/console"
    finally:
        collector.kill(15)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = os.environ.get("COSTSPAN_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        return Path(folder)
    return tmp_path_factory.mktemp("screenshots")


class Watched:
    """A page with every console error, uncaught exception and failed request it meets."""

    def __init__(self, browser: Browser) -> None:
        self.page: Page = browser.new_page(viewport={"width": 1280, "height": 860})
        self.problems: list[str] = []
        self.page.on("console", lambda m: self.problems.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.problems.append(str(e)))
        self.page.on(
            "response", lambda r: self.problems.append(f"{r.status} {r.url}") if r.status >= 400 else None
        )

    def open(self, url: str) -> Page:
        self.page.goto(url)
        self.settle()
        return self.page

    def follow(self, target: Locator) -> Page:
        """Click a link or button of the console and wait for the page it leads to (htmx swaps it in)."""
        page = self.page
        with page.expect_response(lambda r: "/console/" in r.url and "/static/" not in r.url):
            target.click()
        page.wait_for_function(
            "() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added')"
        )
        self.settle()
        return page

    def settle(self) -> None:
        self.page.wait_for_load_state("networkidle")
        assert self.problems == []


@pytest.fixture
def watched(browser) -> Iterator[Watched]:
    page = Watched(browser)
    yield page
    page.page.close()


def exact(page: Page, selector: str) -> Decimal:
    """The exact amount behind a money figure on the page."""
    return Decimal(page.locator(selector).first.get_attribute("data-exact"))


def test_every_page_loads_and_is_photographed(served, watched, shots):
    collector, base = served
    [costliest] = sql_rows(
        collector.data_dir, "SELECT trace_id FROM cost_by_trace ORDER BY cost_usd DESC, trace_id LIMIT 1"
    )
    for name, path in (
        ("overview", "/"),
        ("explore", "/explore?range=30d&by=team"),
        ("traces", "/traces?range=30d"),
        ("trace", f"/traces/{costliest['trace_id']}"),
        ("models", "/models?range=30d"),
        ("budgets", "/budgets"),
        ("calls", "/calls?range=7d"),
        ("sql", "/sql?q=SELECT+team%2C+sum(cost_usd)+AS+cost_usd+FROM+llm_calls+GROUP+BY+1+ORDER+BY+2+DESC"),
    ):
        page = watched.open(base + path)
        assert page.locator("main h1").count() == 1, name
        if name in ("overview", "explore"):  # the chart was drawn (uPlot's canvas)
            assert page.locator(".chart canvas").count() >= 1, name
        page.screenshot(path=str(shots / f"console-{name}.png"), full_page=True)
        assert (shots / f"console-{name}.png").stat().st_size > 10_000


def test_overview_figures_equal_sql(served, watched):
    collector, base = served
    page = watched.open(base + "/")
    [month] = sql_rows(
        collector.data_dir,
        "SELECT sum(cost_usd) AS cost, count(*) AS calls FROM llm_calls "
        "WHERE start_time >= date_trunc('month', now()::TIMESTAMP)",
    )
    assert exact(page, "#card-3 .money") == Decimal(month["cost"])
    teams = sql_rows(
        collector.data_dir,
        "SELECT team, sum(cost_usd) AS cost FROM llm_calls "
        "WHERE start_time >= date_trunc('month', now()::TIMESTAMP) GROUP BY 1 ORDER BY 2 DESC",
    )
    # the budgets' figures are the budgets table's (costspan budgets), once the collector evaluated them
    collector.wait_for("SELECT count(*) FROM budgets", ["2"])
    page = watched.open(base + "/")
    budgets = sql_rows(collector.data_dir, "SELECT budget, spent_usd FROM budgets")
    for budget in budgets:
        row = page.locator("#budgets tbody tr", has_text=budget["budget"]).first
        assert exact(row, "td:nth-child(5) .money") == Decimal(budget["spent_usd"]) > 0
    shown = page.locator("#teams tbody tr")
    assert shown.count() == len(teams)
    for i, row in enumerate(teams):
        assert shown.nth(i).locator("td").first.inner_text() == row["team"]
        assert Decimal(shown.nth(i).locator(".money").get_attribute("data-exact")) == Decimal(row["cost"])


def test_drill_down_from_a_team_to_its_features_to_their_costliest_traces(served, watched):
    collector, base = served
    page = watched.open(base + "/explore?range=30d&by=team")
    watched.follow(page.locator("#groups a.drill", has_text="search"))
    assert "f.team=search" in page.url and "by=feature" in page.url
    features = {
        r["feature"]: Decimal(r["cost"])
        for r in sql_rows(
            collector.data_dir,
            "SELECT feature, sum(cost_usd) AS cost FROM llm_calls WHERE team = 'search' "
            "AND start_time >= now()::TIMESTAMP - INTERVAL 30 DAY GROUP BY 1",
        )
    }
    rows = page.locator("#groups tbody tr")
    shown = {
        rows.nth(i).get_attribute("data-value"): exact(rows.nth(i), ".money") for i in range(rows.count())
    }
    assert shown == features
    watched.follow(page.locator("#groups a.drill", has_text="chat"))
    assert "/traces?" in page.url and "f.feature=chat" in page.url and "f.team=search" in page.url
    first = page.locator("#traces tbody tr").first
    assert first.locator("a.trace").inner_text() == TRACE
    watched.follow(first.locator("a.trace"))
    [trace] = sql_rows(
        collector.data_dir, f"SELECT sum(cost_usd) AS cost FROM llm_calls WHERE trace_id = '{TRACE}'"
    )
    assert exact(page, "#total .money") == Decimal(trace["cost"]) == sum(TRACE_COSTS)
    agent = page.locator("#tree tr.kind-agent")
    assert exact(agent, "td.total .money") == TRACE_COSTS[0] + TRACE_COSTS[1]


def test_a_filter_and_a_measure_change_the_url_and_the_figures(served, watched):
    collector, base = served
    page = watched.open(base + "/explore?range=7d&by=model")
    page.select_option("select[name=measure]", "calls")
    page.select_option("select[name=by]", "tag.region")
    watched.follow(page.get_by_role("button", name="show"))
    assert "measure=calls" in page.url and "by=tag.region" in page.url
    watched.follow(page.locator("#groups a.drill", has_text="eu"))  # filters to the tag, groups by model
    assert "f.tag.region=eu" in page.url
    expected = {
        r["model"]: r["calls"]
        for r in sql_rows(
            collector.data_dir,
            "SELECT coalesce(response_model, request_model) AS model, count(*) AS calls FROM llm_calls "
            "WHERE tags['region'] = 'eu' AND start_time >= now()::TIMESTAMP - INTERVAL 7 DAY GROUP BY 1",
        )
    }
    rows = page.locator("#groups tbody tr")
    shown = {
        rows.nth(i).get_attribute("data-value"): int(
            rows.nth(i).locator("td").nth(1).inner_text().replace(",", "")
        )
        for i in range(rows.count())
    }
    assert shown == expected
    # the URL alone brings the same view back (a shared link)
    again = watched.open(page.url)
    assert again.locator("#groups tbody tr").count() == len(expected)
    csv_text = page.request.get(base + "/explore.csv?" + page.url.split("?", 1)[1]).text()
    table = list(csv.DictReader(io.StringIO(csv_text)))
    assert {r["model"]: int(r["calls"]) for r in table} == expected


def test_sql_page_runs_a_query_and_refuses_a_write(served, watched):
    collector, base = served
    page = watched.open(base + "/sql")
    query = "SELECT team, count(*) AS calls FROM llm_calls GROUP BY 1 ORDER BY 1"
    page.fill("textarea[name=q]", query)
    watched.follow(page.get_by_role("button", name="run"))
    cells = page.locator("#sql-result tbody tr td").all_inner_texts()
    expected = sql_rows(collector.data_dir, query)
    assert cells == [str(v) for r in expected for v in (r["team"] or "", r["calls"])]
    page.fill("textarea[name=q]", "DELETE FROM llm_calls")
    watched.follow(page.get_by_role("button", name="run"))
    assert "one read-only query" in page.locator("#sql-error").inner_text()


def test_budgets_page_shows_the_budgets_table(served, watched):
    collector, base = served
    collector.wait_for("SELECT count(*) FROM budgets", ["2"])
    page = watched.open(base + "/budgets")
    for budget in sql_rows(collector.data_dir, "SELECT budget, limit_usd, spent_usd FROM budgets"):
        row = page.locator("#budgets tbody tr", has_text=budget["budget"]).first
        assert exact(row, "td:nth-child(4) .money") == Decimal(budget["limit_usd"])
        assert exact(row, "td:nth-child(5) .money") == Decimal(budget["spent_usd"])


def test_models_page_figures_equal_sql(served, watched):
    collector, base = served
    page = watched.open(base + "/models?range=30d")
    rows = sql_rows(
        collector.data_dir,
        "SELECT coalesce(response_model, request_model) AS model, count(*) AS calls, "
        "coalesce(sum(cost_usd), 0) AS cost FROM llm_calls "
        "WHERE start_time >= now()::TIMESTAMP - INTERVAL 30 DAY GROUP BY 1",
    )
    for row in rows:
        shown = page.locator(f'#models tbody tr[data-model="{row["model"]}"]')
        assert exact(shown, ".money") == Decimal(row["cost"])
    # a priced model shows the price per million tokens that the collector's catalogs give it now
    from costspan.collector.sql import cell_text
    from costspan.pricing import load_engine

    engine = load_engine()
    in_force = engine.price_set_at(engine.resolve("gpt-4o-mini", "openai"), datetime.now(UTC)).prices
    priced = page.locator('#models tbody tr[data-model="gpt-4o-mini"]')
    assert priced.locator("td").nth(8).inner_text() == cell_text(in_force["input_mtok"])


def test_unpriced_calls_lead_to_the_calls_themselves(served, watched):
    collector, base = served
    page = watched.open(base + "/")
    watched.follow(page.locator("#unpriced a.unpriced", has_text="mystery-1"))
    assert "status=unpriced" in page.url and "f.model=mystery-1" in page.url
    [expected] = sql_rows(
        collector.data_dir,
        "SELECT count(*) AS calls FROM llm_calls WHERE pricing_status = 'unknown_model' "
        "AND start_time >= date_trunc('month', now()::TIMESTAMP)",
    )
    rows = page.locator("#calls tbody tr")
    assert rows.count() == expected["calls"] > 0
    assert set(rows.locator("td:nth-child(6)").all_inner_texts()) == {"unknown_model"}
