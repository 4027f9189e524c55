"""Instrumentation overhead: time and CPU each instrumentation adds to one LLM call, streaming and not.

    python benchmarks/instrumentation/run.py        (or: make bench-instrumentation)

What is measured. The local provider server (costspan.collector.demo.provider) runs in a process of its
own. For each instrumentation a fresh worker process sets up the OpenTelemetry SDK as an application does
(a ``TracerProvider`` with a ``BatchSpanProcessor`` whose exporter only counts, a ``MeterProvider``),
switches that one instrumentation on, warms up, then makes calls with the real ``openai`` SDK (httpx2) on
one client: non-streaming chat completions, and streams (about 16 chunks each) whose request does not ask
for ``include_usage``. The worker reports wall time and process CPU time per call; "added" is the
difference from the uninstrumented worker of the same round. Rounds alternate the order of the workers and
the median over rounds is printed, because the machine is shared and noisy. Last column: whether the
instrumentation's span of a stream carries the token usage (none can, unless it asks for it as costspan
does). Speed is reported, not asserted.

The comparison: OpenLLMetry (opentelemetry-instrumentation-openai), OpenInference
(openinference-instrumentation-openai), the official OpenTelemetry GenAI package
(opentelemetry-instrumentation-genai-openai) and plain HTTP client spans
(opentelemetry-instrumentation-httpx).
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
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

INSTRUMENTATIONS: dict[str, str | None] = {
    "none": None,
    "costspan": "costspan.instrumentation:CostspanInstrumentor",
    "openllmetry": "opentelemetry.instrumentation.openai:OpenAIInstrumentor",
    "openinference": "openinference.instrumentation.openai:OpenAIInstrumentor",
    "otel-genai": "opentelemetry.instrumentation.genai.openai:OpenAIInstrumentor",
    "httpx-spans": "opentelemetry.instrumentation.httpx:HTTPX2ClientInstrumentor",
}
MESSAGES = [{"role": "user", "content": "Say hello."}]
USAGE_KEYS = ("gen_ai.usage.output_tokens", "llm.token_count.completion", "gen_ai.usage.completion_tokens")


# -- the worker: one instrumentation, one process ---------------------------------------------------------


def worker(name: str, base_url: str, calls: int, stream: bool) -> dict[str, Any]:
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
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    target = INSTRUMENTATIONS[name]
    if target is not None:
        module_name, class_name = target.split(":")
        instrumentor = getattr(importlib.import_module(module_name), class_name)()
        options: dict[str, Any] = {"tracer_provider": tracer_provider, "meter_provider": meter_provider}
        if name == "costspan":
            options["endpoints"] = {base_url: "openai"}
        instrumentor.instrument(**options)
    client = openai.OpenAI(base_url=base_url, api_key="bench", max_retries=0)

    def one() -> None:
        if stream:
            for _ in client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True):
                pass
        else:
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    for _ in range(max(50, calls // 10)):
        one()
    tracer_provider.force_flush()
    exporter.spans = exporter.with_usage = 0
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for _ in range(calls):
        one()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    tracer_provider.force_flush()
    return {
        "wall_us": wall / calls * 1e6,
        "cpu_us": cpu / calls * 1e6,
        "spans": exporter.spans,
        "usage": exporter.with_usage > 0,
    }


# -- the runner ----------------------------------------------------------------------------------------------


def _run_worker(name: str, base_url: str, calls: int, stream: bool) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRACELOOP_", "OPENINFERENCE_"))}
    env["PYTHONPATH"] = str(ROOT)
    env["OTEL_SEMCONV_STABILITY_OPT_IN"] = "gen_ai_latest_experimental"
    out = subprocess.run(
        [sys.executable, __file__, "--worker", name, "--base-url", base_url, "--calls", str(calls)]
        + (["--stream"] if stream else []),
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        check=False,
    )
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
    parser.add_argument("--calls", type=int, default=1500, help="calls per worker and mode (default 1500)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median is reported (default 3)")
    parser.add_argument("--only", nargs="*", help="instrumentations to compare with no instrumentation")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--stream", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.base_url, args.calls, args.stream)))
        return
    names = ["none", *(args.only or [n for n in INSTRUMENTATIONS if n != "none"])]
    server, base_url = _start_server()
    results: dict[tuple[str, bool], list[dict[str, Any]]] = {}
    try:
        for round_number in range(args.rounds):
            order = names if round_number % 2 == 0 else list(reversed(names))
            for stream in (False, True):
                for name in order:
                    result = _run_worker(name, base_url, args.calls, stream)
                    results.setdefault((name, stream), []).append(result)
                    print(
                        f"round {round_number + 1}, {'stream' if stream else 'plain'}, {name}: "
                        f"{result['wall_us']:.0f} us wall, {result['cpu_us']:.0f} us CPU per call",
                        file=sys.stderr,
                    )
    finally:
        server.terminate()
        server.wait(10)
    _print_table(names, results, args)


def _added(results: dict[tuple[str, bool], list[dict[str, Any]]], name: str, stream: bool, key: str) -> float:
    """The median over rounds of this worker's figure minus the uninstrumented worker's of the same round."""
    return statistics.median(
        run[key] - base[key]
        for run, base in zip(results[(name, stream)], results[("none", stream)], strict=True)
    )


def _print_table(names: list[str], results: dict[tuple[str, bool], list[dict[str, Any]]], args: Any) -> None:
    print(f"\nAdded per call over no instrumentation, median of {args.rounds} rounds of {args.calls} calls")
    print(
        "(openai SDK, chat completions on the local provider server; streams ~16 chunks, no include_usage)\n"
    )
    header = (
        f"{'instrumentation':<16}{'wall +us':>10}{'CPU +us':>10}{'stream wall +us':>17}{'stream CPU +us':>16}"
    )
    print(header + f"{'stream usage':>14}")
    print("-" * (len(header) + 14))
    for name in names:
        plain = statistics.median(r["wall_us"] for r in results[(name, False)])
        streamed = statistics.median(r["wall_us"] for r in results[(name, True)])
        if name == "none":
            print(f"{'none (baseline)':<16}{plain:>9.0f}*{'':>10}{streamed:>16.0f}*{'':>16}{'-':>14}")
            continue
        usage = "yes" if all(r["usage"] for r in results[(name, True)]) else "no"
        plain_wall, plain_cpu = (
            _added(results, name, False, "wall_us"),
            _added(results, name, False, "cpu_us"),
        )
        stream_wall, stream_cpu = (
            _added(results, name, True, "wall_us"),
            _added(results, name, True, "cpu_us"),
        )
        print(
            f"{name:<16}{plain_wall:>+10.0f}{plain_cpu:>+10.0f}{stream_wall:>+17.0f}{stream_cpu:>+16.0f}{usage:>14}"
        )
    print("\n* the baseline's own time per call, for scale")


if __name__ == "__main__":
    main()
