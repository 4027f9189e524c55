"""The collector's answers, kept current: each answer's job runs on one background thread, on its own
interval, over a fresh connection to the stored calls.

A job reads ``llm_calls`` (through :mod:`.spend`), writes what it found as an answer table
(:mod:`costspan.exporters.answer_tables`, which the SQL views read) and keeps the levels it exposes as
Prometheus gauges. A job that fails is logged and counted and runs again at its next turn: an answer is
never worth stopping the collector for, and ingest never waits for one (the thread only reads the files).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger("costspan.answers")


@dataclass
class Job:
    """``run(con, now)`` every ``interval_s`` seconds; ``now`` is timezone-aware UTC. ``metrics()`` gives
    the gauges of its last run."""

    name: str
    interval_s: float
    run: Callable[[duckdb.DuckDBPyConnection, datetime], None]
    metrics: Callable[[], Iterable[Metric]] = lambda: ()
    runs: int = 0
    failures: int = 0
    last_run_s: float = 0.0  # CPU seconds of the last run
    last_success: float | None = None  # unix time
    _due: float = field(default=0.0, repr=False)


class AnswerRunner(Collector):
    """Runs ``jobs`` over ``data_dir`` on a thread. As a prometheus-client collector it gives their gauges,
    ``costspan_collector_answer_runs_total{answer_job, outcome}`` and
    ``costspan_collector_answer_last_success_timestamp_seconds{answer_job}`` (not ``job``: Prometheus gives
    every scraped series the scrape's own ``job`` label)."""

    def __init__(
        self,
        data_dir: str | Path,
        jobs: Sequence[Job],
        connect: Callable[[Path], duckdb.DuckDBPyConnection] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.data_dir = Path(data_dir)
        self.jobs = list(jobs)
        self._connect = connect
        self._clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="costspan-answers", daemon=True)

    def start(self) -> None:
        if self.jobs:
            self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def run_due(self) -> None:
        """Run every job whose turn it is, now, on this thread."""
        for job in self.jobs:
            if time.monotonic() >= job._due and not self._stop.is_set():
                self._run(job)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_due()
            wait = min(job._due for job in self.jobs) - time.monotonic()
            self._stop.wait(max(0.5, wait))

    def _run(self, job: Job) -> None:
        from costspan.exporters.duckdb_views import read_views

        job._due = time.monotonic() + job.interval_s
        started = time.process_time()
        job.runs += 1
        try:
            # a job reads before it writes, so a read cut short by compaction's swap runs again at once
            read_views(self.data_dir, lambda con: job.run(con, self._clock()), connect_to=self._connect)
        except Exception:
            job.failures += 1
            log.exception("answers: %s failed; it runs again in %gs", job.name, job.interval_s)
        else:
            job.last_success = time.time()
        # process time counts every thread: a close enough account of a job's CPU on an idle collector
        job.last_run_s = time.process_time() - started

    def collect(self) -> Iterable[Metric]:
        runs = CounterMetricFamily(
            "costspan_collector_answer_runs",
            "Runs of each answer's job, by outcome",
            labels=["answer_job", "outcome"],
        )
        last = GaugeMetricFamily(
            "costspan_collector_answer_last_success_timestamp_seconds",
            "When each answer's job last ran without error (unix time)",
            labels=["answer_job"],
        )
        for job in self.jobs:
            runs.add_metric([job.name, "ok"], job.runs - job.failures)
            runs.add_metric([job.name, "failed"], job.failures)
            if job.last_success is not None:
                last.add_metric([job.name], job.last_success)
        yield runs
        yield last
        for job in self.jobs:
            yield from job.metrics()
