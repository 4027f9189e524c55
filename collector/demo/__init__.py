"""``costspan demo``: a collector with weeks of realistic LLM traffic in it, and a cost report to start from.

It starts ``costspan serve`` on free local ports with its own data directory, backfills the history of a
small company's LLM use through OTLP (four teams, their features and models, a support agent with planner /
retriever / executor steps, RAG, cache hits, weekday seasonality, one prompt change that multiplied a
feature's cost), then makes live calls with the real openai and anthropic SDKs under costspan's
instrumentation against a local stand-in of both APIs (streams, the Responses API, embeddings, cache
reads and writes, an agent turn), waits until every call is stored and priced, and prints a cost report
and queries to try.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEFAULT_DIR = "./costspan-demo"


def register(subparsers: Any) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="start a collector, fill it with weeks of realistic LLM traffic, print a cost report",
        description=__doc__,
    )
    demo.add_argument(
        "--data-dir", default=DEFAULT_DIR, help=f"where the demo's data goes (default {DEFAULT_DIR})"
    )
    demo.add_argument("--days", type=int, default=45, help="days of history to backfill (default 45)")
    demo.add_argument("--replace", action="store_true", help="delete the data directory first if it exists")
    demo.add_argument(
        "--keep-running",
        action="store_true",
        help="leave the collector running after the report",
    )
    demo.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir)
    if data_dir.exists() and any(data_dir.iterdir()):
        if not args.replace:
            print(
                f"costspan demo: {data_dir} already holds data; use --replace to start over, or --data-dir",
                file=sys.stderr,
            )
            return 2
        shutil.rmtree(data_dir)
    if args.days < 1:
        print("costspan demo: --days is at least 1", file=sys.stderr)
        return 2
    from ._config import write_config

    collector = _Collector(data_dir, write_config(data_dir))
    _stop_on_sigterm()
    try:
        collector.start()
        print(f"collector: OTLP/gRPC 127.0.0.1:{collector.grpc}, data in {data_dir}", flush=True)
        return _fill_and_report(collector, args)
    except KeyboardInterrupt:
        print("\ncostspan demo: stopped", file=sys.stderr)
        return 130
    finally:  # Ctrl-C or SIGTERM at any point, or the end of --keep-running: the collector with the demo
        collector.stop()


def _fill_and_report(collector: _Collector, args: argparse.Namespace) -> int:
    from costspan.exporters.duckdb_views import read_views

    from ._history import Backfill, backfill
    from ._progress import Progress
    from ._report import report

    started = time.monotonic()
    progress = Progress()
    print(f"backfilling {args.days} days of history over OTLP ...", flush=True)

    def day_made(done: int, sent: Backfill) -> None:
        progress.update(f"  day {done} of {args.days} sent: {sent.llm_calls:,} LLM calls")

    sent = backfill(f"127.0.0.1:{collector.grpc}", args.days, on_day=day_made)
    progress.done(f"sent {sent.spans:,} spans ({sent.llm_calls:,} LLM calls)")
    expected = sent.llm_calls
    if _sdks_installed():
        from ._live import run_live

        print("live calls: the openai and anthropic SDKs, instrumented, against a local provider", flush=True)
        live = run_live(f"127.0.0.1:{collector.grpc}")
        print(f"made {live} live LLM calls", flush=True)
        expected += live
    else:
        print("live calls skipped: the openai and anthropic SDKs are not installed (costspan[demo])")
    print("waiting until every call is stored ...", flush=True)
    stored = _wait_for_calls(
        collector.data_dir,
        expected,
        on_count=lambda n: progress.update(f"  {n:,} of {expected:,} calls stored and priced"),
    )
    if stored < expected:
        progress.done("")
        print(f"costspan demo: only {stored} of {expected} calls were stored", file=sys.stderr)
        return 1
    progress.done(f"{expected:,} calls stored and priced in {time.monotonic() - started:.1f} s")
    print("compacting the history's files (one a day) ...", flush=True)
    compacted = _wait_for_compaction(
        collector.data_dir,
        on_count=lambda left, days: progress.update(f"  {days - left} of {days} days in one file"),
    )
    progress.done("" if compacted else "compaction is not done yet: the report reads the files as they are")
    print(read_views(collector.data_dir, report), flush=True)
    _report_anomalies(collector)
    _report_budgets(collector.data_dir)
    if args.keep_running:
        print(flush=True)
        _restart_for_forecasts(collector, progress)
    print(_next_steps(collector, args.keep_running), flush=True)
    if args.keep_running:
        print(
            f"\nThe collector keeps running (Ctrl-C stops it): OTLP/gRPC 127.0.0.1:{collector.grpc}, "
            f"OTLP/HTTP 127.0.0.1:{collector.http}, Prometheus metrics {collector.admin_url}/metrics\n"
            f"Open the console: {collector.admin_url}/console/",
            flush=True,
        )
        # Ctrl-C, or SIGTERM (kill, a service manager): how it is meant to end
        with contextlib.suppress(KeyboardInterrupt):
            collector.wait()
    return 0


def _stop_on_sigterm() -> None:
    """SIGTERM ends the demo as Ctrl-C does, its collector stopped with it rather than left behind."""
    import signal

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def _restart_for_forecasts(collector: _Collector, progress: Any) -> None:
    """Start the collector again before the console is opened: its forecast job reads the daily series once a
    UTC day, at its first run, which came before the history was sent; started again, it reads the history
    and the console's overview has the month's forecast."""
    from datetime import UTC

    from costspan.exporters import answer_tables

    print("starting the collector again, so that its forecasts read the history just sent ...", flush=True)
    started = time.time()
    collector.restart()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        table = answer_tables.read(collector.data_dir, "forecasts").to_pylist()
        if any(r["generated_at"].replace(tzinfo=UTC).timestamp() >= started and r["method"] for r in table):
            progress.done("the month's forecasts are made")
            return
        progress.update(f"  waiting for the forecast job ({time.time() - started:.0f} s)")
        time.sleep(0.5)
    progress.done("the forecasts are not made yet: the console shows them once the collector's job has run")


def _report_budgets(data_dir: Path) -> None:
    from datetime import UTC, datetime

    from ._budgets import print_budgets, wait_for_evaluation

    if wait_for_evaluation(data_dir, datetime.now(UTC)):
        print_budgets(data_dir, sys.stdout)
    else:
        print("\nBudgets: the collector has not evaluated them yet (costspan budgets shows them)")


def _report_anomalies(collector: _Collector) -> None:
    from datetime import UTC, datetime

    from ._anomalies import print_anomalies
    from ._config import anomaly_settings

    assert collector.config is not None
    print_anomalies(collector.data_dir, anomaly_settings(collector.config), datetime.now(UTC), sys.stdout)


def _wait_for_compaction(
    data_dir: Path, timeout_s: float = 180, on_count: Callable[[int, int], None] | None = None
) -> bool:
    """Whether the collector's compaction merged each day before today into one file within the time;
    ``on_count`` is told how many days are left of how many, as it goes."""
    from datetime import UTC, datetime

    from costspan.exporters.layout import CALLS, days, files_in

    today = datetime.now(UTC).date()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        history = [folder for day, folder in days(data_dir, CALLS) if day < today]
        left = sum(len(files_in(folder)) > 1 for folder in history)
        if not left:
            return True
        if on_count is not None:
            on_count(left, len(history))
        time.sleep(1)
    return False


def _sdks_installed() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("openai", "anthropic"))


def _wait_for_calls(
    data_dir: Path, expected: int, timeout_s: float = 300, on_count: Callable[[int], None] | None = None
) -> int:
    import duckdb

    from costspan.exporters.duckdb_views import read_views

    deadline = time.monotonic() + timeout_s
    stored = 0
    while time.monotonic() < deadline:
        try:
            row = read_views(data_dir, lambda con: con.execute("SELECT count(*) FROM llm_calls").fetchone())
        except duckdb.Error:  # compaction swapping folder after folder: count again in a moment
            row = None
        stored = row[0] if row else stored
        if stored >= expected:
            break
        if on_count is not None:
            on_count(stored)
        time.sleep(0.5)
    return stored


def _next_steps(collector: _Collector, keep_running: bool) -> str:
    sql = f"costspan sql --data-dir {collector.data_dir}"
    if keep_running:
        browser = f"In a browser: {collector.admin_url}/console/ while the demo's collector runs"
    else:
        assert collector.config is not None
        browser = (
            "In a browser: costspan demo --keep-running prints the console's address and keeps it up;"
            " or, with no\nother collector on the default ports,"
            f" costspan serve --data-dir {collector.data_dir} --config {collector.config}\nand open http://127.0.0.1:9464/console/"
        )
    return f"""
