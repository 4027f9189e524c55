"""What forwarding costs the pipeline, and that a dead target costs Parquet nothing.

    python benchmarks/forward/run.py        (or: make bench-forward)

What is measured. 40,000 spans (20,000 priced chat calls with message content to redact, each with an HTTP
client span under it) in 80 OTLP requests of 500 spans, logged to the write-ahead log first; then the
pipeline worker (one thread: decode, the default processor chain, Parquet, Prometheus counters) runs
until every span is in Parquet. Three runs side by side, each in a fresh data directory:

- ``parquet only``: no forward exporter;
- ``+ forward``: an OTLP/HTTP forward exporter (gzip) to a local endpoint that accepts everything (in its
  own process, decoding what it receives, on the same machine); the time to Parquet, and the time until
  the endpoint has every span;
- ``+ forward, target down``: the same exporter pointed at a port where nothing listens (connections are
  refused, the exporter backs off and retries): the time to Parquet, and the queue it leaves.

Printed: spans per second to Parquet for each run, the ratios to ``parquet only``, forwarded spans per
second, and the forward queue's bytes. Speed is reported, not asserted.
"""

from __future__ import annotations

import gzip
import multiprocessing
import socket
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from costspan.collector.pipeline import Pipeline
from costspan.collector.queued_exporter import QueuedExporter, RetrySettings
from costspan.collector.runtime import configure_gc
from costspan.exporters.otlp_forward import ForwardSettings, OTLPForwarder

REQUESTS = 80
CALLS_PER_REQUEST = 250  # each with an HTTP span: 500 spans per request
T0 = 1_760_000_000_000_000_000
PROMPT = '[{"role": "user", "parts": [{"type": "text", "content": "' + "summarise this ticket " * 20 + '"}]}]'


def requests() -> list[ExportTraceServiceRequest]:
    out = []
    n = 0
    for _ in range(REQUESTS):
        spans = []
        for _ in range(CALLS_PER_REQUEST):
            n += 1
            trace = n.to_bytes(16, "big")
            call = {
                "gen_ai.operation.name": AnyValue(string_value="chat"),
                "gen_ai.provider.name": AnyValue(string_value="openai"),
                "gen_ai.request.model": AnyValue(string_value="gpt-4o-mini" if n % 3 else "gpt-4o"),
                "gen_ai.usage.input_tokens": AnyValue(int_value=1000 + n % 500),
                "gen_ai.usage.output_tokens": AnyValue(int_value=100 + n % 50),
                "gen_ai.input.messages": AnyValue(string_value=PROMPT),
                "costspan.team": AnyValue(string_value=f"team-{n % 7}"),
            }
            http = {
                "http.request.method": AnyValue(string_value="POST"),
                "url.full": AnyValue(string_value="https://api.openai.com/v1/chat/completions"),
            }
            for span_id, parent, name, attrs in (
                (2 * n, b"", "chat", call),
                (2 * n + 1, (2 * n).to_bytes(8, "big"), "POST", http),
            ):
                spans.append(
                    Span(
                        trace_id=trace,
                        span_id=span_id.to_bytes(8, "big"),
                        parent_span_id=parent,
                        name=name,
                        kind=3,
                        start_time_unix_nano=T0 + n * 1000,
                        end_time_unix_nano=T0 + n * 1000 + 900_000_000,
                        attributes=[KeyValue(key=k, value=v) for k, v in attrs.items()],
                    )
                )
        resource = [KeyValue(key="service.name", value=AnyValue(string_value="support-bot"))]
        out.append(
            ExportTraceServiceRequest(
                resource_spans=[
                    ResourceSpans(resource={"attributes": resource}, scope_spans=[ScopeSpans(spans=spans)])
                ]
            )
        )
    return out


def _serve_sink(port: Any, spans: Any) -> None:
    """An OTLP/HTTP endpoint on 127.0.0.1 that accepts everything and counts the spans. It runs in its own
    process, so decoding what it receives does not compete with the pipeline for the interpreter."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = gzip.decompress(self.rfile.read(int(self.headers["content-length"])))
            request = ExportTraceServiceRequest.FromString(body)
            count = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
            with spans.get_lock():
                spans.value += count
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port.value = server.server_address[1]
    server.serve_forever()


class _Sink:
    def __init__(self) -> None:
        self._port = multiprocessing.Value("i", 0)
        self._spans = multiprocessing.Value("q", 0)
        self.process = multiprocessing.Process(
            target=_serve_sink, args=(self._port, self._spans), daemon=True
        )
        self.process.start()
        while not self._port.value:
            time.sleep(0.01)

    @property
    def spans(self) -> int:
        return self._spans.value

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._port.value}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(
    batch: list[ExportTraceServiceRequest], endpoint: str | None, sink: _Sink | None = None
) -> dict[str, float]:
    total = sum(len(ss.spans) for r in batch for rs in r.resource_spans for ss in rs.scope_spans)
    with tempfile.TemporaryDirectory() as tmp:
        exporters = []
        if endpoint is not None:
            retry = RetrySettings(initial_interval=0.5, max_interval=2.0, max_elapsed_time=0)
            forwarder = OTLPForwarder(ForwardSettings(endpoint=endpoint, timeout_s=5))
            exporters.append(QueuedExporter("otlp", forwarder, Path(tmp) / "queue", retry=retry))
        pipeline = Pipeline(tmp, exporters=exporters)
        for request in batch:
            pipeline.submit(request)
        started = time.perf_counter()
        pipeline.start()
        while pipeline.counts["spans_processed"] < total:
            time.sleep(0.005)
        to_parquet = time.perf_counter() - started
        result = {"parquet_s": to_parquet, "spans": total}
        if sink is not None:
            while sink.spans < total:
                time.sleep(0.005)
            result["forwarded_s"] = time.perf_counter() - started
        if exporters:
            result["queue_bytes"] = exporters[0].queue.pending_bytes
        pipeline.stop()
    return result


def main() -> None:
    configure_gc()
    sink = _Sink()
    base = run(requests(), None)
    forward = run(requests(), sink.endpoint, sink)
    down = run(requests(), f"http://127.0.0.1:{_free_port()}")
    sink.process.terminate()
    spans = base["spans"]
    print(f"{spans:,.0f} spans (half of them priced calls) in {REQUESTS} requests, one pipeline worker\n")
    print(f"{'run':<28}{'to Parquet':>12}{'spans/s':>12}{'vs parquet only':>18}")
    for name, result in (("parquet only", base), ("+ forward", forward), ("+ forward, target down", down)):
        rate = spans / result["parquet_s"]
        ratio = base["parquet_s"] / result["parquet_s"]
        print(f"{name:<28}{result['parquet_s']:>11.2f}s{rate:>12,.0f}{ratio:>17.2f}x")
    print(
        f"\nforwarded: every span at the endpoint after {forward['forwarded_s']:.2f}s "
        f"({spans / forward['forwarded_s']:,.0f} spans/s end to end)"
    )
    print(
        f"target down: {down['queue_bytes'] / 1e6:.1f} MB queued for the forward exporter, Parquet complete"
    )


if __name__ == "__main__":
    main()
