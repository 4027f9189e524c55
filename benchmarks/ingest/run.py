"""Sustained OTLP/gRPC ingest, end to end: costspan serve against Arize Phoenix, in one run.

    python benchmarks/ingest/run.py        (or: make bench-ingest)

What is measured. GenAI traces (an agent span, 1-6 LLM calls in the mixed dialects of the processors
benchmark, HTTP client spans under some calls, tool spans) are encoded in advance as OTLP
``ExportTraceServiceRequest`` protobufs of 512 spans (the OpenTelemetry SDK's default export batch). Several
client processes send them over OTLP/gRPC with grpcio, using the TraceService ``Export`` method, pre-encoded
bytes and several requests in flight each, so the clients are not the bottleneck. A client that is told
UNAVAILABLE waits for the RetryInfo delay and sends the request again, as the OpenTelemetry exporters do.

costspan runs as a real ``costspan serve`` process on its defaults: a request is acknowledged once it is in
the fsynced write-ahead log (durability on). The clock runs from the first request until ``costspan sql``
counts every LLM call in ``llm_calls``: acknowledged, durable, priced and queryable.

Arize Phoenix (``pip install arize-phoenix``, into its own virtualenv that this script creates on first use,
``.venv-phoenix``; never a costspan dependency) runs as ``phoenix serve`` with its SQLite database in a
temporary directory, and receives the same traces with every call in its OpenInference dialect, over its
own OTLP/gRPC receiver. Phoenix acknowledges before it stores, so its clock runs until its ``spans`` table
holds every span. It gets a smaller sample: it stores a few hundred spans per second.

Printed per system: spans; seconds until every request was acknowledged and until every span was stored;
spans/s (stored); the server's peak RSS (``VmHWM``, summed over its processes: costspan's pipeline workers
are processes of their own); the server's and the clients' CPU use (100% is one core busy, all of the
server's processes counted); how busy the whole machine was (all cores, every process, others' included);
requests refused for backpressure. Then the ratio of spans/s. Each system runs ``--runs`` times (a fresh
data directory each time) and the best run counts, because the machine may be shared. Speed is reported,
never asserted.

``--baseline COSTSPAN`` runs another build's ``costspan serve`` (an earlier commit installed in a virtualenv
of its own) under the same load, its runs alternating with this build's, and prints the ratio of spans/s:
before and after a change, side by side.

``--stages`` instead times each stage a request goes through in the collector, one after the other in this
process (receive, write-ahead log, decode, processor chain, Parquet, Prometheus), in microseconds per span:
where the time goes. ``--profile FILE`` records the collector with py-spy during a run.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.util
import multiprocessing as mp
import os
import random
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BATCH = 512
COSTSPAN = Path(sys.executable).with_name("costspan")
PHOENIX_VENV = ROOT / ".venv-phoenix"
TICKS = os.sysconf("SC_CLK_TCK")
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def _processors_benchmark() -> Any:
    """The processors benchmark's span generator (mixed dialects), loaded from its file."""
    spec = importlib.util.spec_from_file_location(
        "processors_benchmark", ROOT / "benchmarks/processors/run.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


# -- the workload -------------------------------------------------------------------------------------


def build_traces(n: int) -> tuple[list[Any], list[Any]]:
    """``n`` spans in the processors benchmark's mixed dialects, and the same spans as OpenInference."""
    bench = _processors_benchmark()
    calls: list[tuple[str, str, int, int, int]] = []

    def recording(make: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
        def wrapped(rng: Any, provider: str, model: str, inp: int, out: int, cached: int) -> dict[str, Any]:
            calls.append((provider, model, inp, out, cached))
            return make(rng, provider, model, inp, out, cached)

        return wrapped

    # the same random sequence as the processors benchmark; each LLM call's parameters are kept in order
    bench.DIALECTS[:] = [(scope, recording(make), weight) for scope, make, weight in bench.DIALECTS]
    # A sustained stream of this rate is thousands of traces a second: a new trace every millisecond, so that
    # the collector writes the hour partitions a live stream fills (the processors benchmark's traces are ten
    # seconds apart, which at this rate would put every batch across several hours, a file for each).
    mixed = bench.build_spans(n, trace_interval_ms=1)
    rng = random.Random(11)
    openinference = []
    llm = iter(calls)
    for span in mixed:
        if span.name.startswith("chat "):
            provider, model, inp, out, cached = next(llm)
            attributes = bench._openinference(rng, provider, model, inp, out, cached)
            scope = "openinference.instrumentation.openai"
        elif span.name == "invoke_agent":
            attributes = {"openinference.span.kind": "AGENT", "agent.name": "planner"}
            scope = "openinference.instrumentation.agents"
        elif span.name.startswith("execute_tool"):
            attributes = {"openinference.span.kind": "TOOL", "tool.name": "search"}
            scope = "openinference.instrumentation.agents"
        else:
            attributes, scope = dict(span.attributes), span.scope_name
        openinference.append(dataclasses.replace(span, attributes=attributes, scope_name=scope))
    return mixed, openinference


def encode(spans: list[Any]) -> list[tuple[int, bytes]]:
    """Requests of ``BATCH`` spans, grouped by resource and scope as SDKs send them: (spans, bytes)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.trace.v1.trace_pb2 import Span as SpanProto

    def value(v: Any) -> AnyValue:
        if isinstance(v, bool):
            return AnyValue(bool_value=v)
        if isinstance(v, int):
            return AnyValue(int_value=v)
        if isinstance(v, float):
            return AnyValue(double_value=v)
        return AnyValue(string_value=str(v))

    def attributes(mapping: Any) -> list[KeyValue]:
        return [KeyValue(key=k, value=value(v)) for k, v in mapping.items()]

    requests = []
    for i in range(0, len(spans), BATCH):
        chunk = spans[i : i + BATCH]
        grouped: dict[tuple[Any, ...], dict[str | None, list[Any]]] = defaultdict(lambda: defaultdict(list))
        for span in chunk:
            grouped[tuple(sorted(span.resource.items()))][span.scope_name].append(span)
        request = ExportTraceServiceRequest()
        for resource, scopes in grouped.items():
            rs = request.resource_spans.add()
            rs.resource.attributes.extend(attributes(dict(resource)))
            for scope, members in scopes.items():
                ss = rs.scope_spans.add()
                ss.scope.name = scope or ""
                ss.spans.extend(
                    SpanProto(
                        trace_id=bytes.fromhex(s.trace_id),
                        span_id=bytes.fromhex(s.span_id),
                        parent_span_id=bytes.fromhex(s.parent_span_id or ""),
                        name=s.name,
                        kind=s.kind or 1,
                        start_time_unix_nano=s.start_ns,
                        end_time_unix_nano=s.end_ns,
                        attributes=attributes(s.attributes),
                    )
                    for s in members
                )
        requests.append((len(chunk), request.SerializeToString()))
    return requests


# -- the clients --------------------------------------------------------------------------------------


def _write_requests(path: Path, requests: Iterable[tuple[int, bytes]]) -> None:
    with path.open("wb") as fh:
        for spans, payload in requests:
            fh.write(struct.pack("<II", spans, len(payload)) + payload)


def _read_requests(path: Path) -> Iterator[tuple[int, bytes]]:
    data = path.read_bytes()
    offset = 0
    while offset < len(data):
        spans, size = struct.unpack_from("<II", data, offset)
        offset += 8
        yield spans, data[offset : offset + size]
        offset += size


def _client(path: str, address: str, in_flight: int, ready: Any, go: Any, results: Any) -> None:
    """One client process; what it reports (or why it failed) goes to ``results``."""
    try:
        results.put(_send(path, address, in_flight, ready, go))
    except Exception as exc:
        results.put(exc)
        raise


def _send(path: str, address: str, in_flight: int, ready: Any, go: Any) -> tuple[int, int, float]:
    """Sends the requests of ``path`` with ``in_flight`` outstanding, retrying UNAVAILABLE."""
    import grpc
    from google.rpc import error_details_pb2
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

    requests = list(_read_requests(Path(path)))
    channel = grpc.insecure_channel(address, options=[("grpc.max_send_message_length", 64 << 20)])
    grpc.channel_ready_future(channel).result(timeout=60)
    export = channel.unary_unary(
        EXPORT, request_serializer=None, response_deserializer=ExportTraceServiceResponse.FromString
    )
    ready.set()
    go.wait()
    started = os.times()
    pending: list[tuple[Any, int, bytes]] = []
    queue = list(reversed(requests))
    acknowledged = refused = 0
    while queue or pending:
        while queue and len(pending) < in_flight:
            spans, payload = queue.pop()
            pending.append((export.future(payload, timeout=600), spans, payload))
        future, spans, payload = pending.pop(0)
        try:
            response = future.result()
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE:
                raise
            refused += 1
            delay = 1.0
            for key, value in error.trailing_metadata() or ():
                if key == "google.rpc.retryinfo-bin":
                    info = error_details_pb2.RetryInfo.FromString(value)
                    delay = info.retry_delay.seconds + info.retry_delay.nanos / 1e9
            time.sleep(delay)
            queue.append((spans, payload))
            continue
        acknowledged += spans - response.partial_success.rejected_spans
    ended = os.times()
    channel.close()
    return acknowledged, refused, (ended.user - started.user) + (ended.system - started.system)


@dataclass
class Load:
    acknowledged: int
    refused: int
    client_cpu_s: float


class Clients:
    """Client processes, started and connected before the clock starts."""

    def __init__(self, requests: list[tuple[int, bytes]], address: str, processes: int, in_flight: int):
        self.dir = Path(tempfile.mkdtemp(prefix="costspan-bench-clients-"))
        ctx = mp.get_context("spawn")  # fresh processes: grpc and forking do not mix
        self.go = ctx.Event()
        self.results = ctx.Queue()
        self.readies = []
        self.procs = []
        for i in range(processes):
            path = self.dir / f"client-{i}.bin"
            _write_requests(path, requests[i::processes])
            ready = ctx.Event()
            self.readies.append(ready)
            self.procs.append(
                ctx.Process(
                    target=_client, args=(str(path), address, in_flight, ready, self.go, self.results)
                )
            )
        for proc in self.procs:
            proc.start()
        for ready in self.readies:
            if not ready.wait(120):
                raise RuntimeError("a client could not connect")

    def start(self) -> None:
        self.go.set()

    def join(self) -> Load:
        outcomes = [self.results.get(timeout=1800) for _ in self.procs]
        for outcome in outcomes:
            if isinstance(outcome, Exception):
                raise RuntimeError(f"a client failed: {outcome!r}")
        for proc in self.procs:
            proc.join(30)
        shutil.rmtree(self.dir, ignore_errors=True)
        return Load(sum(o[0] for o in outcomes), sum(o[1] for o in outcomes), sum(o[2] for o in outcomes))


# -- measuring a server process -----------------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the collector's pipeline workers are processes of their own)."""
    children: dict[int, list[int]] = defaultdict(list)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children[int(fields[1])].append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        tree.append(todo.pop())
        todo.extend(children.get(tree[-1], ()))
    return tree


def cpu_seconds(pid: int, tree: bool = True) -> float:
    """CPU time of ``pid`` and (``tree``) its descendants, alive now."""
    total = 0.0
    for p in process_tree(pid) if tree else [pid]:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime
    return total


def peak_rss_mb(pid: int) -> float:
    """The sum of the peak RSS (``VmHWM``) of ``pid`` and its descendants: an upper bound of their peak."""
    total = 0.0
    for p in process_tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) / 1024
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:
            if response.status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def machine_busy() -> tuple[int, int]:
    """Busy and total jiffies of all cores (/proc/stat): how loaded the machine was, by anyone."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return sum(fields) - idle, sum(fields)


@dataclass
class Result:
    system: str
    spans: int
    acknowledged_s: float  # every request answered OK
    seconds: float  # every span stored and queryable
    peak_rss_mb: float
    cpu_percent: float  # the server's, 100% = one core
    main_cpu_percent: float  # the server's first process (costspan: the receivers; its workers are the rest)
    client_cpu_percent: float
    machine_percent: float  # all cores, every process on the machine: 100% = all busy
    refused: int

    @property
    def rate(self) -> float:
        return self.spans / self.seconds


def measure(system: str, pid: int, clients: Clients, spans: int, stored: Callable[[], bool]) -> Result:
    """Run the load; the clock stops when ``stored()`` says every span is stored and queryable."""
    cpu0, main0, busy0 = cpu_seconds(pid), cpu_seconds(pid, tree=False), machine_busy()
    t0 = time.perf_counter()
    clients.start()
    load = clients.join()
    acknowledged_s = time.perf_counter() - t0
    if load.acknowledged != spans:
        raise RuntimeError(f"{system} acknowledged {load.acknowledged} of {spans} spans")
    while not stored():
        time.sleep(0.02)
    seconds = time.perf_counter() - t0
    cpu, main, busy1 = cpu_seconds(pid) - cpu0, cpu_seconds(pid, tree=False) - main0, machine_busy()
    machine = 100 * (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1])
    return Result(
        system,
        spans,
        acknowledged_s,
        seconds,
        peak_rss_mb(pid),
        100 * cpu / seconds,
        100 * main / seconds,
        100 * load.client_cpu_s / seconds,
        machine,
        load.refused,
    )


# -- the two systems ----------------------------------------------------------------------------------


@contextlib.contextmanager
def serving(argv: list[str], ready_url: str, env: dict[str, str] | None = None) -> Iterator[int]:
    """A server process, once ``ready_url`` answers 200; yields its pid, terminates it afterwards."""
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=log)
        try:
            wait_http(ready_url, proc)
            yield proc.pid
            if proc.poll() is not None:
                raise RuntimeError(f"{argv[0]} exited during the run")
        except BaseException:
            log.seek(0)
            sys.stderr.write(log.read()[-4000:].decode(errors="replace"))
            raise
        finally:
            proc.terminate()
            proc.wait(60)


def run_costspan(
    requests: list[tuple[int, bytes]],
    llm_calls: int,
    args: argparse.Namespace,
    costspan: Path = COSTSPAN,
    system: str = "costspan",
) -> Result:
    grpc_port, http_port, admin_port = free_port(), free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="costspan-bench-") as data:
        argv = [
            str(costspan),
            "serve",
            "--data-dir",
            data,
            "--grpc-address",
            f"127.0.0.1:{grpc_port}",
            "--http-address",
            f"127.0.0.1:{http_port}",
            "--admin-address",
            f"127.0.0.1:{admin_port}",
        ]
        with serving(argv, f"http://127.0.0.1:{admin_port}/readyz") as pid:
            profiler = _profile(pid, args.profile)
            clients = Clients(requests, f"127.0.0.1:{grpc_port}", args.clients, args.in_flight)
            # The write-ahead log's checkpoint tells when every logged request is processed (a file read: the
            # polling costs the collector nothing); then the real question goes to `costspan sql`.
            result = measure(
                system,
                pid,
                clients,
                sum(n for n, _ in requests),
                lambda: _checkpoint(data) >= len(requests) and _sql_count(data) >= llm_calls,
            )
            if profiler is not None:
                profiler.send_signal(signal.SIGINT)
                profiler.wait(120)
            stored = _sql_count(data)
            if stored != llm_calls:
                raise RuntimeError(f"costspan sql counts {stored} calls in llm_calls, not {llm_calls}")
    return result


def _profile(pid: int, output: str | None) -> subprocess.Popen[bytes] | None:
    """py-spy sampling the collector's threads, when asked for (``pip install py-spy``)."""
    if output is None:
        return None
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    argv = [py_spy, "record", "--pid", str(pid), "--format", "raw", "--output", output, "--threads"]
    argv.append("--subprocesses")  # the pipeline workers
    profiler = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # attached before the load starts
    return profiler


def _checkpoint(data_dir: str) -> int:
    """The write-ahead log's checkpoint: how many requests the pipeline has processed (collector/wal.py)."""
    try:
        return int((Path(data_dir, "wal", "checkpoint").read_text().split() or ["0"])[0])
    except (FileNotFoundError, ValueError):  # not yet written
        return 0


def _sql_count(data_dir: str) -> int:
    query = "SELECT count(*) FROM llm_calls"
    argv = [str(COSTSPAN), "sql", "--data-dir", data_dir, "--format", "csv", query]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=120)
    return int(out.stdout.splitlines()[1])


