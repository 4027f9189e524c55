"""dedupe's rule: records are one call only on proof (the same span again, or nested records of one request),
and what is kept never depends on how the spans were batched."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from costspan.processors import Span, SpanBatch, build_chain

T0 = 1_750_000_000_000_000_000  # 2025-06-15
MS = 1_000_000
TRACE = "5b8efff798038103d269b633813fc60c"
SERVICE = {"service.name": "support-bot"}


def span(
    span_id, *, start, end, parent=None, trace=TRACE, scope="costspan.instrumentation", name="chat", **attrs
):
    return Span(
        trace, span_id, name, T0 + start * MS, T0 + end * MS, attrs, SERVICE, parent, scope_name=scope
    )


def agent(span_id, *, start=0, end=10_000, trace=TRACE):
    return span(
        span_id,
        start=start,
        end=end,
        trace=trace,
        name="invoke_agent triage",
        **{"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "triage"},
    )


def chat(span_id, *, model="gpt-4o-mini", output=40, provider="openai", response_id=None, **kw):
    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": model,
        "gen_ai.usage.input_tokens": 1200,
        "gen_ai.usage.output_tokens": output,
    }
    if response_id:
        attrs["gen_ai.response.id"] = response_id
    return span(span_id, **kw, **attrs)


def embedding(span_id, **kw):
    attrs = {
        "gen_ai.operation.name": "embeddings",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "text-embedding-3-small",
        "gen_ai.usage.input_tokens": 8,
    }
    return span(span_id, name="embeddings", **kw, **attrs)


def http(span_id, *, status=200, **kw):
    attrs = {
        "http.request.method": "POST",
        "url.full": "https://api.anthropic.com/v1/messages",
        "server.address": "api.anthropic.com",
        "http.response.status_code": status,
    }
    if status >= 400:
        attrs["error.type"] = str(status)
    return span(span_id, name="POST", scope="opentelemetry.instrumentation.httpx", **kw, **attrs)


# one Claude call with a cache write, as every instrumentation of it reports its usage
ANTHROPIC_CALL = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "anthropic",
    "gen_ai.request.model": "claude-sonnet-4-5",
    "gen_ai.usage.input_tokens": 3000,
    "gen_ai.usage.output_tokens": 200,
    "gen_ai.usage.cache_creation.input_tokens": 2000,
}


def native(span_id, *, one_hour=None, **kw):
    attrs = dict(ANTHROPIC_CALL)
    if one_hour is not None:
        attrs["anthropic.usage.cache_creation.ephemeral_1h_input_tokens"] = one_hour
    return span(span_id, scope="com.anthropic.sdk.python", name="anthropic.messages.create", **kw, **attrs)


def chat_anthropic(span_id, **kw):
    """costspan's record of the call (or another dialect's, given its scope): no one-hour split."""
    return span(span_id, start=kw.pop("start", 5), end=kw.pop("end", 990), **kw, **ANTHROPIC_CALL)


def ids(n, prefix):
    return [f"{prefix}{i:014x}" for i in range(n)]


def kept(batches):
    return {c.span_id: c for b in batches for c in b.llm_calls() if c.duplicate_of is None}


def test_fan_out_and_identical_calls_in_sequence_are_all_counted():
    # an agent fans out 8 embeddings and 8 chat completions at once (asyncio.gather), then makes two
    # identical calls back to back: 18 calls, however alike in model, tokens and timing
    spans = [agent("a0" * 8)]
    spans += [embedding(s, start=10 + i, end=60 + i, parent="a0" * 8) for i, s in enumerate(ids(8, "e0"))]
    spans += [chat(s, start=10 + i, end=900 + i, parent="a0" * 8) for i, s in enumerate(ids(8, "c0"))]
    spans += [chat("d0" * 8, start=1000, end=1800, parent="a0" * 8)]
    spans += [chat("d1" * 8, start=1801, end=2600, parent="a0" * 8)]
    batch = build_chain()(SpanBatch.from_spans(spans))
    assert len(kept([batch])) == 18


def test_records_in_other_traces_are_other_calls_even_with_the_same_response_id():
    # a local OpenAI-compatible server recycles response ids: two calls of two traces, models and providers
    a = chat("f1" * 8, start=0, end=500, trace="1" * 32, response_id="chatcmpl-1")
    b = chat("f2" * 8, start=0, end=500, trace="2" * 32, response_id="chatcmpl-1", model="claude-haiku-4-5")
    b.attributes["gen_ai.provider.name"] = "anthropic"
    batch = build_chain()(SpanBatch.from_spans([a, b]))
    assert len(kept([batch])) == 2
    assert not any("possibly" in f for c in batch.llm_calls() for f in c.flags)


def test_siblings_with_the_same_response_id_are_two_calls():
    spans = [agent("a1" * 8)]
    spans += [chat(s, start=5, end=400, parent="a1" * 8, response_id="r-1") for s in ids(2, "b1")]
    assert len(kept([build_chain()(SpanBatch.from_spans(spans))])) == 2


def test_a_retried_call_is_one_billed_call_and_one_failed_attempt():
    # the anthropic SDK's span wraps both HTTP attempts: a 429, then the one that succeeded
    spans = [
        agent("a2" * 8),
        native("n2" * 8, start=10, end=2000, parent="a2" * 8),
        http("h1" * 8, status=429, start=12, end=100, parent="n2" * 8),
        http("h2" * 8, start=600, end=1990, parent="n2" * 8),
    ]
    batch = build_chain()(SpanBatch.from_spans(spans))
    calls = {c.span_id: c for c in batch.llm_calls()}
    assert calls["h2" * 8].duplicate_of == "n2" * 8
    assert calls["n2" * 8].duplicate_of is None and calls["n2" * 8].pricing_status == "priced"
    failed = calls["h1" * 8]
    assert failed.duplicate_of is None and failed.error_type == "429"
    assert failed.pricing_status == "failed" and failed.cost_usd == Decimal(0)


def test_a_call_whose_retries_all_failed_is_failed_attempts_only():
    spans = [
        native("n3" * 8, start=10, end=2000, **{"error.type": "RateLimitError"}),
        http("h3" * 8, status=429, start=12, end=100, parent="n3" * 8),
        http("h4" * 8, status=429, start=600, end=1990, parent="n3" * 8),
    ]
    # the failing SDK span reports no usage
    for key in list(spans[0].attributes):
        if key.startswith("gen_ai.usage"):
            del spans[0].attributes[key]
    batch = build_chain()(SpanBatch.from_spans(spans))
    calls = {c.span_id: c for c in batch.llm_calls()}
    assert calls["h4" * 8].duplicate_of == "n3" * 8 or calls["n3" * 8].duplicate_of == "h4" * 8
    counted = [c for c in calls.values() if c.duplicate_of is None]
    assert len(counted) == 2 and all(c.pricing_status == "failed" and c.cost_usd == 0 for c in counted)


def test_a_framework_span_between_two_records_of_one_call():
    # OpenLLMetry's span, a plain framework span (tenacity, a LangChain runnable) and the HTTP record
    spans = [
        chat("o1" * 8, start=0, end=1000, scope="opentelemetry.instrumentation.openai.v1"),
        span("p1" * 8, start=1, end=999, parent="o1" * 8, name="retry", **{"code.function": "call"}),
        chat("i1" * 8, start=2, end=998, parent="p1" * 8, **{"gen_ai.usage.cache_read.input_tokens": 1000}),
    ]
    batch = build_chain()(SpanBatch.from_spans(spans))
    assert list(kept([batch])) == ["i1" * 8]


def test_a_wrapper_of_several_calls_is_not_counted_beside_them():
    # one record over two successful requests reports their sum: the requests are the calls
    spans = [
        chat("w1" * 8, start=0, end=3000, output=80, scope="opentelemetry.instrumentation.langchain"),
        chat("x1" * 8, start=10, end=1000, parent="w1" * 8),
        chat("x2" * 8, start=1100, end=2900, parent="w1" * 8),
    ]
    batch = build_chain()(SpanBatch.from_spans(spans))
    assert sorted(kept([batch])) == ["x1" * 8, "x2" * 8]


def test_a_richer_twin_in_a_later_batch_supersedes_the_stored_record():
    # the HTTP record of a call is exported first; the anthropic SDK's span with the 1-hour cache-write
    # split arrives in the next batch: the call carries the richer usage, and the stored record is moved
    chain = build_chain()
    first = chain(SpanBatch.from_spans([agent("a4" * 8), chat_anthropic("i4" * 8, parent="n4" * 8)]))
    assert [c.span_id for c in first.llm_calls() if c.duplicate_of is None] == ["i4" * 8]
    later = chain(SpanBatch.from_spans([native("n4" * 8, start=0, end=1000, parent="a4" * 8, one_hour=500)]))
    (call,) = later.llm_calls()
    assert call.duplicate_of is None and call.cache_write_1h_tokens == 500
    assert [s.span_id for s in later.superseded] == ["i4" * 8]
    assert later.superseded[0].duplicate_of == "n4" * 8


def _stack(sid: str, clock: int, trace: str, parent: str) -> list[Span]:
    """Four instrumentations of one request: the official package's span, OpenInference's under it, and
    beneath that OpenLLMetry's, which is never current, beside the anthropic SDK's own span."""
    outer = chat_anthropic(
        sid + "0001",
        start=clock,
        end=clock + 950,
        trace=trace,
        parent=parent,
        scope="opentelemetry.instrumentation.genai.anthropic",
    )
    middle = span(
        sid + "0002",
        start=clock + 1,
        end=clock + 932,  # within milliseconds of the records beneath it, as in real traces
        trace=trace,
        parent=sid + "0001",
        scope="openinference.instrumentation.anthropic",
        name="messages.create",
        **{
            "openinference.span.kind": "LLM",
            "llm.provider": "anthropic",
            "llm.model_name": "claude-sonnet-4-5",
            "llm.token_count.prompt": 3000,
            "llm.token_count.completion": 200,
        },
    )
    wrapper = chat_anthropic(
        sid + "0003",
        start=clock + 2,
        end=clock + 930,
        trace=trace,
        parent=sid + "0002",
        scope="opentelemetry.instrumentation.anthropic",
        name="anthropic.chat",
    )
    wrapper.attributes["gen_ai.usage.output_tokens"] = 201  # one more, as OpenLLMetry counts a stream
    sdk = native(sid + "0004", start=clock + 3, end=clock + 920, trace=trace, parent=sid + "0002")
    return [outer, middle, wrapper, sdk]


def _workload(rng: random.Random) -> tuple[list[Span], int]:
    """Traces of an agent over nested twins, retries, fan-out and sequences; the number of billed calls."""
    spans: list[Span] = []
    billed = 0
    for t in range(40):
        trace = f"{t:032x}"
        root = f"{t:08x}a0000000"
        spans.append(agent(root, trace=trace, end=60_000))
        clock = 10
        for c in range(rng.randint(1, 8)):
            sid = f"{t:08x}{c:04x}"
            kind = rng.choice(["alone", "twin", "retry", "richer", "stack"])
            if kind == "alone":
                spans.append(chat(sid + "0001", start=clock, end=clock + 500, trace=trace, parent=root))
            elif kind == "twin":
                spans.append(
                    chat(
                        sid + "0001",
                        start=clock,
                        end=clock + 500,
                        trace=trace,
                        parent=root,
                        scope="opentelemetry.instrumentation.openai.v1",
                    )
                )
                spans.append(
                    chat(sid + "0002", start=clock + 1, end=clock + 499, trace=trace, parent=sid + "0001")
                )
            elif kind == "retry":
                spans.append(native(sid + "0001", start=clock, end=clock + 900, trace=trace, parent=root))
                spans.append(
                    http(
                        sid + "0002",
                        status=503,
                        start=clock + 1,
                        end=clock + 50,
                        trace=trace,
                        parent=sid + "0001",
                    )
                )
                spans.append(
                    http(sid + "0003", start=clock + 300, end=clock + 890, trace=trace, parent=sid + "0001")
                )
            elif kind == "stack":
                spans += _stack(sid, clock, trace, root)
            else:
                spans.append(
                    native(sid + "0001", start=clock, end=clock + 900, trace=trace, parent=root, one_hour=700)
                )
                spans.append(
                    chat_anthropic(
                        sid + "0002", start=clock + 2, end=clock + 880, trace=trace, parent=sid + "0001"
                    )
                )
            billed += 1
            clock += rng.choice([0, 1, 600])  # fan-out at one instant, or in sequence
    return spans, billed


@pytest.mark.parametrize("seed", range(5))
def test_what_is_kept_does_not_depend_on_batching(seed):
    rng = random.Random(seed)
    spans, billed = _workload(rng)
    # children end, and are exported, before their parents: the reference order; then random cuts of it
    spans.sort(key=lambda s: s.end_ns)
    reference = build_chain()(SpanBatch.from_spans(spans))
    expected = {
        c.span_id: (c.cost_usd, c.pricing_status) for c in reference.llm_calls() if c.duplicate_of is None
    }
    priced = [v for v in expected.values() if v[1] != "failed"]
    assert len(priced) == billed
    for _ in range(5):
        chain = build_chain()
        cuts = sorted(rng.sample(range(1, len(spans)), rng.randint(1, 30)))
        batches = [spans[a:b] for a, b in zip([0, *cuts], [*cuts, len(spans)], strict=True)]
        done = [chain(SpanBatch.from_spans(b)) for b in batches]
        moved = {s.span_id for b in done for s in b.superseded}
        stored = {c.span_id: (c.cost_usd, c.pricing_status) for b in done for c in b.llm_calls()
                  if c.duplicate_of is None or c.span_id in moved}  # fmt: skip
        for span_id in moved:
            del stored[span_id]  # its stored row left llm_calls
        assert stored == expected


def test_bedrock_model_ids_of_one_call_match_across_instrumentations():
    from costspan.processors.dedupe import _models_match

    assert _models_match("us.anthropic.claude-sonnet-4-20250514-v1:0", "claude-sonnet-4-20250514-v1:0")
    assert _models_match(
        "anthropic.claude-3-5-haiku-20241022-v1:0", "global.anthropic.claude-3-5-haiku-20241022-v1:0"
    )
    assert _models_match("openai/gpt-4o", "gpt-4o-2024-08-06")
    assert not _models_match("us.anthropic.claude-sonnet-4-20250514-v1:0", "us.meta.llama3-70b-instruct-v1:0")
    assert not _models_match("gpt-4o", "claude-sonnet-4-5")
