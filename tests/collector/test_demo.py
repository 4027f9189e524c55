"""`costspan demo` end to end: a real collector fills with backfilled history and live calls made by the real
SDKs under costspan's instrumentation, and the report reads them."""

from __future__ import annotations

import io
import re
import subprocess
from decimal import Decimal

from costspan.collector.demo._progress import Progress
from costspan.collector.demo._report import amount, money
from tests.support.collector import COSTSPAN


def sql(data, query: str) -> list[str]:
    out = subprocess.run(
        [str(COSTSPAN), "sql", "--data-dir", str(data), "--format", "csv", query],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()[1].split(",")


def test_demo_backfills_history_makes_live_calls_and_reports_from_them(tmp_path):
    data = tmp_path / "demo"
    out = subprocess.run(
        [str(COSTSPAN), "demo", "--data-dir", str(data), "--days", "14"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    report = out.stdout
    # a pipe, not a terminal: progress comes as plain lines, never a carriage return
    assert "\r" not in report
    backfilled = int(re.search(r"\(([\d,]+) LLM calls\)", report).group(1).replace(",", ""))
    live = int(re.search(r"made (\d+) live LLM calls", report).group(1))
    assert live == 30
    for title in (
        "Spend by team",
        "The support agent, step by step",
        "Prompt caching",
        "Daily spend",
        "Today",
    ):
        assert title in report
    # the search team's rolling week is over its budget: every threshold crossed, once
    budgets = report.split("Budgets (")[1]
    assert re.search(r"search-7d +rolling 7d +2\.00 .* 50% 75% 90% 100%", budgets), budgets
    crossings = [line.split()[:2] for line in budgets.split("Thresholds crossed")[1].splitlines()[2:6]]
    assert crossings == [["search-7d", f"{t}%"] for t in (50, 75, 90, 100)], budgets
    # the prompt change six and five days ago is the largest anomaly, explained by the prompt version
    anomalies = report.split("Anomalies, last 7 days")[1].split("\nBudgets (")[0].splitlines()[1:]
    assert re.match(r"  \S+: level shift, daily, from ", anomalies[0]), anomalies
    assert anomalies[1].startswith("      prompt_version=v4 +$"), anomalies
    explained = " ".join(line.strip() for line in anomalies)
    assert "feature=fraud-explain" in explained and "volume +$" in explained and "price +$" in explained

    # every call stored once, priced and attributed; history on 14 days, the live calls today
    calls, teams, unpriced, days = sql(
        data,
        "SELECT count(*), count(DISTINCT team), count(*) FILTER (WHERE pricing_status <> 'priced'), "
        "count(DISTINCT start_time::DATE) FROM llm_calls",
    )
    assert (int(calls), int(teams), int(unpriced), int(days)) == (backfilled + live, 4, 0, 15)
    # the headline sums every call, today's live ones among them
    total, today, today_cost = sql(
        data,
        "SELECT sum(cost_usd), count(*) FILTER (WHERE start_time >= current_date), "
        "sum(cost_usd) FILTER (WHERE start_time >= current_date) FROM llm_calls",
    )
    assert f"{money(Decimal(total))} in all, today's {today} (the live calls among them) " in report
    assert f"among them) {money(Decimal(today_cost))}." in report
    # a model's dated snapshots are counted under it, and named beside it
    models = report.split("Models by spend")[1].split("\n\n")[0].splitlines()[2:]
    listed = {line.split()[1] for line in models}
    assert "claude-sonnet-4-5" in listed and "claude-sonnet-4-5-20250929" not in listed, models
    [sonnet] = [line for line in models if line.split()[1] == "claude-sonnet-4-5"]
    (calls,) = sql(data, "SELECT count(*) FROM llm_calls WHERE response_model LIKE 'claude-sonnet-4-5%'")
    assert f" {int(calls):,} " in sonnet and sonnet.rstrip().endswith("claude-sonnet-4-5-20250929"), sonnet
    # money alike everywhere: cents from a dollar up, two significant digits below; never a run of zeros
    assert not re.search(r"(?<![\d.])0\.0000(?!\d*[1-9])", report), report
    for shown in re.findall(r"\$([\d,]+\.\d+)", report):
        digits = shown.replace(",", "")
        assert digits.split(".")[1] and (len(digits.split(".")[1]) == 2 or Decimal(digits) < 1), shown

    # the live calls: streams with usage (OpenAI's without include_usage too), cache reads and one-hour
    # writes, the agent's steps, all attributed through attribute() scopes
    live_calls, streamed, stream_usage, cache_read, cache_write, agent_steps, unattributed = sql(
        data,
        "SELECT count(*), count(time_to_first_chunk_s), "
        "count(*) FILTER (WHERE time_to_first_chunk_s IS NOT NULL AND output_tokens > 0), "
        "sum(cache_read_tokens), sum(cache_write_tokens), count(DISTINCT step) FILTER (WHERE agent_name "
        "= 'support-agent'), count(*) FILTER (WHERE team IS NULL OR feature IS NULL) "
        "FROM llm_calls WHERE service_name = 'web-app'",
    )
    assert int(live_calls) == live and int(streamed) == int(stream_usage) == 8
    assert int(cache_read) > 0 and int(cache_write) > 0
    assert int(agent_steps) == 3 and int(unattributed) == 0

    # a second run refuses to mix its data into the first one's
    again = subprocess.run([str(COSTSPAN), "demo", "--data-dir", str(data)], capture_output=True, text=True)
    assert again.returncode == 2 and "--replace" in again.stderr


def test_money_reads_the_same_everywhere_in_the_report():
    assert [
        money(Decimal(v)) for v in ("25.584", "1234.5", "0.2843", "0.0128", "0.0000312", "0", "-0.0012")
    ] == ["$25.58", "$1,234.50", "$0.28", "$0.013", "$0.000031", "$0.00", "-$0.0012"]
    # rounding up to the next digit keeps two significant digits
    assert [amount(Decimal(v)) for v in ("0.0999", "0.999", "0.00999")] == ["0.10", "1.00", "0.010"]


def test_progress_is_one_line_rewritten_on_a_terminal_and_a_few_plain_lines_elsewhere():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    progress = Progress(terminal)
    progress.update("day 1 of 2 sent")
    progress.update("day 2 of 2 sent")
    progress.done("sent 2 days")
    assert terminal.getvalue() == "\r\x1b[Kday 1 of 2 sent\r\x1b[Kday 2 of 2 sent\r\x1b[Ksent 2 days\n"
    log = io.StringIO()
    progress = Progress(log, plain_every_s=3600)  # an update at most an hour: none here
    progress.update("day 1 of 2 sent")
    progress.done("sent 2 days")
    assert log.getvalue() == "sent 2 days\n"
    log = io.StringIO()
    progress = Progress(log, plain_every_s=0)
    progress.update("day 1 of 2 sent")
    progress.done("sent 2 days")
    assert log.getvalue() == "day 1 of 2 sent\nsent 2 days\n"