def phoenix_venv() -> Path:
    """Phoenix in a virtualenv of its own, created on first use."""
    phoenix = PHOENIX_VENV / "bin" / "phoenix"
    if not phoenix.exists():
        print(f"installing arize-phoenix into {PHOENIX_VENV} (once) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(PHOENIX_VENV)], check=True)
        pip = [str(PHOENIX_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", "arize-phoenix"]
        subprocess.run(pip, check=True)
    return phoenix


def run_phoenix(requests: list[tuple[int, bytes]], args: argparse.Namespace) -> Result:
    phoenix = phoenix_venv()
    http_port, grpc_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="phoenix-bench-") as working_dir:
        env = {
            **os.environ,
            "PHOENIX_WORKING_DIR": working_dir,  # its SQLite database goes here
            "PHOENIX_HOST": "127.0.0.1",
            "PHOENIX_PORT": str(http_port),
            "PHOENIX_GRPC_PORT": str(grpc_port),
            "PHOENIX_TELEMETRY_ENABLED": "false",
        }
        with serving([str(phoenix), "serve"], f"http://127.0.0.1:{http_port}/healthz", env) as pid:
            database = _phoenix_database(Path(working_dir))
            clients = Clients(requests, f"127.0.0.1:{grpc_port}", 1, args.in_flight)
            spans = sum(n for n, _ in requests)
            # Phoenix answers before it stores: its clock runs until its database holds every span
            result = measure("Arize Phoenix", pid, clients, spans, lambda: _phoenix_count(database) >= spans)
    return result


def _phoenix_database(working_dir: Path) -> Path:
    found = sorted(working_dir.glob("*.db"))
    if not found:
        raise RuntimeError(f"no SQLite database in Phoenix's working directory {working_dir}")
    return found[0]


def _phoenix_count(database: Path) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)) as con:
        return con.execute("SELECT count(*) FROM spans").fetchone()[0]