Try it yourself:
  {sql} "SELECT team, feature, sum(cost_usd) FROM llm_calls GROUP BY ALL ORDER BY 3 DESC"
  {sql} "SELECT prompt_key, prompt_version, avg(input_tokens), sum(cost_usd) FROM llm_calls GROUP BY ALL"
  {sql} "SELECT start_time::DATE, sum(cost_usd) FROM llm_calls WHERE feature = 'fraud-explain' GROUP BY 1"
  {sql} --format csv "SELECT * FROM llm_calls LIMIT 100" > calls.csv
{browser}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Collector:
    """``costspan serve`` in a child process, on free local ports."""

    def __init__(self, data_dir: Path, config: Path | None = None) -> None:
        self.data_dir = data_dir
        self.config = config
        self.grpc, self.http, self.admin = _free_port(), _free_port(), _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin}"

    def start(self, timeout_s: float = 60) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "costspan.collector",
                "serve",
                *(["--config", str(self.config)] if self.config else []),
                "--data-dir",
                str(self.data_dir),
                "--grpc-address",
                f"127.0.0.1:{self.grpc}",
                "--http-address",
                f"127.0.0.1:{self.http}",
                "--admin-address",
                f"127.0.0.1:{self.admin}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL if not os.environ.get("COSTSPAN_DEMO_DEBUG") else None,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"costspan serve exited with status {self.proc.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/readyz", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("costspan serve did not become ready")

    def restart(self) -> None:
        """Stop it and start it again on new free ports (the old ones may linger a while in TIME_WAIT)."""
        self.stop()
        self.grpc, self.http, self.admin = _free_port(), _free_port(), _free_port()
        self.start()

    def wait(self) -> None:
        if self.proc is not None:
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
