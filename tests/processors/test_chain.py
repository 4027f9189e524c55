"""The processor chain over hand-built batches: dedupe, price, attribute, redact, and configuration."""

from __future__ import annotations

from decimal import Decimal

import pytest

from costspan.processors import ConfigError, Span, SpanBatch, _batch, build, build_chain
from costspan.processors._batch import shape_ids
from costspan.semconv import cost_attributes

T0 = 1_750_000_000_000_000_000  # 2025-06-15
MS = 1_000_000
TRACE = "0af7651916cd43dd8448eb211c80319c"


def chat(
    span_id, *, start=0, end=1000, parent=None, scope="opentelemetry.instrumentation.openai_v2", **attrs
):
    base = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 1000,
        "gen_ai.usage.output_tokens": 100,
    }
    base.update(attrs)
    return Span(
        TRACE,
        span_id,
        "chat gpt-4o",
        T0 + start * MS,
        T0 + end * MS,
        base,
        {"service.name": "checkout-api"},
        parent_span_id=parent,
        scope_name=scope,
    )


def run(*spans, chain=None):
    return (chain or build_chain())(SpanBatch.from_spans(spans))


def test_a_single_call_is_priced_and_kept():
    batch = run(chat("a" * 16))
    (call,) = batch.llm_calls()
    assert call.cost_usd == Decimal("0.0035") and call.pricing_status == "priced"
    assert call.duplicate_of is None and call.service_name == "checkout-api"


def test_resent_span_is_marked_not_dropped():
    chain = build_chain()
    first = chain(SpanBatch.from_spans([chat("a" * 16)]))
    again = chain(SpanBatch.from_spans([chat("a" * 16)]))
    assert first.calls[0].duplicate_of is None
    assert again.calls[0].duplicate_of == "a" * 16
    assert "delivered again" in again.calls[0].flags[0]
    same_batch = run(chat("b" * 16), chat("b" * 16))
    assert [c.duplicate_of for c in same_batch.calls] == [None, "b" * 16]


def test_the_resend_window_is_bounded_and_forgets_the_oldest_first():
    chain = build_chain(["normalize", ("dedupe", {"window_spans": 8, "window_traces": 8})])
    first_ids = [f"{i:016x}" for i in range(1, 41)]
    for span_id in first_ids:  # one batch each, far apart in time: no twins, only re-sends to catch
        chain(SpanBatch.from_spans([chat(span_id, start=int(span_id, 16) * 10_000)]))
    again = chain(SpanBatch.from_spans([chat(s, start=int(s, 16) * 10_000) for s in first_ids]))
    resent = [c.span_id for c in again.calls if c.duplicate_of is not None]
    # the newest 8 always remembered, at most 2 * (8 + 1): only the newest are recognised, never an old one
    assert first_ids[-8:] == resent[-8:] and len(resent) <= 18
    assert first_ids[0] not in resent


def test_native_span_and_http_child_count_once():
    parent = chat(
        "1" * 16,
        start=0,
        end=900,
        scope="com.anthropic.sdk.python",
        **{"gen_ai.provider.name": "anthropic", "gen_ai.request.model": "claude-sonnet-4-5"},
    )
    http = Span(
        TRACE,
        "2" * 16,
        "POST",
        T0 + 5 * MS,
        T0 + 880 * MS,
        {
            "http.request.method": "POST",
            "url.full": "https://api.anthropic.com/v1/messages",
            "server.address": "api.anthropic.com",
        },
        parent_span_id="1" * 16,
        scope_name="opentelemetry.instrumentation.httpx",
    )
    batch = run(http, parent)
    by_id = {c.span_id: c for c in batch.calls}
    assert by_id["1" * 16].duplicate_of is None
    assert by_id["2" * 16].duplicate_of == "1" * 16
    assert by_id["1" * 16].server_address == "api.anthropic.com"  # filled in from the duplicate
    kept = [c for c in batch.llm_calls() if c.duplicate_of is None]
    assert len(kept) == 1 and kept[0].cost_usd is not None