# -- where the collector's time goes ------------------------------------------------------------------


def stages(requests: list[tuple[int, bytes]]) -> None:
    """Each stage a request goes through in the collector, timed alone in this process, per span."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from costspan.collector.otlp import batch_from_request
    from costspan.collector.receivers._decoded_size import inspect
    from costspan.collector.receivers._sink import valid_spans
    from costspan.collector.runtime import configure_gc
    from costspan.collector.wal import WriteAheadLog
    from costspan.collector.worker import MAX_BATCH_SPANS
    from costspan.exporters.parquet import ParquetWriter
    from costspan.exporters.prometheus import CostMetrics, CostTally
    from costspan.processors import SpanBatch, build_chain

    chain, metrics = build_chain(), CostMetrics()
    configure_gc()
    seconds: dict[str, float] = defaultdict(float)

    def timed(stage: str, fn: Callable[..., Any], *args: Any) -> Any:
        t = time.perf_counter()
        out = fn(*args)
        seconds[stage] += time.perf_counter() - t
        return out

    with tempfile.TemporaryDirectory(prefix="costspan-bench-stages-") as tmp:
        wal, writer = WriteAheadLog(Path(tmp, "wal")), ParquetWriter(tmp)
        pending: list[Any] = []
        for i, (_, payload) in enumerate(requests):
            request = timed("receive: parse the request", ExportTraceServiceRequest.FromString, payload)
            timed("receive: check span ids and decoded size", inspect, request, len(payload))
            # the request is logged as the bytes it came as
            timed("log: append + fsync (one request per fsync)", lambda e: wal.commit(wal.append(e)), payload)
            parsed = timed("worker: parse the logged request", ExportTraceServiceRequest.FromString, payload)
            batch, _, _ = timed(
                "worker: decode spans (otlp.py)", lambda r: valid_spans(batch_from_request(r)), parsed
            )
            pending.append(batch)
            if sum(len(b) for b in pending) >= MAX_BATCH_SPANS or i == len(requests) - 1:
                done = timed("worker: processor chain", lambda b: chain(SpanBatch.concat(b)), pending)
                calls = [c for c in done.calls if c is not None]
                timed("worker: Parquet write + fsync", writer.write, calls)
                tally = timed("worker: Prometheus sums of the batch", CostTally.of, calls)
                timed("receive: Prometheus counters", metrics.add, tally)
                pending = []
        wal.close()
    spans = sum(n for n, _ in requests)
    total = sum(seconds.values())
    print(f"where the time goes: {spans:,} spans through each stage in one process, one core")
    print("(receive: the receivers' process; worker: a pipeline worker, for the spans of its partition)")
    for stage, s in seconds.items():
        print(f"  {stage:45} {s / spans * 1e6:7.2f} us/span  {s / total:6.1%}")
    print(
        f"  {'all stages':45} {total / spans * 1e6:7.2f} us/span  = {spans / total:,.0f} spans/s on one core"
    )


# -- main ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=300_000, help="spans sent to costspan per run")
    parser.add_argument("--phoenix-spans", type=int, default=5_120, help="spans sent to Phoenix per run")
    parser.add_argument("--clients", type=int, default=3, help="client processes sending to costspan")
    parser.add_argument("--in-flight", type=int, default=4, help="requests outstanding per client")
    parser.add_argument("--runs", type=int, default=3, help="runs per system; the best counts")
    parser.add_argument("--phoenix-runs", type=int, default=1)
    parser.add_argument("--no-phoenix", action="store_true", help="measure costspan only")
    parser.add_argument(
        "--profile", metavar="FILE", help="record where costspan's time goes with py-spy (pip install py-spy)"
    )
    parser.add_argument("--stages", action="store_true", help="time each stage of the collector in-process")
    parser.add_argument(
        "--baseline",
        metavar="COSTSPAN",
        type=Path,
        help="the costspan command of another build (an earlier commit's virtualenv, say): it runs the same "
        "load, its runs alternating with this build's, and the ratio of spans/s is printed",
    )
    args = parser.parse_args()

    mixed, openinference = build_traces(max(args.spans, args.phoenix_spans))
    costspan_requests = encode(mixed[: args.spans])
    llm_calls = sum(1 for s in mixed[: args.spans] if s.name.startswith("chat "))
    phoenix_requests = encode(openinference[: args.phoenix_spans])
    size = sum(len(p) for _, p in costspan_requests) / args.spans
    print(
        f"workload   {args.spans:,} spans ({llm_calls:,} LLM calls) in {len(costspan_requests)} requests of "
        f"{BATCH} spans, {size:.0f} bytes/span; {args.clients} clients x {args.in_flight} in flight; "
        f"{os.cpu_count()} cores"
    )

    if args.stages:
        stages(costspan_requests)
        return
    results: dict[str, list[Result]] = {"costspan": [], "baseline": [], "Arize Phoenix": []}
    for i in range(args.runs):
        # alternating, so that a busier spell of a shared machine does not favour one build
        if args.baseline is not None:
            results["baseline"].append(
                run_costspan(costspan_requests, llm_calls, args, args.baseline, "baseline")
            )
            print(f"  baseline run {i + 1}: {results['baseline'][-1].rate:,.0f} spans/s", flush=True)
        results["costspan"].append(run_costspan(costspan_requests, llm_calls, args))
        print(f"  costspan run {i + 1}: {results['costspan'][-1].rate:,.0f} spans/s", flush=True)
    for i in range(0 if args.no_phoenix else args.phoenix_runs):
        results["Arize Phoenix"].append(run_phoenix(phoenix_requests, args))
        print(f"  Arize Phoenix run {i + 1}: {results['Arize Phoenix'][-1].rate:,.0f} spans/s", flush=True)
    best = {system: max(runs, key=lambda r: r.rate) for system, runs in results.items() if runs}

    print()
    print(
        f"{'system':14} {'spans':>8} {'acked s':>8} {'stored s':>8} {'spans/s':>8} {'peak RSS MB':>11} "
        f"{'server CPU':>10} {'(first)':>7} {'clients CPU':>11} {'machine':>7} {'refused':>7}"
    )
    for r in best.values():
        print(
            f"{r.system:14} {r.spans:>8,} {r.acknowledged_s:>8.2f} {r.seconds:>8.2f} {r.rate:>8,.0f} "
            f"{r.peak_rss_mb:>11.0f} {r.cpu_percent:>9.0f}% {r.main_cpu_percent:>6.0f}% "
            f"{r.client_cpu_percent:>10.0f}% "
            f"{r.machine_percent:>6.0f}% {r.refused:>7}"
        )
    if "baseline" in best:
        ratio = best["costspan"].rate / best["baseline"].rate
        print(f"ratio          costspan / baseline ({args.baseline}) = {ratio:.3f}x spans/s, end to end")
    if "Arize Phoenix" in best:
        ratio = best["costspan"].rate / best["Arize Phoenix"].rate
        print(f"ratio          costspan / Arize Phoenix = {ratio:,.1f}x spans/s, end to end")
    print("Best of each system's runs on a shared machine. CPU: 100% = one core, all the server's processes;")
    print(
        "(first): its first process alone (costspan's receivers; its pipeline workers are the rest). machine:"
    )
    print("all cores, every process. spans/s counts until every span is stored and queryable.")
    print("Goal: costspan >= 50,000 spans/s.")


if __name__ == "__main__":
    main()
