"""Processor chain throughput: normalize, dedupe, price, attribute and redact over 100,000 decoded spans.

    python benchmarks/processors/run.py        (or: make bench-processors)

What is measured. 100,000 spans of mixed GenAI dialects (OpenTelemetry GenAI conventions 1.26, 1.37 and
1.41, OpenLLMetry, OpenInference, the anthropic SDK's own spans, OpenLIT, Langfuse; with agent and tool
spans, HTTP client spans under calls, and message content to redact), built in advance as the receivers
decode them, in batches of 512 (the OpenTelemetry SDK's default export batch). The default chain runs over
every batch in this one process, on one core, with the garbage collector set as the collector sets
it (``costspan.collector.runtime.configure_gc``), after it has processed 250,000 other spans (untimed), so
that dedupe's window is full as in a collector that has been running. Printed: spans per second and
microseconds per span for the whole chain and each processor, and what the chain counted. The project's
goal is at least 200,000 spans/s, so the chain is never the collector's bottleneck. Speed is reported, not
asserted.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import time
from collections import Counter
from typing import Any

from costspan.collector.runtime import configure_gc
from costspan.processors import Span, SpanBatch, build_chain

SPANS = 100_000
WARM_UP_SPANS = 250_000  # more than dedupe's window holds (200,000 spans)
BATCH = 512
SEED = 7
T0 = 1_760_000_000_000_000_000  # 2025-10-09
MS = 1_000_000

MODELS = [
    ("openai", "gpt-4o-mini", 30),
    ("openai", "gpt-4o", 15),
    ("openai", "gpt-4.1-mini", 10),
    ("openai", "o4-mini", 5),
    ("anthropic", "claude-sonnet-4-5", 15),
    ("anthropic", "claude-haiku-4-5", 8),
    ("gcp.gemini", "gemini-2.5-flash", 10),
    ("aws.bedrock", "us.anthropic.claude-sonnet-4-20250514-v1:0", 4),
    ("openai", "text-embedding-3-small", 8),
]
SERVICES = ["checkout-api", "search", "support-bot", "recommendations"]
# the HTTP request under a call of each provider, as the httpx instrumentation reports it
ENDPOINTS = {
    "openai": "https://api.openai.com/v1/chat/completions",
    "anthropic": "https://api.anthropic.com/v1/messages",
    "gcp.gemini": "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent",
    "aws.bedrock": "https://bedrock-runtime.us-east-1.amazonaws.com/model/x/converse",
}


def _otel_new(
    rng: random.Random, provider: str, model: str, inp: int, out: int, cached: int
) -> dict[str, Any]:
    return {
        "gen_ai.operation.name": "embeddings" if "embedding" in model else "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": model,
        "gen_ai.response.model": model,
        "gen_ai.response.id": f"chatcmpl-{rng.getrandbits(48):x}",
        "gen_ai.usage.input_tokens": inp,
        "gen_ai.usage.output_tokens": out,
        "gen_ai.usage.cache_read.input_tokens": cached,
        "server.address": "api.example-provider.com",
        "costspan.feature": rng.choice(["chat", "summarise", "classify"]),
        "costspan.customer_id": f"cust-{rng.randrange(500)}",
        "user.id": f"user-{rng.randrange(5000)}",
    }


def _otel_old(
    rng: random.Random, provider: str, model: str, inp: int, out: int, cached: int
) -> dict[str, Any]:
    return {
        "gen_ai.system": {"aws.bedrock": "aws.bedrock", "gcp.gemini": "gemini"}.get(provider, provider),
        "gen_ai.request.model": model,
        "gen_ai.usage.prompt_tokens": inp,
        "gen_ai.usage.completion_tokens": out,
        "gen_ai.prompt": "[redacted by the benchmark: a prompt would be here]",
    }


def _openllmetry(
    rng: random.Random, provider: str, model: str, inp: int, out: int, cached: int
) -> dict[str, Any]:
    return {
        "gen_ai.system": provider.capitalize(),
        "llm.request.type": "chat",
        "gen_ai.request.model": model,
        "gen_ai.response.model": model,
        "gen_ai.usage.input_tokens": inp,
        "gen_ai.usage.output_tokens": out,
        "gen_ai.usage.cache_read_input_tokens": cached,
        "llm.usage.total_tokens": inp + out,
        "gen_ai.prompt.0.role": "user",
        "gen_ai.prompt.0.content": "What is the weather?",
        "gen_ai.completion.0.content": "Sunny.",
        "traceloop.association.properties.user_id": f"user-{rng.randrange(5000)}",
    }


def _openinference(
    rng: random.Random, provider: str, model: str, inp: int, out: int, cached: int
) -> dict[str, Any]:
    return {
        "openinference.span.kind": "EMBEDDING" if "embedding" in model else "LLM",
        "llm.provider": provider,
        "llm.model_name": model,
        "llm.token_count.prompt": inp,
        "llm.token_count.completion": out,
        "llm.token_count.total": inp + out,
        "llm.token_count.prompt_details.cache_read": cached,
        "input.value": '{"messages": [{"role": "user", "content": "hi"}]}',
        "output.value": "hello",
        "session.id": f"sess-{rng.randrange(2000)}",
    }


def _langfuse(
    rng: random.Random, provider: str, model: str, inp: int, out: int, cached: int
) -> dict[str, Any]:
    return {
        "langfuse.observation.type": "generation",
        "langfuse.observation.model.name": model,
        "langfuse.observation.usage_details": (
            # Langfuse's usage types: input excludes the cached tokens counted beside it
            f'{{"input": {inp - cached}, "output": {out}, "input_cached_tokens": {cached}}}'
        ),
        "langfuse.user.id": f"user-{rng.randrange(5000)}",
        "langfuse.observation.input": "hi",
    }


DIALECTS = [
    ("costspan.instrumentation", _otel_new, 35),
    ("opentelemetry.instrumentation.openai_v2", _otel_old, 10),
    ("opentelemetry.instrumentation.openai.v1", _openllmetry, 20),
    ("openinference.instrumentation.openai", _openinference, 20),
    ("langfuse-sdk", _langfuse, 5),
    ("openlit.otel.tracing", _otel_new, 10),
]


def build_spans(n: int, seed: int = SEED, trace_interval_ms: int = 10_000) -> list[Span]:
    """``n`` spans of traces that start ``trace_interval_ms`` apart."""
    rng = random.Random(seed)
    spans: list[Span] = []
    resources = [{"service.name": s, "deployment.environment.name": "production"} for s in SERVICES]
    t = T0
    while len(spans) < n:
        trace = f"{rng.getrandbits(128):032x}"
        res = rng.choice(resources)
        agent_id = f"{rng.getrandbits(64):016x}"
        spans.append(
            Span(
                trace,
                agent_id,
                "invoke_agent",
                t,
                t + 9000 * MS,
                {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"},
                res,
                scope_name="costspan.instrumentation",
            )
        )
        for step in range(rng.randint(1, 6)):
            provider, model, _ = rng.choices(MODELS, weights=[m[2] for m in MODELS])[0]
            scope, make, _ = rng.choices(DIALECTS, weights=[d[2] for d in DIALECTS])[0]
            inp = int(rng.lognormvariate(7.5, 1.0)) + 10
            out = 0 if "embedding" in model else int(rng.lognormvariate(5, 1)) + 1
            cached = rng.randrange(inp) if rng.random() < 0.4 and "embedding" not in model else 0
            start = t + step * 1000 * MS
            span_id = f"{rng.getrandbits(64):016x}"
            spans.append(
                Span(
                    trace,
                    span_id,
                    f"chat {model}",
                    start,
                    start + 900 * MS,
                    make(rng, provider, model, inp, out, cached),
                    res,
                    parent_span_id=agent_id,
                    kind=3,
                    scope_name=scope,
                )
            )
            if rng.random() < 0.3:  # an HTTP client span under the call
                spans.append(
                    Span(
                        trace,
                        f"{rng.getrandbits(64):016x}",
                        "POST",
                        start + 2 * MS,
                        start + 890 * MS,
                        {
                            "http.request.method": "POST",
                            "url.full": ENDPOINTS[provider],
                            "server.address": ENDPOINTS[provider].split("/")[2],
                            "http.response.status_code": 200,
                        },
                        res,
                        parent_span_id=span_id,
                        kind=3,
                        scope_name="opentelemetry.instrumentation.httpx",
                    )
                )
            if rng.random() < 0.2:  # a tool span
                spans.append(
                    Span(
                        trace,
                        f"{rng.getrandbits(64):016x}",
                        "execute_tool search",
                        start + 900 * MS,
                        start + 950 * MS,
                        {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"},
                        res,
                        parent_span_id=agent_id,
                        scope_name="costspan.instrumentation",
                    )
                )
        t += trace_interval_ms * MS
    for span in spans:
        span.attributes = _as_decoded(span.attributes)
    return spans[:n]


def _as_decoded(attributes: dict[str, Any]) -> dict[str, Any]:
    """The attributes with keys as protobuf decoding gives them: new strings for every span, which lookups
    compare by content (the literals above are shared objects, compared by identity)."""
    return {key.encode().decode(): value for key, value in attributes.items()}


def measure(spans: list[Span], warm_up: list[Span], rounds: int = 3) -> dict[str, Any]:
    """The best of ``rounds`` runs of the default chain over ``spans``, each with a new chain that has
    first processed ``warm_up`` (other traces), so that dedupe's window is full, as in a running collector."""
    configure_gc()  # as the collector runs
    best = None
    for _ in range(rounds):
        chain = build_chain()  # a new chain each run: no span is seen twice
        for i in range(0, len(warm_up), BATCH):
            chain(SpanBatch.from_spans(warm_up[i : i + BATCH]))
        warmed = {name: Counter(c) for name, c in chain.counts().items()}
        fresh = [SpanBatch.from_spans(spans[i : i + BATCH]) for i in range(0, len(spans), BATCH)]
        per_processor: Counter[str] = Counter()
        started = time.perf_counter()
        for batch in fresh:
            for processor in chain.processors:
                t = time.perf_counter()
                batch = processor(batch)
                per_processor[processor.name] += time.perf_counter() - t
        elapsed = time.perf_counter() - started
        if best is None or elapsed < best[0]:
            counted = {name: c - warmed[name] for name, c in chain.counts().items()}  # the measured spans'
            best = (elapsed, per_processor, counted)
    assert best is not None
    elapsed, per_processor, counts = best
    return {
        "build": build_name(),
        "spans": len(spans),
        "seconds": elapsed,
        "per_processor": dict(per_processor),
        "kinds": {k: v for k, v in sorted(counts["normalize"].items()) if k.startswith(("kind.", "dialect"))},
        "dedupe": dict(counts["dedupe"]),
        "price": dict(counts["price"]),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def build_name() -> str:
    """``compiled`` when the chain's modules are the mypyc build (setup.py), else ``python``."""
    import costspan.processors.normalize as normalize

    return "compiled" if normalize.__file__.endswith(".so") else "python"


def report(results: list[dict[str, Any]]) -> None:
    first = results[0]
    n = first["spans"]
    print(f"spans                {n:,} in batches of {BATCH}, one core; best of 3 runs per build")
    columns = "  ".join(f"{p:>9}" for p in first["per_processor"])
    print(f"{'build':20} {'spans/s':>10} {'us/span':>8}  {columns}")
    for r in results:
        per = "  ".join(f"{s / n * 1e6:9.2f}" for s in r["per_processor"].values())
        print(f"{r['build']:20} {n / r['seconds']:10,.0f} {r['seconds'] / n * 1e6:8.2f}  {per}")
    if len(results) > 1:
        base = results[0]
        for r in results[1:]:
            ratio = base["seconds"] / r["seconds"]
            print(f"{r['build']} / {base['build']}: {ratio:.2f}x the spans per second")
    print("goal                 200,000 spans/s on one core (per-processor columns: us/span)")
    print(f"normalize            {first['kinds']}")
    print(f"dedupe               {first['dedupe']}")
    print(f"price                {first['price']}")
    print("peak RSS             " + ", ".join(f"{r['build']} {r['peak_rss_mb']:.0f} MB" for r in results))
    different = [r["build"] for r in results if (r["kinds"], r["dedupe"], r["price"]) != (
        first["kinds"], first["dedupe"], first["price"])]  # fmt: skip
    if different:
        print(f"WARNING: the chain counted differently in {', '.join(different)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--builds",
        metavar="NAME=PYTHON,...",
        help="run under each of these interpreters (each with costspan installed), side by side",
    )
    parser.add_argument("--json", action="store_true", help="print this interpreter's figures as JSON")
    args = parser.parse_args()
    if args.builds:
        results = []
        for item in args.builds.split(","):
            name, _, python = item.partition("=")
            run = subprocess.run([python, __file__, "--json"], check=True, capture_output=True, text=True)
            result = json.loads(run.stdout)
            result["build"] = f"{name} ({result['build']})" if name != result["build"] else name
            results.append(result)
        report(results)
        return
    result = measure(build_spans(SPANS), build_spans(WARM_UP_SPANS, seed=SEED + 1))
    if args.json:
        print(json.dumps(result))
    else:
        report([result])


if __name__ == "__main__":
    main()