def test_two_instrumentations_of_one_call_keep_the_richest():
    outer = chat(
        "3" * 16,
        start=0,
        end=1000,
        scope="opentelemetry.instrumentation.openai.v1",
        **{"gen_ai.usage.cache_read.input_tokens": 200},
    )
    inner = Span(
        TRACE,
        "4" * 16,
        "ChatCompletion",
        T0 + 1 * MS,
        T0 + 999 * MS,
        {
            "openinference.span.kind": "LLM",
            "llm.provider": "openai",
            "llm.model_name": "gpt-4o-2024-08-06",
            "llm.token_count.prompt": 1000,
            "llm.token_count.completion": 100,
        },
        parent_span_id="3" * 16,
        scope_name="openinference.instrumentation.openai",
    )
    batch = run(outer, inner)
    by_id = {c.span_id: c for c in batch.calls}
    assert by_id["3" * 16].duplicate_of is None  # it also reports cache reads
    assert by_id["4" * 16].duplicate_of == "3" * 16


def test_sequential_calls_in_one_trace_are_not_duplicates():
    batch = run(
        chat("5" * 16, start=0, end=500),
        chat("6" * 16, start=600, end=1100),
        chat("7" * 16, start=1200, end=1300, **{"gen_ai.usage.output_tokens": 7}),
    )
    assert [c.duplicate_of for c in batch.calls] == [None, None, None]
    # nested, but different usage: two calls (an agent calling a model inside a tool)
    nested = run(
        chat("8" * 16, start=0, end=1000),
        chat("9" * 16, start=10, end=900, parent="8" * 16, **{"gen_ai.usage.output_tokens": 55}),
    )
    assert [c.duplicate_of for c in nested.calls] == [None, None]


def test_two_instrumentations_one_output_token_apart_are_one_call():
    # OpenLLMetry's Anthropic stream spans count one output token more than the API (and the SDK's own span)
    native = chat(
        "d1" * 8,
        start=0,
        end=1000,
        scope="com.anthropic.sdk.python",
        **{"gen_ai.provider.name": "anthropic", "gen_ai.request.model": "claude-sonnet-4-5"},
    )
    openllmetry = chat(
        "d2" * 8,
        start=5,
        end=990,
        parent="d1" * 8,
        scope="opentelemetry.instrumentation.anthropic",
        **{
            "gen_ai.system": "Anthropic",
            "gen_ai.provider.name": None,
            "gen_ai.request.model": "claude-sonnet-4-5",
            "gen_ai.usage.output_tokens": 101,
        },
    )
    assert [c.duplicate_of for c in run(native, openllmetry).calls] == [None, "d1" * 8]
    # one dialect's own nested records must agree exactly: one token apart, they are two calls
    same_dialect = run(
        chat("d3" * 8, start=0, end=1000),
        chat("d4" * 8, start=5, end=990, parent="d3" * 8, **{"gen_ai.usage.output_tokens": 101}),
    )
    assert [c.duplicate_of for c in same_dialect.calls] == [None, None]


def test_duplicate_arriving_in_a_later_batch():
    # the inner record is exported first (a child ends before its parent); the wrapper comes later
    chain = build_chain()
    chain(SpanBatch.from_spans([chat("a1" * 8, start=2, end=990, parent="b2" * 8)]))
    later = chain(
        SpanBatch.from_spans(
            [chat("b2" * 8, start=0, end=1000, scope="opentelemetry.instrumentation.openai.v1")]
        )
    )
    assert later.calls[0].duplicate_of == "a1" * 8
    assert later.superseded == []


