"""Instrumentation overhead: time and CPU each instrumentation adds to one LLM call, streaming and not.

    python benchmarks/instrumentation/run.py        (or: make bench-instrumentation)

What is measured. The local provider server (costspan.collector.demo.provider) runs in a process of its
own. For each instrumentation a fresh worker process sets up the OpenTelemetry SDK as an application does
(a ``TracerProvider`` with a ``BatchSpanProcessor`` whose exporter only counts, a ``MeterProvider`` with
one reader), then makes calls with the real ``openai`` SDK (httpx2) on one client: non-streaming chat
completions, and streams (about 16 chunks each) whose request does not ask for ``include_usage``.

The worker alternates blocks of calls with the instrumentation switched on (``instrument()``) and off
(``uninstrument()``), so that each "on" block has an "off" block beside it under the same conditions of a
shared machine; "added" is the median over pairs of the difference per call. Wall time counts the calls
only: the latency the application sees. CPU time is the whole process's (the span processor's thread
included) over the calls and then a flush of spans and a collection of metrics, so that work an
instrumentation defers past the call is counted too. Before each block the garbage collector runs and the
survivors are frozen, so that one block does not pay for the garbage of the one before. Last column:
whether the instrumentation's span of a stream carries the token usage (none can, unless it asks for it as
costspan does).

Two tables. The first has the calls go to the server. The second replays: each worker records the server's
responses once, then its client's transport answers every request with the recorded one from its
connection pool, so that the SDK, the transport and the instrumentations run as before but no socket, no
server time and less of the machine's scheduling is in the figures; on a shared machine it is the steadier
of the two. Speed is reported, not asserted.

The comparison: OpenLLMetry (opentelemetry-instrumentation-openai), OpenInference
(openinference-instrumentation-openai), the official OpenTelemetry GenAI package
(opentelemetry-instrumentation-genai-openai) and plain HTTP client spans
(opentelemetry-instrumentation-httpx). A last row, ``sdk-span``, is the floor under every span-making
instrumentation on this machine: one SDK span per call made at the same transport method costspan wraps,
with the attributes costspan writes on a call (fixed values: no request or response is read), ended when
the transport returns. What costspan adds beyond it is its own work.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

ROOT = Path(__file__).resolve().parents[2]

INSTRUMENTATIONS: dict[str, str | None] = {
    "none": None,
    "costspan": "costspan.instrumentation:CostspanInstrumentor",
    "openllmetry": "opentelemetry.instrumentation.openai:OpenAIInstrumentor",
    "openinference": "openinference.instrumentation.openai:OpenAIInstrumentor",
    "otel-genai": "opentelemetry.instrumentation.genai.openai:OpenAIInstrumentor",
    "httpx-spans": "opentelemetry.instrumentation.httpx:HTTPX2ClientInstrumentor",
    "sdk-span": "__main__:OneSpanInstrumentor",  # the worker runs this file as __main__
}
CONTROL = "none (control)"
FLOOR = "sdk-span"
MESSAGES = [{"role": "user", "content": "Say hello."}]
USAGE_KEYS = ("gen_ai.usage.output_tokens", "llm.token_count.completion", "gen_ai.usage.completion_tokens")


# -- the worker: one instrumentation, one process ---------------------------------------------------------


class OneSpanInstrumentor:
    """The ``sdk-span`` row: one SDK span per request at ``httpx2.HTTPTransport.handle_request``, with the
    attributes costspan writes on a call, and nothing else."""

    REQUEST: ClassVar[dict[str, Any]] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "server.address": "127.0.0.1",
        "gen_ai.request.stream": False,
        "server.port": 8000,
        "gen_ai.request.model": "gpt-4o-mini",
    }
    RESPONSE: ClassVar[dict[str, Any]] = {
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.response.id": "chatcmpl-cs000001",
        "openai.response.service_tier": "default",
        "gen_ai.usage.input_tokens": 10,
        "gen_ai.usage.output_tokens": 13,
        "gen_ai.usage.cache_read.input_tokens": 0,
        "gen_ai.usage.reasoning.output_tokens": 0,
    }

    def instrument(self, tracer_provider: Any, **_: Any) -> None:
        import httpx2
        from opentelemetry.trace import SpanKind
        from wrapt import wrap_function_wrapper

        tracer = tracer_provider.get_tracer("sdk-span")
        attributes = {**self.REQUEST, **self.RESPONSE}

        def handle_request(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            start = time.time_ns()
            response = wrapped(*args, **kwargs)
            tracer.start_span(
                "chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=attributes, start_time=start
            ).end()
            return response

        wrap_function_wrapper(httpx2.HTTPTransport, "handle_request", handle_request)

    def uninstrument(self) -> None:
        import httpx2
        from opentelemetry.instrumentation.utils import unwrap

        unwrap(httpx2.HTTPTransport, "handle_request")


def worker(name: str, base_url: str, pairs: int, block: int, stream: bool, replay: bool) -> dict[str, Any]:
    import gc
    import importlib

    import openai
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class CountingExporter(SpanExporter):
        def __init__(self) -> None:
            self.spans = 0
            self.with_usage = 0

        def export(self, spans: Any) -> SpanExportResult:
            for span in spans:
                self.spans += 1
                attributes = span.attributes or {}
                if any(key in attributes for key in USAGE_KEYS):
                    self.with_usage += 1
            return SpanExportResult.SUCCESS

    exporter = CountingExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    target = INSTRUMENTATIONS[name]
    instrumentor = None
    options: dict[str, Any] = {"tracer_provider": tracer_provider, "meter_provider": meter_provider}
    if target is not None:
        module_name, class_name = target.split(":")
        instrumentor = getattr(importlib.import_module(module_name), class_name)()
        if name == "costspan":
            options["endpoints"] = {base_url: "openai"}
    client = openai.OpenAI(base_url=base_url, api_key="bench", max_retries=0)
    if replay:
        client = openai.OpenAI(
            base_url=base_url, api_key="bench", max_retries=0, http_client=_replaying_client(client, base_url)
        )

    def one() -> None:
        if stream:
            for _ in client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True):
                pass
        else:
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    def timed_block() -> tuple[float, float]:
        gc.collect()
        gc.freeze()
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for _ in range(block):
            one()
        wall = time.perf_counter() - wall0
        tracer_provider.force_flush()
        reader.get_metrics_data()
        cpu = time.process_time() - cpu0
        return wall / block * 1e6, cpu / block * 1e6

    for _ in range(block):  # warm up, both ways
        one()
    if instrumentor is not None:
        instrumentor.instrument(**options)
        for _ in range(block):
            one()
        instrumentor.uninstrument()
    tracer_provider.force_flush()
    exporter.spans = exporter.with_usage = 0
    on_wall, on_cpu, off_wall, off_cpu = [], [], [], []
    for _ in range(pairs):
        wall, cpu = timed_block()
        off_wall.append(wall)
        off_cpu.append(cpu)
        if instrumentor is not None:
            instrumentor.instrument(**options)
        wall, cpu = timed_block()
        if instrumentor is not None:
            instrumentor.uninstrument()
        on_wall.append(wall)
        on_cpu.append(cpu)
    tracer_provider.force_flush()
    return {
        "off_wall_us": off_wall,
        "on_wall_us": on_wall,
        "off_cpu_us": off_cpu,
        "on_cpu_us": on_cpu,
        "spans": exporter.spans,
        "usage": exporter.with_usage >= pairs * block,  # every call's span carries usage
    }


def _replaying_client(client: Any, base_url: str) -> Any:
    """An httpx2 client whose transport answers every request with a response recorded from the server.

    The transport is httpx2's own ``HTTPTransport``, so instrumentations that wrap it (costspan, HTTP spans)
    and those that wrap the SDK alike run as they do on the network; only its connection pool (the private
    ``_pool``) is replaced, by one that replays. A call then costs what the client-side code costs, and the
    provider server's time and a shared machine's scheduling drop out. The recording is made before any
    instrumentation is switched on.
    """
    import httpcore2
    import httpx2

    recorded: dict[tuple[bool, bool], tuple[int, list[tuple[bytes, bytes]], list[bytes]]] = {}

    def kind(body: bytes) -> tuple[bool, bool]:
        return b'"stream":true' in body, b"include_usage" in body

    class Recording:
        def __init__(self, pool: Any) -> None:
            self.pool = pool

        def handle_request(self, request: Any) -> Any:
            body = b"".join(request.stream)
            sent = httpcore2.Request(
                request.method,
                request.url,
                headers=request.headers,
                content=body,
                extensions=request.extensions,
            )
            response = self.pool.handle_request(sent)
            chunks = list(response.stream)
            response.close()
            recorded[kind(body)] = (response.status, response.headers, chunks)
            return httpcore2.Response(response.status, headers=response.headers, content=iter(chunks))

        def close(self) -> None:
            self.pool.close()

    class Replaying:
        def handle_request(self, request: Any) -> Any:
            status, headers, chunks = recorded[kind(b"".join(request.stream))]
            return httpcore2.Response(status, headers=headers, content=iter(chunks))

        def close(self) -> None:
            pass

    transport = httpx2.HTTPTransport()
    transport._pool = Recording(transport._pool)
    recorder = type(client)(
        base_url=base_url, api_key="bench", max_retries=0, http_client=httpx2.Client(transport=transport)
    )
    recorder.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    for options in ({}, {"stream_options": {"include_usage": True}}):
        for _ in recorder.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, **options
        ):
            pass
    replaying = httpx2.HTTPTransport()
    replaying._pool = Replaying()
    return httpx2.Client(transport=replaying)


# -- the runner ----------------------------------------------------------------------------------------------


def _run_worker(name: str, base_url: str, args: Any, stream: bool, replay: bool) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRACELOOP_", "OPENINFERENCE_"))}
    env["PYTHONPATH"] = str(ROOT)
    env["OTEL_SEMCONV_STABILITY_OPT_IN"] = "gen_ai_latest_experimental"
    command = [sys.executable, __file__, "--worker", name, "--base-url", base_url]
    command += ["--pairs", str(args.pairs), "--block", str(args.block)] + (["--stream"] if stream else [])
    command += ["--replay"] if replay else []
    out = subprocess.run(command, capture_output=True, text=True, timeout=1800, env=env, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"worker {name} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _start_server() -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen(
        [sys.executable, "-m", "costspan.collector.demo.provider", "--max-seconds", "3600"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    line = server.stdout.readline()  # "provider server on http://127.0.0.1:PORT (OpenAI base_url ...)"
    return server, line.split("OpenAI base_url ")[1].rstrip(")\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pairs", type=int, default=30, help="on/off pairs of blocks per worker (default 30)"
    )
    parser.add_argument("--block", type=int, default=50, help="calls per block (default 50)")
    parser.add_argument("--only", nargs="*", help="instrumentations to measure (default: all)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--stream", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--replay", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(
            json.dumps(worker(args.worker, args.base_url, args.pairs, args.block, args.stream, args.replay))
        )
        return
    names = args.only or list(INSTRUMENTATIONS)
    server, base_url = _start_server()
    results: dict[tuple[str, bool], dict[str, Any]] = {}
    replayed: dict[tuple[str, bool], dict[str, Any]] = {}
    try:
        for replay, into in ((False, results), (True, replayed)):
            for stream in (False, True):
                for name in names:
                    result = into[(name, stream)] = _run_worker(name, base_url, args, stream, replay)
                    print(
                        f"{'replayed' if replay else 'server'}, {'stream' if stream else 'plain'}, {name}: "
                        f"added {_added(result, 'wall'):+.0f} us wall, {_added(result, 'cpu'):+.0f} us CPU",
                        file=sys.stderr,
                    )
    finally:
        server.terminate()
        server.wait(10)
    _print_table(names, results, args, "on the local provider server")
    _print_table(
        names, replayed, args, "replayed (the server's responses, recorded, answered without a socket)"
    )


def _added(result: dict[str, Any], key: str) -> float:
    """The median over pairs of blocks of the "on" block's figure minus its "off" block's."""
    pairs = zip(result[f"on_{key}_us"], result[f"off_{key}_us"], strict=True)
    return statistics.median(on - off for on, off in pairs)


def _spread(result: dict[str, Any], key: str) -> str:
    """The middle half of the per-pair differences: how steady the machine was."""
    pairs = zip(result[f"on_{key}_us"], result[f"off_{key}_us"], strict=True)
    low, _, high = statistics.quantiles([on - off for on, off in pairs], n=4)
    return f"{low:+.0f}..{high:+.0f}"


def _print_table(
    names: list[str], results: dict[tuple[str, bool], dict[str, Any]], args: Any, where: str
) -> None:
    print(
        f"\nAdded per call by each instrumentation, {where}: median over {args.pairs} pairs of on/off blocks "
        f"of {args.block} calls"
    )
    print("(openai SDK, chat completions; streams ~16 chunks, no include_usage;")
    print(" in brackets: the middle half of the pairs' differences)\n")
    header = (
        f"{'instrumentation':<16}{'wall +us':>22}{'CPU +us':>12}{'stream wall +us':>24}{'stream CPU +us':>16}"
    )
    print(header + f"{'stream usage':>14}")
    print("-" * (len(header) + 14))
    for name in names:
        plain, streamed = results[(name, False)], results[(name, True)]
        usage = "-" if name in ("none", FLOOR) else "yes" if streamed["usage"] else "no"
        plain_wall = f"{_added(plain, 'wall'):+.0f} ({_spread(plain, 'wall')})"
        stream_wall = f"{_added(streamed, 'wall'):+.0f} ({_spread(streamed, 'wall')})"
        print(
            f"{CONTROL if name == 'none' else name:<16}{plain_wall:>22}{_added(plain, 'cpu'):>+12.0f}"
            f"{stream_wall:>24}{_added(streamed, 'cpu'):>+16.0f}{usage:>14}"
        )
    plain_base = statistics.median(v for name in names for v in results[(name, False)]["off_wall_us"])
    stream_base = statistics.median(v for name in names for v in results[(name, True)]["off_wall_us"])
    print(
        f"\nan uninstrumented call takes {plain_base:.0f} us (plain) and {stream_base:.0f} us (stream),"
        " for scale"
    )
    if "none" in names:
        print(f"{CONTROL}: both blocks of each pair uninstrumented, so its figures are the noise floor")
    if FLOOR in names:
        print(f"{FLOOR}: one SDK span with costspan's attributes at the same transport method, nothing read")
        if "costspan" in names:
            plain, stream = (
                _added(results[("costspan", streamed)], "wall") - _added(results[(FLOOR, streamed)], "wall")
                for streamed in (False, True)
            )
            print(f"costspan beyond {FLOOR} (its own work): {plain:+.0f} us plain, {stream:+.0f} us stream")
    print("goal for costspan: at most +75 us per call and +100 us per stream (wall)")


if __name__ == "__main__":
    main()
