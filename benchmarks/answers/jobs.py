"""The collector's answer jobs together over 10 million stored calls: 100 budgets, the anomaly scan and the
forecasts, as one collector runs them, in CPU seconds per minute of wall time.

    python benchmarks/answers/jobs.py [--calls 10000000] [--days 45] [--minutes 60] [--dir DIR]
    (or: make bench-answers)

What is measured. ``--calls`` calls over ``--days`` days from the query benchmark's generator
(benchmarks/query/run.py), written through the collector's writer and compacted, as a running collector leaves
past days (``--dir``: an existing directory with calls is used as it is). The jobs are the ones ``costspan
serve`` builds from its configuration (:func:`costspan.collector.answers.jobs.jobs_from_config`): the 100
budgets of benchmarks/answers/budgets.py (every minute), the anomaly scan with its default settings (every 5
minutes) and the month's forecasts (every 15 minutes), each run as the collector's runner runs it (a new
connection over the data directory, the job, its answer table written). The clock is simulated: ``--minutes``
minutes after the first runs, each job runs when its interval says, in this one process; its CPU time is
measured (``time.process_time``: every thread, DuckDB's included).

CPU per minute of wall time is the simulated span's CPU over its minutes, plus the first runs spread over how
long they last: the anomaly scan reads its series from the files again every two days; the forecasts, and the
budgets' forecasts, read their daily series and fit their models again each day (a series changes once a
day), so the budgets' whole first run (the ledger read and every figure loaded, besides) is counted once a
day; their whole span is loaded again every hour inside the simulated span.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: benchmarks.*

from benchmarks.answers.budgets import data_arguments, hundred_budgets, stored_calls
from costspan.collector.answers.jobs import jobs_from_config
from costspan.collector.answers.runner import Job
from costspan.collector.config import CollectorConfig
from costspan.exporters.duckdb_views import read_views

# the first run again after this long: the anomaly series every two days, the forecasts' fits every day
COLD_AGAIN_MIN = {"anomalies": 48 * 60, "forecasts": 24 * 60, "budgets": 24 * 60}
REQUIRED = ("budgets", "anomalies")  # the pair with a goal: under 1 s of CPU per minute of wall time


def run_job(job: Job, data_dir: Path, now: datetime) -> float:
    """One run of ``job`` as the runner does it; its CPU seconds."""
    started = time.process_time()
    read_views(data_dir, lambda con: job.run(con, now))
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data_arguments(parser)
    parser.add_argument("--minutes", type=int, default=60, help="the simulated span after the first runs")
    args = parser.parse_args()
    data_dir = stored_calls(args, "costspan-bench-answers-")
    try:
        shutil.rmtree(data_dir / "answers", ignore_errors=True)  # no ledger, no anomalies: a first start
        calls = read_views(data_dir, lambda con: con.execute("SELECT count(*) FROM llm_calls").fetchone()[0])
        scale = Decimal(calls) / 10_000_000 * 45 / args.days
        config = CollectorConfig(data_dir=str(data_dir), budgets=hundred_budgets(scale))
        jobs = jobs_from_config(config)
        start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(
            minutes=args.minutes + 30
        )
        print(
            f"{calls:,} stored calls; jobs: " + ", ".join(f"{j.name} every {j.interval_s:g} s" for j in jobs)
        )

        cold = {job.name: run_job(job, data_dir, start) for job in jobs}
        warm: dict[str, list[float]] = defaultdict(list)
        for minute in range(1, args.minutes + 1):
            now = start + timedelta(minutes=minute)
            for job in jobs:
                if (minute * 60) % int(job.interval_s) == 0:
                    warm[job.name].append(run_job(job, data_dir, now))

        print(f"\nsimulated {args.minutes} minutes from {start:%Y-%m-%d %H:%M} UTC, process CPU seconds")
        print(f"{'job':<10} {'first run':>10} {'runs':>5} {'each (mean)':>12} {'CPU/min of wall':>16}")
        per_minute: dict[str, float] = {}
        for job in jobs:
            runs = warm[job.name]
            spread = cold[job.name] / COLD_AGAIN_MIN[job.name] if job.name in COLD_AGAIN_MIN else 0.0
            per_minute[job.name] = sum(runs) / args.minutes + spread
            mean = sum(runs) / len(runs) if runs else 0.0
            print(
                f"{job.name:<10} {cold[job.name]:>10.3f} {len(runs):>5} {mean:>12.3f} "
                f"{per_minute[job.name]:>16.3f}"
            )
        required = sum(per_minute[name] for name in REQUIRED)
        print(f"\nbudgets + anomaly scan: {required:.3f} s CPU per minute of wall time (goal: under 1 s)")
        print(f"all answer jobs (with the forecasts): {sum(per_minute.values()):.3f} s CPU per minute")
    finally:
        if not args.dir:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