def test_statuses_never_drop():
    batch = run(
        chat("c1" * 8, **{"gen_ai.request.model": "no-such-model"}),
        chat("c2" * 8, start=2000, end=2100, **{"gen_ai.usage.input_tokens": -4}),
        chat(
            "c3" * 8,
            start=3000,
            end=3100,
            **{"gen_ai.usage.input_tokens": None, "gen_ai.usage.output_tokens": None},
        ),
        chat(
            "c4" * 8,
            start=4000,
            end=4100,
            **{"gen_ai.request.model": "llama3.1:8b", "server.address": "127.0.0.1"},
        ),
        chat("c5" * 8, start=5000, end=5100, **{"gen_ai.usage.output_tokens": "lots"}),
    )
    statuses = [c.pricing_status for c in batch.calls]
    assert statuses == ["unknown_model", "invalid_usage", "no_usage", "self_hosted", "invalid_usage"]
    assert batch.calls[3].cost_usd == 0
    assert all(c.cost_usd is None for i, c in enumerate(batch.calls) if i != 3)
    assert "no catalog entry matches model 'no-such-model'" in batch.calls[0].flags[0]


def test_local_gateway_to_a_provider_is_priced_as_the_provider():
    # a LiteLLM proxy on a private address in front of OpenAI: the model is OpenAI's, so is the price
    batch = run(chat("e5" * 8, **{"server.address": "10.2.0.7"}))
    assert batch.calls[0].pricing_status == "priced" and batch.calls[0].cost_usd == Decimal("0.0035")


def test_provider_reported_cost_wins():
    batch = run(
        chat(
            "d1" * 8,
            **{
                "gen_ai.provider.name": "openrouter",
                "gen_ai.request.model": "openai/gpt-4o",
                "gen_ai.usage.cost.amount": 0.0042,
                "gen_ai.usage.cost.source": "provider",
            },
        )
    )
    call = batch.calls[0]
    assert call.cost_usd == Decimal("0.0042") and call.cost_source == "provider"


