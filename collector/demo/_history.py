"""Backfill: weeks of the demo company's LLM traffic, sent to the collector over OTLP/gRPC.

The spans are made with the OpenTelemetry SDK, one tracer provider per service (its resource names the
service and environment), with explicit start and end times in the past, and exported by the standard OTLP
exporter through a batch span processor: exactly what an instrumented application sends, only dated
earlier. They follow the latest GenAI semantic conventions and carry ``costspan.*`` attribution, as
costspan's instrumentation stamps it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Tracer, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, set_span_in_context

from costspan.semconv import attributes as A

from . import _workload as W

_HOURLY = tuple(0.25 if h < 7 or h > 21 else 1.0 + 0.6 * (9 <= h <= 17) for h in range(24))
_SCOPE = "costspan.demo"
_NS = 1_000_000_000


@dataclass
class Backfill:
    """What was sent: the collector should end up with exactly ``llm_calls`` rows."""

    llm_calls: int = 0
    spans: int = 0


def backfill(
    endpoint: str,
    days: int,
    seed: int = 2026,
    now: datetime | None = None,
    on_day: Callable[[int, Backfill], None] | None = None,
) -> Backfill:
    """Send ``days`` days of history, up to the start of today (UTC), to an OTLP/gRPC ``endpoint``;
    ``on_day`` is told after each day how many days are made and what they hold."""
    rng = random.Random(seed)
    today = (now or datetime.now(UTC)).date()
    services = {f.service for f in W.FEATURES} | {W.AGENT_SERVICE}
    providers = {service: _provider(endpoint, service) for service in sorted(services)}
    tracers = {service: p.get_tracer(_SCOPE) for service, p in providers.items()}
    sent = Backfill()
    for days_ago in range(days, 0, -1):
        day = today - timedelta(days=days_ago)
        for feature in W.FEATURES:
            for start in _times(rng, day, W.day_volume(feature.calls_per_day, day, days_ago)):
                version, scale = feature.prompt_version, 1.0
                if feature.feature == W.INCIDENT_FEATURE and days_ago in W.INCIDENT_DAYS_AGO:
                    version, scale = W.INCIDENT_VERSION, W.INCIDENT_INPUT_SCALE
                _call(
                    tracers[feature.service],
                    start,
                    feature.provider,
                    feature.model,
                    W.tokens(rng, int(feature.input_tokens * scale)),
                    W.tokens(rng, feature.output_tokens),
                    feature.cached_share > 0 and rng.random() < feature.cached_share,
                    {
                        A.COSTSPAN_TEAM: feature.team,
                        A.COSTSPAN_FEATURE: feature.feature,
                        A.COSTSPAN_CUSTOMER_ID: W.customer(rng),
                        A.COSTSPAN_PROMPT_KEY: feature.prompt_key,
                        A.COSTSPAN_PROMPT_VERSION: version,
                    },
                )
                sent.llm_calls += 1
                sent.spans += 1
        for start in _times(rng, day, W.day_volume(W.AGENT_TURNS_PER_DAY, day, days_ago)):
            calls, spans = _agent_turn(tracers[W.AGENT_SERVICE], rng, start)
            sent.llm_calls += calls
            sent.spans += spans
        if on_day is not None:
            on_day(days - days_ago + 1, sent)
    for p in providers.values():
        p.force_flush(120_000)
        p.shutdown()
    return sent


def _provider(endpoint: str, service: str) -> TracerProvider:
    resource = Resource.create({A.SERVICE_NAME: service, A.DEPLOYMENT_ENVIRONMENT_NAME: "production"})
    provider = TracerProvider(resource=resource)
    # a queue large enough for a day of spans: the processor drops what does not fit
    provider.add_span_processor(
        BatchSpanProcessor(
            OTLPSpanExporter(endpoint=endpoint, insecure=True),
            max_queue_size=65_536,
            max_export_batch_size=512,
            schedule_delay_millis=200,
        )
    )
    return provider


def _times(rng: random.Random, day: date, n: int) -> Iterator[int]:
    """``n`` start times on ``day`` (ns since the epoch), denser in working hours."""
    midnight = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * _NS
    hours = rng.choices(range(24), weights=_HOURLY, k=n)
    for hour in sorted(hours):
        yield midnight + hour * 3600 * _NS + rng.randrange(3600 * _NS)


def _call(
    tracer: Tracer,
    start: int,
    provider: str,
    model: str,
    input_tokens: int,
    output_tokens: int,
    cache_hit: bool,
    attribution: dict[str, str],
    parent: object | None = None,
) -> int:
    """One LLM call span; returns its end time."""
    operation = "embeddings" if "embedding" in model else "chat"
    end = start + int((0.25 + 0.012 * output_tokens + input_tokens / 40_000) * _NS)
    attrs: dict[str, object] = {
        A.GEN_AI_OPERATION_NAME: operation,
        A.GEN_AI_PROVIDER_NAME: provider,
        A.GEN_AI_REQUEST_MODEL: model,
        A.GEN_AI_RESPONSE_MODEL: model,
        A.GEN_AI_USAGE_INPUT_TOKENS: input_tokens,
        **attribution,
    }
    if operation == "chat":
        attrs[A.GEN_AI_USAGE_OUTPUT_TOKENS] = output_tokens
    if cache_hit:
        attrs[A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = int(input_tokens * 0.8)
    span = tracer.start_span(
        f"{operation} {model}",
        context=set_span_in_context(parent) if parent is not None else None,  # type: ignore[arg-type]
        kind=SpanKind.CLIENT,
        attributes=attrs,  # type: ignore[arg-type]
        start_time=start,
    )
    span.end(end_time=end)
    return end


def _agent_turn(tracer: Tracer, rng: random.Random, start: int) -> tuple[int, int]:
    """One conversation turn of the support agent: an agent span over its planner, retriever and
    executor steps (a retrieval span and a tool call among them). Returns (LLM calls, spans) sent."""
    who = {
        A.COSTSPAN_TEAM: W.AGENT_TEAM,
        A.COSTSPAN_FEATURE: W.AGENT_FEATURE,
        A.COSTSPAN_CUSTOMER_ID: W.customer(rng),
        A.COSTSPAN_AGENT: W.AGENT,
    }
    agent = tracer.start_span(
        f"invoke_agent {W.AGENT}",
        attributes={A.GEN_AI_OPERATION_NAME: "invoke_agent", A.GEN_AI_AGENT_NAME: W.AGENT, **who},
        start_time=start,
    )
    t, calls, spans = start + 2_000_000, 0, 1
    for step, provider, model, inp, out, cached in W.AGENT_STEPS:
        attribution = {**who, A.COSTSPAN_STEP: step, A.COSTSPAN_PROMPT_KEY: f"agent-{step}"}
        if step == "retriever":
            retrieval = tracer.start_span(
                "retrieval kb",
                context=set_span_in_context(agent),
                attributes={
                    A.GEN_AI_OPERATION_NAME: "retrieval",
                    A.GEN_AI_DATA_SOURCE_ID: "kb",
                    **attribution,
                },
                start_time=t,
            )
            t = _call(
                tracer, t + 1_000_000, provider, model, W.tokens(rng, inp), 0, False, attribution, retrieval
            )
            t += 40_000_000  # the vector search
            retrieval.end(end_time=t)
            spans += 2
        else:
            t = _call(
                tracer,
                t,
                provider,
                model,
                W.tokens(rng, inp),
                W.tokens(rng, out),
                cached > 0 and rng.random() < cached,
                attribution,
                agent,
            )
            spans += 1
        calls += 1
        if step == "executor":
            tool = tracer.start_span(
                "execute_tool lookup_order",
                context=set_span_in_context(agent),
                attributes={
                    A.GEN_AI_OPERATION_NAME: "execute_tool",
                    A.GEN_AI_TOOL_NAME: "lookup_order",
                    **who,
                },
                start_time=t,
            )
            t += 80_000_000
            tool.end(end_time=t)
            spans += 1
        t += 5_000_000
    agent.end(end_time=t)
    return calls, spans
