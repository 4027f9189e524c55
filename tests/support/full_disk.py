"""A real ``costspan serve`` whose data directory is on a small tmpfs that fills up, under a load of real OTLP
exporters: the scenario of tests/collector/test_full_disk_e2e.py and benchmarks/faults/full_disk.py.

One round: four senders (two OpenTelemetry SDK gRPC exporters, two HTTP/protobuf ones) send batches of
priced GenAI spans with unique ids; a ballast file fills the file system until the collector refuses;
the refusals are looked at (HTTP status and Retry-After, gRPC code and RetryInfo, the refusal counter,
``/readyz``); the collector is killed (SIGKILL) and started again while the disk is still full; the ballast
is deleted, the senders go on (their exporters retry what was refused), then stop; once the log is
processed, every stored ``llm_calls`` row is counted with DuckDB over the Parquet files. A batch counts as
acknowledged only when its exporter's ``export()`` returned SUCCESS.

Mounting needs root: :class:`MountRefused` is raised where it is not allowed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import grpc
import httpx2 as httpx
from google.rpc.error_details_pb2 import RetryInfo
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

from tests.support.collector import Collector
from tests.support.health import health, value
from tests.support.load import Sender, SpanKey, exporter
from tests.support.otlp_requests import chat_request

FS_SIZE = "16m"
SPANS_PER_BATCH = 20


class MountRefused(RuntimeError):
    """A tmpfs cannot be mounted here (not root, or no mount namespace)."""


@contextlib.contextmanager
def small_filesystem(where: Path, size: str = FS_SIZE) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``where`` for the block's duration."""
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise MountRefused(done.stderr.strip() or f"mount exited {done.returncode}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False, capture_output=True)


def fill(path: Path) -> int:
    """Write ``path`` until its file system is full (to the last page); returns the bytes written."""
    written = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for chunk in (1 << 20, 1 << 16, 1 << 12):
            block = b"\0" * chunk
            while True:
                try:
                    n = os.write(fd, block)
                except OSError as exc:
                    if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                        raise
                    break
                written += n
                if n < chunk:
                    break
    finally:
        os.close(fd)
    return written


class AliveCollector(Collector):
    """Started once it is alive: restarted on a full disk, its ``/readyz`` rightly answers 503."""

    READY = "/healthz"


@dataclass
class Round:
    """What one round saw and counted."""

    sent: int = 0
    acknowledged: int = 0
    stored: int = 0
    lost: int = 0  # acknowledged, not stored
    doubled: int = 0  # rows beyond the first of a span
    unknown: int = 0  # stored, never sent
    refused_disk: float = 0  # requests refused for the disk (reason disk), both collectors together
    processing_errors: float = 0  # batches the workers failed to store and retried (both collectors)
    http_refusal: tuple[int, str | None] = (0, None)  # status, Retry-After
    grpc_refusal: tuple[str, float | None] = ("", None)  # code, RetryInfo delay
    readyz_full: int = 0
    disk_when_full: tuple[float, float] = (0, 0)  # the data directory's free bytes and size, as /metrics says
    readyz_after: int = 0
    acknowledged_after_free: int = 0
    seconds: float = 0.0
    log: list[str] = field(default_factory=list)


class _Drain(threading.Thread):
    """Reads a collector's stderr, so that its pipe never fills and blocks it; keeps the lines."""

    def __init__(self, proc: subprocess.Popen) -> None:
        super().__init__(daemon=True)
        self.proc = proc
        self.lines: list[str] = []
        self.start()

    def run(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.decode(errors="replace").rstrip())


def _start(collector: Collector, drains: list[_Drain]) -> None:
    collector.start()
    assert collector.proc is not None
    drains.append(_Drain(collector.proc))


def _refused_disk(collector: Collector) -> float:
    return value(health(collector), "costspan_collector_requests_refused_total", reason="disk")


def _processing_errors(collector: Collector) -> float:
    errors = "costspan_collector_exporter_errors_total"
    return value(health(collector), errors, exporter="parquet", kind="retryable")


def _readyz(collector: Collector) -> int:
    return httpx.get(f"http://127.0.0.1:{collector.admin}/readyz", timeout=5).status_code


def _wait(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting: {what}")
        time.sleep(0.05)


def _keys(request: ExportTraceServiceRequest) -> set[SpanKey]:
    return {
        (s.trace_id.hex(), s.span_id.hex())
        for rs in request.resource_spans
        for ss in rs.scope_spans
        for s in ss.spans
    }


def probe_refusals(
    collector: Collector, sent: set[SpanKey], acknowledged: set[SpanKey]
) -> tuple[tuple[int, str | None], tuple[str, float | None]]:
    """One request by hand over each protocol: the HTTP status and Retry-After, the gRPC code and RetryInfo.
    Each request is large enough (256 KiB) to need pages the full file system has not got; its spans go into
    ``sent`` and, when it was taken after all, ``acknowledged``."""
    request = chat_request(2, padding=128 * 1024)
    sent |= _keys(request)
    answer = httpx.post(
        f"http://127.0.0.1:{collector.http}/v1/traces",
        content=request.SerializeToString(),
        headers={"content-type": "application/x-protobuf"},
        timeout=10,
    )
    http = (answer.status_code, answer.headers.get("retry-after"))
    if answer.status_code == 200:
        acknowledged |= _keys(request)
    request = chat_request(2, padding=128 * 1024)
    sent |= _keys(request)
    channel = grpc.insecure_channel(f"127.0.0.1:{collector.grpc}")
    with channel:
        try:
            TraceServiceStub(channel).Export(request, timeout=10)
            acknowledged |= _keys(request)
            return http, ("OK", None)
        except grpc.RpcError as exc:
            trailers = dict(exc.trailing_metadata() or ())  # type: ignore[attr-defined]
            delay = None
            if "google.rpc.retryinfo-bin" in trailers:
                retry = RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"])
                delay = retry.retry_delay.seconds + retry.retry_delay.nanos / 1e9
            return http, (exc.code().name, delay)  # type: ignore[attr-defined]


def stored_rows(data_dir: Path) -> Counter[SpanKey]:
    """Each (trace id, span id) of ``llm_calls`` with its number of rows, read by DuckDB's Hive reader."""
    pattern = f"{data_dir / 'llm_calls'}/**/*.parquet"
    if not list((data_dir / "llm_calls").glob("**/*.parquet")):
        return Counter()
    con = duckdb.connect(":memory:")
    try:
        rows = con.execute(
            "SELECT trace_id, span_id, count(*) FROM read_parquet(?, hive_partitioning = true) GROUP BY ALL",
            [pattern],
        ).fetchall()
    finally:
        con.close()
    return Counter({(t, s): n for t, s, n in rows})


@contextlib.contextmanager
def _watched(collector: Collector, drains: list[_Drain], result: Round) -> Iterator[None]:
    """A round's body: a failed check is raised with what the collector said; at the end the collector is
    gone (killed if still running) and its log is kept in ``result``."""
    try:
        yield
    except AssertionError as exc:
        if collector.proc is not None and collector.proc.poll() is None:
            collector.kill(signal.SIGKILL)
        said = "\n".join(line for drain in drains for line in drain.lines[-60:])
        raise AssertionError(f"{exc}\n--- the collector's log ---\n{said}") from exc
    finally:
        if collector.proc is not None and collector.proc.poll() is None:
            collector.kill(signal.SIGKILL)
        for drain in drains:
            drain.join(5)
            result.log.extend(drain.lines)


def _senders(collector: Collector) -> list[Sender]:
    """Four senders, gRPC and HTTP by turns, sending until told to stop (not started)."""
    return [
        Sender(
            i,
            exporter("grpc", collector.grpc, 20) if i % 2 == 0 else exporter("http", collector.http, 20),
            batches=None,
            spans_per_batch=SPANS_PER_BATCH,
        )
        for i in range(4)
    ]


def _count(result: Round, collector: Collector, sent: set[SpanKey], acked: set[SpanKey]) -> None:
    """What went in against what came out: stored, lost (acknowledged, not stored), doubled, unknown."""
    rows = stored_rows(collector.data_dir)
    result.sent, result.acknowledged, result.stored = len(sent), len(acked), len(rows)
    result.lost = len(acked - rows.keys())
    result.doubled = sum(n - 1 for n in rows.values())
    result.unknown = len(rows.keys() - sent)


def run_round(workdir: Path, *, restart_while_full: bool = True) -> Round:
    """One round in ``workdir`` (a fresh folder); the tmpfs is mounted under it and unmounted at the end."""
    began = time.monotonic()
    result = Round()
    drains: list[_Drain] = []
    with small_filesystem(workdir / "fs") as mount:
        collector = AliveCollector(mount / "data")
        with _watched(collector, drains, result):
            _start(collector, drains)
            senders = _senders(collector)
            for sender in senders:
                sender.start()
            probe_sent: set[SpanKey] = set()
            probe_acked: set[SpanKey] = set()

            def acknowledged() -> int:
                return sum(len(s.acknowledged) for s in senders)

            _wait(lambda: acknowledged() >= 400, 30, "the load got under way")
            ballast = mount / "ballast"
            fill(ballast)
            _wait(lambda: _refused_disk(collector) > 0, 30, "the collector refused for its disk")
            result.readyz_full = _readyz(collector)
            samples = health(collector)
            result.disk_when_full = (
                value(samples, "costspan_collector_data_dir_free_bytes"),
                value(samples, "costspan_collector_data_dir_size_bytes"),
            )
            result.http_refusal, result.grpc_refusal = probe_refusals(collector, probe_sent, probe_acked)
            if restart_while_full:
                result.refused_disk += _refused_disk(collector)
                result.processing_errors += _processing_errors(collector)
                collector.kill(signal.SIGKILL)  # a crash while full: the restart keeps what was acknowledged
                _start(collector, drains)
                fill(mount / "ballast-2")  # whatever the restart freed (files past a checkpoint) is taken too
                _wait(
                    lambda: _refused_disk(collector) > 0, 30, "the restarted collector refused for its disk"
                )
            result.refused_disk += _refused_disk(collector)
            at_free = acknowledged()
            ballast.unlink()
            with contextlib.suppress(FileNotFoundError):
                (mount / "ballast-2").unlink()
            _wait(lambda: acknowledged() >= at_free + 400, 60, "the load went on once space returned")
            result.acknowledged_after_free = acknowledged() - at_free
            for sender in senders:
                sender.stop.set()
            for sender in senders:
                sender.join(60)
                assert not sender.is_alive(), f"{sender.name} did not finish"
            _wait(
                lambda: value(health(collector), "costspan_collector_wal_pending_bytes") == 0,
                60,
                "the pipeline processed its write-ahead log",
            )
            result.readyz_after = _readyz(collector)
            result.processing_errors += _processing_errors(collector)
            collector.kill(signal.SIGTERM)
            _count(
                result,
                collector,
                probe_sent.union(*(s.sent for s in senders)),
                probe_acked.union(*(s.acknowledged for s in senders)),
            )
    result.seconds = time.monotonic() - began
    return result


def run_self_fill(workdir: Path, headroom: int = 3 * 1024 * 1024) -> Round:
    """The collector fills its own disk: a ballast leaves ``headroom`` bytes, and the load's write-ahead log
    takes them. The collector refuses short of the last bytes, stores what it logged, frees its processed
    segments and takes requests again, without help; the load then stops and everything is counted."""
    began = time.monotonic()
    result = Round()
    drains: list[_Drain] = []
    with small_filesystem(workdir / "fs") as mount:
        collector = AliveCollector(mount / "data")
        with _watched(collector, drains, result):
            _start(collector, drains)
            ballast = mount / "ballast"
            fill(ballast)
            with ballast.open("r+b") as fh:
                fh.truncate(max(0, ballast.stat().st_size - headroom))
            senders = _senders(collector)
            for sender in senders:
                sender.padding = 4096  # the log fills the disk in seconds
                sender.start()
            _wait(lambda: _refused_disk(collector) > 0, 60, "the collector refused for its disk")
            at_refusal = sum(len(s.acknowledged) for s in senders)
            _wait(
                lambda: sum(len(s.acknowledged) for s in senders) >= at_refusal + 400,
                60,
                "the collector took requests again after refusing",
            )
            result.acknowledged_after_free = sum(len(s.acknowledged) for s in senders) - at_refusal
            for sender in senders:
                sender.stop.set()
            for sender in senders:
                sender.join(60)
                assert not sender.is_alive(), f"{sender.name} did not finish"
            _wait(
                lambda: value(health(collector), "costspan_collector_wal_pending_bytes") == 0,
                60,
                "the pipeline processed its write-ahead log",
            )
            result.refused_disk = _refused_disk(collector)
            result.processing_errors = _processing_errors(collector)
            collector.kill(signal.SIGTERM)
            _count(
                result,
                collector,
                set().union(*(s.sent for s in senders)),
                set().union(*(s.acknowledged for s in senders)),
            )
    result.seconds = time.monotonic() - began
    return result