def test_attribution_sources_rules_defaults_and_tags():
    chain = build_chain(
        [
            "normalize",
            "dedupe",
            "price",
            (
                "attribute",
                {
                    "rules": [{"when": {"service.name": "checkout-*"}, "set": {"team": "payments"}}],
                    "defaults": {"environment": "production", "feature": "unknown"},
                    "tags": ["app.region", "tenant.*"],
                },
            ),
            "redact",
        ]
    )
    agent = Span(
        TRACE,
        "e0" * 8,
        "invoke_agent planner",
        T0,
        T0 + 5000 * MS,
        {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"},
        {"service.name": "checkout-api"},
        scope_name="costspan.instrumentation",
    )
    call = chat(
        "e1" * 8,
        parent="e0" * 8,
        **{
            "user.id": "u-42",
            "session.id": "conv-9",
            "costspan.customer_id": "acme",
            "app.region": "eu",
            "tenant.tier": "gold",
            "costspan.tag.experiment": "b",
            "other.key": "x",
            "langfuse.observation.prompt.name": "checkout-help",
            "langfuse.observation.prompt.version": 3,
        },
    )
    batch = chain(SpanBatch.from_spans([agent, call]))
    record = batch.calls[1]
    assert (record.user_id, record.conversation_id, record.customer_id) == ("u-42", "conv-9", "acme")
    assert (record.team, record.environment, record.feature) == ("payments", "production", "unknown")
    assert record.agent_name == "planner"
    assert (record.prompt_key, record.prompt_version) == ("checkout-help", "3")
    assert record.tags == {"app.region": "eu", "tenant.tier": "gold", "experiment": "b"}
    resource_env = run(
        Span(
            TRACE,
            "f1" * 8,
            "chat",
            T0,
            T0 + MS,
            chat("x" * 16).attributes,
            {"service.name": "s", "deployment.environment.name": "staging", "service.namespace": "ml"},
        )
    )
    assert (resource_env.calls[0].environment, resource_env.calls[0].team) == ("staging", "ml")


def test_redaction_by_default_and_keyed_input_hash(monkeypatch):
    content = {
        "gen_ai.input.messages": '[{"role":"user","parts":[{"type":"text","content":"secret"}]}]',
        "gen_ai.output.messages": "[]",
        "gen_ai.system_instructions": "be nice",
        "gen_ai.prompt.0.content": "secret",
        "gen_ai.completion.0.content": "answer",
        "input.value": "secret",
        "llm.input_messages.0.message.content": "secret",
    }
    span = chat("a0" * 8, **content)
    original = dict(span.attributes)
    batch = run(span)
    assert not set(content) & set(batch.attributes[0])
    assert batch.attributes[0]["gen_ai.request.model"] == "gpt-4o"
    assert span.attributes == original  # the input batch is untouched
    monkeypatch.setenv("HASH_KEY", "k1")
    hashing = build_chain(["normalize", ("redact", {"input_hash_key_env": "HASH_KEY"})])
    one = hashing(SpanBatch.from_spans([chat("a1" * 8, **content)])).calls[0].input_hash
    two = hashing(SpanBatch.from_spans([chat("a2" * 8, **content)])).calls[0].input_hash
    other = hashing(SpanBatch.from_spans([chat("a3" * 8, **{"gen_ai.input.messages": "different"})])).calls[0]
    assert one == two and len(one) == 32 and other.input_hash != one
    kept = build_chain(["normalize", ("redact", {"keep_content": True})])(
        SpanBatch.from_spans([chat("a4" * 8, **content)])
    )
    assert kept.attributes[0]["gen_ai.input.messages"] == content["gen_ai.input.messages"]


def test_content_events_are_emptied():
    span = chat("b0" * 8)
    span.events = (
        ("gen_ai.content.prompt", {"gen_ai.prompt": "secret"}),
        ("exception", {"exception.type": "X"}),
    )
    batch = run(span)
    assert batch.events[0] == (("gen_ai.content.prompt", {}), ("exception", {"exception.type": "X"}))


def test_cost_attributes_for_forwarded_spans():
    call = run(chat("c0" * 8, **{"costspan.team": "search"})).calls[0]
    attrs = cost_attributes(call)
    assert attrs["gen_ai.usage.cost.amount"] == pytest.approx(0.0035)
    assert attrs["gen_ai.usage.cost.currency"] == "USD" and attrs["gen_ai.usage.cost.source"] == "local"
    assert attrs["costspan.cost.input"] == pytest.approx(0.0025)
    assert attrs["costspan.pricing.status"] == "priced" and attrs["costspan.team"] == "search"


def test_chain_counts_and_non_genai_spans_pass_through():
    plain = Span(
        TRACE,
        "d0" * 8,
        "GET /",
        T0,
        T0 + MS,
        {"http.route": "/"},
        scope_name="opentelemetry.instrumentation.flask",
    )
    chain = build_chain()
    batch = chain(SpanBatch.from_spans([plain, chat("d1" * 8)]))
    assert batch.calls[0] is None and batch.calls[1].cost_usd is not None
    counts = chain.counts()
    assert counts["normalize"]["spans"] == 2 and counts["normalize"]["kind.llm"] == 1
    assert counts["price"]["priced"] == 1


@pytest.mark.parametrize(
    ("name", "config", "message"),
    [
        ("nope", {}, "unknown processor 'nope'"),
        ("normalize", {"x": 1}, "processors.normalize.x: unknown key"),
        ("dedupe", {"window_spans": -1}, "window_spans"),
        ("attribute", {"rules": [{"when": {}, "set": {"team": "x"}}]}, "rules[0].when"),
        ("attribute", {"defaults": {"colour": "red"}}, "defaults.colour: not a field"),
        ("attribute", {"tags": "app.region"}, "tags: a list"),
        ("redact", {"keep_content": "yes"}, "keep_content: true or false"),
        ("redact", {"input_hash_key_env": "COSTSPAN_TEST_UNSET_VAR"}, "is not set"),
        ("price", {"overrides": "/nonexistent.yaml"}, "cannot read"),
        ("price", {"catalogs": "x"}, "catalogs: a list"),
    ],
)
def test_configuration_errors_name_the_key(name, config, message):
    with pytest.raises(ConfigError, match=None) as err:
        build(name, config)
    assert message in str(err.value)


def test_twins_in_separate_traces_only_beneath_a_wrapper_known_to_break_context():
    def root(trace, span_id, scope, start=0, end=1000, **attrs):
        span = chat(span_id, start=start, end=end, scope=scope, **attrs)
        span.trace_id = trace
        return span

    openinference = {
        "openinference.span.kind": "LLM",
        "llm.system": "openai",
        "llm.model_name": "gpt-4o",
        "llm.token_count.prompt": 1000,
        "llm.token_count.completion": 100,
    }
    # OpenLLMetry never makes its Responses API span current: OpenInference's record of the same request
    # is the root of a trace of its own
    wrapper = root("1" * 32, "f1" * 8, "opentelemetry.instrumentation.openai.v1")
    wrapper.name = "openai.response"
    inner = root(
        "2" * 32, "f2" * 8, "openinference.instrumentation.openai", start=2, end=998, **openinference
    )
    batch = run(wrapper, inner)
    assert sorted(c.duplicate_of is None for c in batch.calls) == [False, True]
    # the same two records, but from an instrumentation that links its spans: not nested, so two calls
    linked = root("3" * 32, "f3" * 8, "opentelemetry.instrumentation.openai.v1")
    other = root(
        "4" * 32, "f4" * 8, "openinference.instrumentation.openai", start=2, end=998, **openinference
    )
    assert [c.duplicate_of for c in run(linked, other).calls] == [None, None]
    # two concurrent calls seen by one instrumentation are two calls, however alike
    same = run(
        root("5" * 32, "f5" * 8, "opentelemetry.instrumentation.openai.v1"),
        root("6" * 32, "f6" * 8, "opentelemetry.instrumentation.openai.v1"),
    )
    assert [c.duplicate_of for c in same.calls] == [None, None]


def test_chain_from_collector_style_yaml():
    import yaml

    from costspan.processors import chain_from_config

    config = yaml.safe_load(
        """
        processors:
          attribute:
            defaults: {team: platform}
          redact: {keep_content: true}
        service:
          pipelines:
            traces:
              processors: [normalize, price, attribute, redact]
        """
    )
    chain = chain_from_config(config["processors"], config["service"]["pipelines"]["traces"]["processors"])
    assert [p.name for p in chain.processors] == ["normalize", "price", "attribute", "redact"]
    batch = chain(SpanBatch.from_spans([chat("aa" * 8, **{"gen_ai.input.messages": "kept"})]))
    assert batch.calls[0].team == "platform" and batch.attributes[0]["gen_ai.input.messages"] == "kept"
    with pytest.raises(ConfigError, match=r"processors\.dedupe: configured but not in the pipeline"):
        chain_from_config({"dedupe": {}}, ["normalize"])
    assert [p.name for p in chain_from_config(None).processors] == list(
        ["normalize", "dedupe", "price", "attribute", "redact"]
    )


def test_shape_numbers_stand_for_one_shape_each_even_after_the_table_is_let_go(monkeypatch):
    a, b = ("gen_ai.request.model", "gen_ai.usage.input_tokens"), ("llm.model_name",)
    first = shape_ids([a, b, a])
    assert first[0] == first[2] != first[1]
    assert shape_ids([tuple(list(a))])[0] == first[0]  # an equal tuple, not the same object
    monkeypatch.setattr(_batch, "_SHAPE_ID_LIMIT", 0)
    again = shape_ids([b, a])  # the table is let go: new numbers, never an old one for another shape
    assert set(again).isdisjoint(first)
    assert again[0] != again[1]
