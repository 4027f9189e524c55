"""`kill -9` of a real `costspan serve`, or of one of its pipeline worker processes, in the middle of a
sustained load from several real OTLP exporters.

Four senders (two OpenTelemetry SDK gRPC exporters, two HTTP/protobuf exporters, each in its own thread)
send bounded numbers of batches of priced GenAI spans with unique ids. The collector is killed while they
send, restarted on the same data directory and ports, and the senders go on (their exporters retry while it
is down); or one pipeline worker is killed, and the collector starts it again. A batch counts as
acknowledged only when the exporter's ``export()`` returned SUCCESS.

What must hold after a graceful stop: every acknowledged span is in ``llm_calls`` exactly once; nothing is
there that was never sent; each row has its span's exact cost, and ``sum(cost_usd)`` is the exact Decimal
sum over the stored spans; DuckDB's, pyarrow's, polars' and pandas' Hive readers of the files get the same.
A batch whose acknowledgement was lost in the kill may or may not be stored (it was durable but unanswered):
acknowledged ⊆ stored ⊆ sent.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import threading
import time
from decimal import Decimal
from pathlib import Path

import duckdb
import httpx2 as httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

from tests.support.collector import Collector
from tests.support.load import Sender, SpanKey
from tests.support.readers import assert_plain_readers_agree

SENDERS = 4
BATCHES_PER_SENDER = 50
SPANS_PER_BATCH = 40
TOTAL_SPANS = SENDERS * BATCHES_PER_SENDER * SPANS_PER_BATCH
KILL_AFTER = BATCHES_PER_SENDER * SPANS_PER_BATCH // 4  # acknowledged spans of every sender before the kill


def health(collector: Collector, name: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{collector.admin}/metrics", timeout=5).text
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} is missing from /metrics"
    return float(match.group(1))


def wal_bytes(collector: Collector) -> float:
    return health(collector, "costspan_collector_wal_pending_bytes")


COMPACTING = "collector, compacting the day its spans are in"


@pytest.fixture
def collector(tmp_path, request):
    args: tuple[str, ...] = ()
    if request.node.callspec.params.get("victim") == COMPACTING:
        config = tmp_path / "collector.yaml"
        config.write_text("exporters:\n  parquet:\n    compaction_interval_s: 0.3\n")
        args = ("--config", str(config))
    running = Collector(tmp_path / "data").start(*args)
    running.args = args  # type: ignore[attr-defined]  # the same at a restart
    yield running
    if running.proc and running.proc.poll() is None:
        running.kill()


def pipeline_workers(pid: int) -> list[int]:
    """The collector's pipeline worker processes: its children started by multiprocessing's spawn (not its
    resource tracker)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if parent == pid and b"spawn_main" in (stat.parent / "cmdline").read_bytes():
                found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class DuplicateWatch(threading.Thread):
    """Reads the ``llm_calls`` files with DuckDB's Hive reader again and again while the collector writes,
    compacts and replays: no read that succeeds may hold a record twice."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(name="duplicate-watch", daemon=True)
        self.pattern = f"{data_dir / 'llm_calls'}/**/*.parquet"
        self.stop = threading.Event()
        self.reads: list[tuple[int, int]] = []
        self.failures = 0

    def run(self) -> None:
        con = duckdb.connect(":memory:")
        while not self.stop.wait(0.1):
            try:
                counted = con.execute(
                    "SELECT count(*), count(DISTINCT (trace_id, span_id)) "
                    "FROM read_parquet(?, hive_partitioning = true)",
                    [self.pattern],
                ).fetchone()
            except duckdb.Error:  # no file yet, or one listed and then swapped away by compaction
                self.failures += 1
                continue
            self.reads.append(counted)


@pytest.mark.parametrize("victim", ["collector", "pipeline worker", COMPACTING])
def test_kill_9_under_sustained_load_loses_nothing_acknowledged_and_doubles_nothing(collector, victim):
    # the compacting case sends spans of two days ago: the collector compacts their day while it writes it
    start_ns = time.time_ns() - 2 * 86_400 * 10**9 if victim == COMPACTING else None
    senders = [
        Sender(i, GrpcExporter(endpoint=f"127.0.0.1:{collector.grpc}", insecure=True, timeout=15), start_ns)
        if i % 2 == 0
        else Sender(
            i, HttpExporter(endpoint=f"http://127.0.0.1:{collector.http}/v1/traces", timeout=15), start_ns
        )
        for i in range(SENDERS)
    ]
    watch = DuplicateWatch(collector.data_dir)
    watch.start()
    for sender in senders:
        sender.start()

    deadline = time.monotonic() + 30
    while min(len(s.acknowledged) for s in senders) < KILL_AFTER:
        assert time.monotonic() < deadline, "the load did not get under way"
        time.sleep(0.01)
    assert collector.proc is not None
    workers = pipeline_workers(collector.proc.pid)
    assert workers, "the collector runs its pipeline in worker processes"
    if victim != "pipeline worker":
        collector.kill()  # SIGKILL, while the senders are sending
        assert any(s.is_alive() for s in senders), "the kill must land in the middle of the load"
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in workers):  # they die with it: none writes on beside the next one
            assert time.monotonic() < deadline, "pipeline workers outlived the collector"
            time.sleep(0.05)
        acknowledged_before_kill = sum(len(s.acknowledged) for s in senders)
        collector.start(*collector.args)  # the same data directory and ports; the exporters retry meanwhile
    else:
        assert health(collector, "costspan_collector_pipeline_workers") == len(workers)
        os.kill(workers[0], signal.SIGKILL)  # the collector starts it again; it goes on from its position
        assert any(s.is_alive() for s in senders), "the kill must land in the middle of the load"
        acknowledged_before_kill = sum(len(s.acknowledged) for s in senders)
        deadline = time.monotonic() + 30
        while health(collector, "costspan_collector_pipeline_worker_restarts_total") < 1:
            assert time.monotonic() < deadline, "the killed worker was not started again"
            time.sleep(0.1)
        assert health(collector, "costspan_collector_pipeline_workers") == len(workers)

    for sender in senders:
        sender.join(60)
        assert not sender.is_alive(), f"{sender.name} did not finish"
    sent = {key: cost for s in senders for key, cost in s.sent.items()}
    acknowledged = {key: cost for s in senders for key, cost in s.acknowledged.items()}
    assert len(sent) == TOTAL_SPANS  # every span id is unique
    assert len(acknowledged) > acknowledged_before_kill, "the load went on after the restart"

    # everything logged is processed, then a graceful stop
    deadline = time.monotonic() + 60
    while wal_bytes(collector) > 0:
        assert time.monotonic() < deadline, "the pipeline did not catch up with its write-ahead log"
        time.sleep(0.2)
    # a fast run can be over before the watch has read much: let it read the settled files a few times too
    deadline = time.monotonic() + 30
    while len(watch.reads) < 5:
        assert time.monotonic() < deadline, f"the duplicate watch could not read: {watch.failures} failures"
        time.sleep(0.1)
    collector.kill(signal.SIGTERM)
    assert collector.proc is not None and collector.proc.returncode == 0
    watch.stop.set()
    watch.join(30)
    print(f"duplicate watch: {len(watch.reads)} reads, {watch.failures} failed")
    assert len(watch.reads) >= 5 and all(rows == distinct for rows, distinct in watch.reads), watch.reads
    if victim == COMPACTING:
        assert list(collector.data_dir.glob("llm_calls/date=*/day-*.parquet")), "the day was not compacted"

    rows = collector.sql("SELECT trace_id, span_id, cost_usd FROM llm_calls")
    stored: dict[SpanKey, Decimal] = {}
    for row in rows:
        trace_id, span_id, cost = row.split(",")
        assert (trace_id, span_id) not in stored, f"{trace_id}/{span_id} is counted twice"
        stored[(trace_id, span_id)] = Decimal(cost)
    missing = acknowledged.keys() - stored.keys()
    assert not missing, f"{len(missing)} acknowledged spans are missing, e.g. {sorted(missing)[:3]}"
    unknown = stored.keys() - sent.keys()
    assert not unknown, f"{len(unknown)} stored spans were never sent"
    wrong = {key for key, cost in stored.items() if cost != sent[key]}
    assert not wrong, f"{len(wrong)} spans have the wrong cost, e.g. {sorted(wrong)[:3]}"
    [total] = collector.sql("SELECT sum(cost_usd) FROM llm_calls")
    assert Decimal(total) == sum(sent[key] for key in stored)
    assert Decimal(total) >= sum(acknowledged.values())
    # the files as other engines read them: the same rows and sum, nothing stored twice by the replay
    assert assert_plain_readers_agree(collector.data_dir) == (len(stored), Decimal(total))
