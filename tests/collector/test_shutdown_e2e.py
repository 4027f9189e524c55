"""Stopping and starting a real ``costspan serve``: SIGTERM under load from real OTLP exporters keeps every
acknowledged span, once, and exits 0; a restart right after a stop binds its ports; an operator's mistake
(a port in use, a data directory that cannot be used) is one line and exit 2 before anything is accepted.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import grpc
import httpx2 as httpx
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from tests.support.collector import COSTSPAN, Collector, free_port
from tests.support.load import Sender, exporter, stored_once
from tests.support.otlp_requests import chat_request

GRACE_S = 20
SPANS_PER_BATCH = 40
BATCHES = 20
STOP_AFTER = 5 * SPANS_PER_BATCH  # acknowledged spans of every sender before the SIGTERM


def config(tmp_path: Path) -> Path:
    path = tmp_path / "collector.yaml"
    path.write_text(f"service:\n  shutdown_grace_period: {GRACE_S}s\n")
    return path


def wal_pending(collector: Collector) -> float:
    text = httpx.get(f"http://127.0.0.1:{collector.admin}/metrics", timeout=5).text
    line = next(x for x in text.splitlines() if x.startswith("costspan_collector_wal_pending_bytes "))
    return float(line.split()[1])


def stop(collector: Collector, sig: int = signal.SIGTERM) -> tuple[int, str]:
    """Signal the collector and wait until it has exited (the stop ends within its grace period, plus the
    interpreter's start and end): its exit code and what it wrote to stderr."""
    assert collector.proc is not None
    os.kill(collector.proc.pid, sig)
    try:
        code = collector.proc.wait(GRACE_S + 30)
    except subprocess.TimeoutExpired:
        collector.proc.kill()
        raise AssertionError("the stop did not end") from None
    assert collector.proc.stderr is not None
    return code, collector.proc.stderr.read().decode()


@pytest.fixture
def collector(tmp_path):
    running = Collector(tmp_path / "data")
    running.args = ("--config", str(config(tmp_path)))  # type: ignore[attr-defined]
    running.start(*running.args)  # type: ignore[attr-defined]
    yield running
    if running.proc and running.proc.poll() is None:
        running.kill()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_under_load_stores_every_acknowledged_span_once_and_exits_0(collector, sig):
    senders = [
        Sender(
            i,
            exporter("grpc" if i % 2 == 0 else "http", collector.grpc if i % 2 == 0 else collector.http),
            batches=BATCHES,
            spans_per_batch=SPANS_PER_BATCH,
        )
        for i in range(6)
    ]
    for sender in senders:
        sender.start()
    deadline = time.monotonic() + 60
    while min(len(s.acknowledged) for s in senders) < STOP_AFTER:
        assert time.monotonic() < deadline, "the load did not get under way"
        time.sleep(0.01)

    code, stderr = stop(collector, sig)
    assert code == 0, stderr
    assert any(s.is_alive() for s in senders), "the stop must land in the middle of the load"
    # nothing is acknowledged while the collector is down: this is all it acknowledged (once the senders
    # have taken in the last answers)
    time.sleep(0.5)
    acknowledged_at_stop = {key for s in senders for key in list(s.acknowledged)}
    if "the write-ahead log keeps" not in stderr:  # it processed its log to the end within the grace period
        at_stop, doubled = stored_once(collector.sql("SELECT trace_id, span_id, cost_usd FROM llm_calls"))
        missing = acknowledged_at_stop - at_stop.keys()
        assert not missing, f"{len(missing)} spans acknowledged before the stop are not stored by it"
        assert doubled == 0

    collector.start(*collector.args)  # type: ignore[attr-defined]  # same ports: the exporters retry
    for sender in senders:
        sender.join(90)
        assert not sender.is_alive(), f"{sender.name} did not finish"
    deadline = time.monotonic() + 60
    while wal_pending(collector) > 0:
        assert time.monotonic() < deadline, "the pipeline did not catch up with its write-ahead log"
        time.sleep(0.2)
    code, stderr = stop(collector)
    assert code == 0, stderr

    sent = {key: cost for s in senders for key, cost in s.sent.items()}
    acknowledged = {key: cost for s in senders for key, cost in s.acknowledged.items()}
    assert len(acknowledged) > len(acknowledged_at_stop), "the load went on after the restart"
    stored, doubled = stored_once(collector.sql("SELECT trace_id, span_id, cost_usd FROM llm_calls"))
    missing = acknowledged.keys() - stored.keys()
    assert not missing, f"{len(missing)} acknowledged spans are missing, e.g. {sorted(missing)[:3]}"
    assert doubled == 0
    assert stored.keys() <= sent.keys()
    assert all(stored[key] == sent[key] for key in stored)


def time_wait_ports() -> set[int]:
    """Local ports of 127.0.0.1 TCP sockets in TIME_WAIT."""
    ports = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "06":  # TIME_WAIT
            ports.add(int(fields[1].split(":")[1], 16))
    return ports


def test_a_restart_right_after_a_stop_binds_every_port_while_the_old_connections_linger(collector):
    # connections the collector closes at its stop stay in TIME_WAIT on its side, on its ports
    admin = httpx.Client(base_url=f"http://127.0.0.1:{collector.admin}")
    receiver = httpx.Client(base_url=f"http://127.0.0.1:{collector.http}")
    channel = grpc.insecure_channel(f"127.0.0.1:{collector.grpc}")
    assert admin.get("/healthz").status_code == 200
    body = chat_request(1).SerializeToString()
    headers = {"content-type": "application/x-protobuf"}
    assert receiver.post("/v1/traces", content=body, headers=headers).status_code == 200
    trace_service_pb2_grpc.TraceServiceStub(channel).Export(
        trace_service_pb2.ExportTraceServiceRequest.FromString(chat_request(1).SerializeToString()),
        timeout=10,
    )
    code, stderr = stop(collector)
    assert code == 0, stderr
    for client in (admin, receiver, channel):  # the collector closed them first: TIME_WAIT is on its side
        client.close()
    assert collector.admin in time_wait_ports(), "the scenario needs the admin port's old connection"
    collector.start(*collector.args)  # type: ignore[attr-defined]  # at once, on the same ports
    assert httpx.get(f"http://127.0.0.1:{collector.admin}/readyz", timeout=5).status_code == 200
    still_serves(collector)


def serve(data_dir: Path, grpc_port: int, http_port: int, admin_port: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            str(COSTSPAN),
            "serve",
            "--data-dir",
            str(data_dir),
            "--grpc-address",
            f"127.0.0.1:{grpc_port}",
            "--http-address",
            f"127.0.0.1:{http_port}",
            "--admin-address",
            f"127.0.0.1:{admin_port}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def still_serves(collector: Collector) -> None:
    assert collector.proc is not None and collector.proc.poll() is None
    assert httpx.get(f"http://127.0.0.1:{collector.admin}/readyz", timeout=5).status_code == 200
    for protocol, port in (("grpc", collector.grpc), ("http", collector.http)):
        sender = Sender(0, exporter(protocol, port), batches=1, spans_per_batch=5)
        sender.run()
        assert len(sender.acknowledged) == 5


@pytest.mark.parametrize("taken", ["OTLP/gRPC", "OTLP/HTTP", "admin"])
def test_a_second_collector_on_a_port_in_use_exits_2_in_one_line_and_the_first_goes_on(
    collector, tmp_path, taken
):
    ports = {"OTLP/gRPC": free_port(), "OTLP/HTTP": free_port(), "admin": free_port()}
    ports[taken] = {"OTLP/gRPC": collector.grpc, "OTLP/HTTP": collector.http, "admin": collector.admin}[taken]
    second = tmp_path / "second"
    out = serve(second, ports["OTLP/gRPC"], ports["OTLP/HTTP"], ports["admin"])
    assert out.returncode == 2
    assert out.stderr == f"costspan serve: 127.0.0.1:{ports[taken]} ({taken}) is in use by another process\n"
    assert not (second / "wal").exists(), "nothing may start before every port is bound"
    still_serves(collector)


def test_a_second_collector_on_the_same_data_directory_exits_2(collector):
    out = serve(collector.data_dir, free_port(), free_port(), free_port())
    assert out.returncode == 2
    assert (
        out.stderr
        == f"costspan serve: data directory {collector.data_dir} is in use by another costspan serve\n"
    )
    still_serves(collector)


def test_a_data_directory_that_cannot_be_created_is_one_line_and_exit_2(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    out = serve(blocker / "data", free_port(), free_port(), free_port())
    assert out.returncode == 2
    assert (
        out.stderr
        == f"costspan serve: data directory {blocker / 'data'}: cannot create or write it: Not a directory\n"
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only directory")
def test_a_data_directory_that_cannot_be_written_is_one_line_and_exit_2(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o500)
    try:
        out = serve(data, free_port(), free_port(), free_port())
    finally:
        data.chmod(0o700)
    assert out.returncode == 2
    assert out.stderr.startswith(f"costspan serve: data directory {data}: cannot create or write it: ")
    assert out.stderr.count("\n") == 1


def test_a_port_held_by_any_process_is_named_before_anything_starts(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        admin = holder.getsockname()[1]
        out = serve(tmp_path / "data", free_port(), free_port(), admin)
    assert out.returncode == 2
    assert out.stderr == f"costspan serve: 127.0.0.1:{admin} (admin) is in use by another process\n"
    assert not (tmp_path / "data" / "wal").exists()
