"""Every dialect to the canonical record. These spans are written by hand for conventions the current
libraries no longer emit; each names the version it represents. Spans captured from the current libraries
are checked in tests/processors/test_captured.py."""

from __future__ import annotations

import json

import pytest

from costspan.semconv import (
    AGENT,
    LLM,
    SELF_HOSTED,
    TOOL,
    WORKFLOW,
    canonical_provider,
    detect,
    provider_for_host,
    to_call,
)
from costspan.semconv import attributes as A
from costspan.semconv.providers import ai_sdk_provider

T0 = 1_750_000_000_000_000_000


def call_of(attrs, scope=None, resource=None):
    return to_call("ab" * 16, "cd" * 8, None, T0, T0 + 2_000_000_000, scope, attrs, resource or {})


def test_otel_semconv_1_26_prompt_and_completion_tokens():
    # semantic conventions 1.26: gen_ai.system, gen_ai.usage.prompt_tokens / completion_tokens
    call = call_of(
        {
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.response.model": "gpt-4o-2024-08-06",
            "gen_ai.usage.prompt_tokens": 120,
            "gen_ai.usage.completion_tokens": 30,
        }
    )
    assert call.kind == LLM and call.dialect == "otel_genai"
    assert (call.provider, call.model) == ("openai", "gpt-4o-2024-08-06")
    assert (call.input_tokens, call.output_tokens) == (120, 30)
    assert call.operation is None  # 1.26 spans did not always say; still a call: model + usage


def test_otel_semconv_1_36_system_and_openai_service_tier():
    # semantic conventions 1.36: gen_ai.system values az.ai.openai / xai, gen_ai.openai.response.service_tier
    call = call_of(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.system": "az.ai.openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 10,
            "gen_ai.usage.output_tokens": 5,
            "gen_ai.openai.response.service_tier": "default",
        }
    )
    assert call.provider == "azure.ai.openai" and call.service_tier == "default" and call.operation == "chat"
    assert canonical_provider("xai") == "x_ai"
    assert canonical_provider("gemini") == "gcp.gemini"


def test_otel_semconv_1_37_provider_name_and_1_41_cache_and_reasoning():
    # 1.37 renamed gen_ai.system to gen_ai.provider.name and gen_ai.openai.* to openai.*;
    # 1.41 added cache_read / cache_creation input and reasoning output counts (parts of the totals)
    call = call_of(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "o4-mini",
            "gen_ai.usage.input_tokens": 1000,
            "gen_ai.usage.cache_read.input_tokens": 600,
            "gen_ai.usage.cache_creation.input_tokens": 0,
            "gen_ai.usage.output_tokens": 500,
            "gen_ai.usage.reasoning.output_tokens": 320,
            "openai.response.service_tier": "flex",
            "gen_ai.response.time_to_first_chunk": 0.42,
        }
    )
    assert (call.input_tokens, call.cache_read_tokens, call.cache_write_tokens) == (1000, 600, 0)
    assert (call.output_tokens, call.reasoning_tokens) == (500, 320)
    assert call.service_tier == "flex" and call.time_to_first_chunk_s == 0.42


def test_semconv_drafts_cache_write():
    # the GenAI conventions' draft names (cache_write), as some SDKs already emit them
    call = call_of(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": "claude-sonnet-4-5",
            "gen_ai.usage.input_tokens": 5000,
            "gen_ai.usage.cache_write.input_tokens": 4000,
            "gen_ai.usage.input_tokens.cached": 500,
            "gen_ai.usage.output_tokens": 10,
        }
    )
    assert (call.cache_write_tokens, call.cache_read_tokens) == (4000, 500)


def test_openllmetry_before_0_5_conventions():
    # OpenLLMetry up to 0.53 (semantic-conventions-ai 0.4): capitalised gen_ai.system, llm.request.type,
    # gen_ai.usage.prompt_tokens, gen_ai.usage.cache_read_input_tokens, llm.usage.total_tokens
    call = call_of(
        {
            "gen_ai.system": "Anthropic",
            "llm.request.type": "chat",
            "gen_ai.request.model": "claude-3-5-sonnet-20241022",
            "gen_ai.usage.prompt_tokens": 2100,
            "gen_ai.usage.completion_tokens": 80,
            "gen_ai.usage.cache_read_input_tokens": 2000,
            "gen_ai.usage.cache_creation_input_tokens": 0,
            "llm.usage.total_tokens": 2180,
        },
        scope="opentelemetry.instrumentation.anthropic",
    )
    assert call.dialect == "openllmetry" and call.operation == "chat"
    assert call.provider == "anthropic"
    assert (call.input_tokens, call.cache_read_tokens, call.output_tokens) == (2100, 2000, 80)


def test_openllmetry_workflow_and_tool_spans():
    workflow = call_of(
        {"traceloop.span.kind": "workflow", "traceloop.entity.name": "answer"}, "traceloop.sdk"
    )
    tool = call_of({"traceloop.span.kind": "tool", "traceloop.entity.name": "search"}, "traceloop.sdk")
    assert (workflow.kind, workflow.name) == (WORKFLOW, "answer")
    assert (tool.kind, tool.name) == (TOOL, "search")
    # another contrib instrumentation under the same scope prefix is not GenAI
    assert call_of({"http.route": "/x"}, "opentelemetry.instrumentation.flask") is None


def test_openinference():
    call = call_of(
        {
            "openinference.span.kind": "LLM",
            "llm.provider": "openai",
            "llm.system": "openai",
            "llm.model_name": "gpt-4o-mini-2024-07-18",
            "llm.token_count.prompt": 900,
            "llm.token_count.completion": 50,
            "llm.token_count.total": 950,
            "llm.token_count.prompt_details.cache_read": 512,
            "llm.token_count.prompt_details.audio": 100,
            "llm.token_count.completion_details.reasoning": 0,
            "llm.cost.total": 0.0001,
        },
        scope="openinference.instrumentation.openai",
    )
    assert call.dialect == "openinference" and call.operation == "chat"
    assert (call.input_tokens, call.cache_read_tokens, call.output_tokens) == (900, 512, 50)
    assert call.other_usage == {"input_audio_tokens": 100}
    assert call.reported_cost == 0.0001 and call.provider_cost is None  # an estimate, not a bill
    embedding = call_of(
        {"openinference.span.kind": "EMBEDDING", "embedding.model_name": "text-embedding-3-small"}
    )
    assert embedding.operation == "embeddings" and embedding.request_model == "text-embedding-3-small"
    agent = call_of({"openinference.span.kind": "AGENT"})
    assert agent.kind == AGENT
    assert call_of({"openinference.span.kind": "UNKNOWN"}) is None


def test_openlit_and_logfire_costs_are_kept_as_estimates():
    openlit = call_of(
        {
            "gen_ai.system": "openai",
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 1,
            "gen_ai.usage.output_tokens": 1,
            "gen_ai.usage.cost": 0.00002,
        },
        scope="openlit.otel.tracing",
    )
    logfire = call_of(
        {
            "gen_ai.system": "openai",
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o",
            "operation.cost": 0.5,
        },
        scope="logfire.openai",
    )
    assert (openlit.dialect, openlit.reported_cost) == ("openlit", 0.00002)
    assert (logfire.dialect, logfire.reported_cost) == ("logfire", 0.5)


def test_langfuse_usage_types_exclude_their_details():
    # Langfuse's own usage types are priced apart (langfuse/langfuse packages/shared/src/server/ingestion/
    # types.ts subtracts OpenAI's details from input / output): input excludes the cache, output reasoning
    call = call_of(
        {
            "langfuse.observation.type": "generation",
            "langfuse.observation.model.name": "gpt-4o",
            "langfuse.observation.usage_details": json.dumps(
                {"input": 400, "output": 20, "input_cached_tokens": 100, "output_reasoning_tokens": 8}
            ),
            "langfuse.observation.cost_details": '{"input": 0.001, "output": 0.0002, "total": 0.0012}',
            "langfuse.user.id": "u-1",
        },
        scope="langfuse-sdk",
    )
    assert call.dialect == "langfuse" and call.kind == LLM
    assert (call.input_tokens, call.cache_read_tokens) == (500, 100)
    assert (call.output_tokens, call.reasoning_tokens) == (28, 8)
    assert call.reported_cost == 0.0012 and call.provider_cost is None  # Langfuse's estimate, not a bill
    broken = call_of({"langfuse.observation.type": "generation", "langfuse.observation.usage_details": "{"})
    assert broken.flags == ("langfuse usage_details is not JSON",)


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        # Anthropic's usage as Langfuse's docs pass it: input_tokens excludes cache reads and writes
        (
            {"input_tokens": 20, "output_tokens": 13, "cache_read_input_tokens": 1024,
             "cache_creation_input_tokens": 135},
            (1179, 13, 1024, 135, None, None),
        ),
        # LangChain's usage metadata through Langfuse's callback handler: input_<detail>, subtracted
        (
            {"input": 20, "output": 10, "input_cache_read": 1024, "input_cache_creation": 135,
             "output_reasoning": 4, "total": 1193},
            (1179, 14, 1024, 135, None, 4),
        ),
        # 5-minute and 1-hour writes only
        (
            {"input": 10, "output": 1, "input_cache_creation_5m": 100, "input_cache_creation_1h": 50},
            (160, 1, None, 150, 50, None),
        ),
        # an embedding: langfuse.openai writes {"input": prompt_tokens}
        ({"input": 7}, (7, None, None, None, None, None)),
    ],
)  # fmt: skip
def test_langfuse_usage_types_to_canonical(usage, expected):
    call = call_of(
        {
            "langfuse.observation.type": "generation",
            "langfuse.observation.model.name": "claude-sonnet-4-5",
            "langfuse.observation.usage_details": json.dumps(usage),
        },
        scope="langfuse-sdk",
    )
    fields = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
    got = (*(getattr(call, f) for f in fields), call.cache_write_1h_tokens, call.reasoning_tokens)
    assert got == expected


def test_langfuse_openai_usage_objects_include_their_details():
    # langfuse.openai writes OpenAI's usage object as it came; its totals include cache and reasoning
    chat = {
        "prompt_tokens": 1034,
        "completion_tokens": 77,
        "total_tokens": 1111,
        "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 3},
        "completion_tokens_details": {"reasoning_tokens": 64, "audio_tokens": 0},
    }
    responses = {
        "input_tokens": 1038,
        "input_tokens_details": {"cached_tokens": 1024},
        "output_tokens": 77,
        "output_tokens_details": {"reasoning_tokens": 64},
        "total_tokens": 1115,
    }
    for usage, input_tokens in ((chat, 1034), (responses, 1038)):
        call = call_of(
            {
                "langfuse.observation.type": "generation",
                "langfuse.observation.usage_details": json.dumps(usage),
            }
        )
        assert (call.input_tokens, call.cache_read_tokens) == (input_tokens, 1024)
        assert (call.output_tokens, call.reasoning_tokens) == (77, 64)
    assert call_of(
        {"langfuse.observation.type": "generation", "langfuse.observation.usage_details": json.dumps(chat)}
    ).other_usage == {"input_audio_tokens": 3}


def test_anthropic_sdk_one_hour_cache_writes():
    call = call_of(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": "claude-sonnet-4-5",
            "gen_ai.usage.input_tokens": 10_000,
            "gen_ai.usage.cache_creation.input_tokens": 3000,
            A.ANTHROPIC_CACHE_CREATION_1H: 1000,
            A.ANTHROPIC_CACHE_CREATION_5M: 2000,
            "gen_ai.usage.output_tokens": 10,
        },
        scope="com.anthropic.sdk.python",
    )
    assert call.dialect == "anthropic_sdk"
    assert (call.cache_write_tokens, call.cache_write_1h_tokens) == (3000, 1000)


def test_provider_from_server_address_and_self_hosted():
    call = call_of(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "llama3.1:8b",
            "server.address": "localhost",
            "gen_ai.provider.name": "openai",
        }
    )
    # the span's provider is kept (the server may be a gateway to it); pricing decides
    assert call.provider == "openai" and call.local_server and call.server_address == "localhost"
    unnamed = call_of(
        {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m", "server.address": "10.0.0.5"}
    )
    assert unnamed.provider == SELF_HOSTED and unnamed.local_server
    groq = call_of(
        {"gen_ai.operation.name": "chat", "gen_ai.request.model": "x", "server.address": "api.groq.com"}
    )
    assert groq.provider == "groq"
    for host, provider in [
        ("api.openai.com", "openai"),
        ("myres.openai.azure.com", "azure.ai.openai"),
        ("api.anthropic.com", "anthropic"),
        ("generativelanguage.googleapis.com", "gcp.gemini"),
        ("bedrock-runtime.us-east-1.amazonaws.com", "aws.bedrock"),
        ("openrouter.ai", "openrouter"),
        ("api.together.xyz", "together"),
        ("api.fireworks.ai", "fireworks"),
        ("api.deepseek.com", "deepseek"),
        ("api.x.ai", "x_ai"),
        ("api.mistral.ai", "mistral_ai"),
        ("127.0.0.1", SELF_HOSTED),
        ("10.1.2.3", SELF_HOSTED),
        ("vllm.svc", SELF_HOSTED),
        ("example.com", None),
    ]:
        assert provider_for_host(host) == provider, host


def test_http_client_spans_to_providers():
    attrs = {"http.request.method": "POST", "url.full": "https://api.anthropic.com/v1/messages"}
    call = call_of(attrs, scope="opentelemetry.instrumentation.httpx")
    assert (call.kind, call.dialect, call.provider) == (LLM, "http", "anthropic")
    assert call.input_tokens is None
    # other endpoints, other hosts: not calls
    assert (
        call_of({"url.full": "https://api.openai.com/v1/models"}, "opentelemetry.instrumentation.httpx")
        is None
    )
    assert (
        call_of({"url.full": "https://example.com/v1/messages"}, "opentelemetry.instrumentation.httpx")
        is None
    )


def test_agent_tool_and_other_operations():
    agent = call_of({"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"})
    tool = call_of({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"})
    assert (agent.kind, agent.name) == (AGENT, "planner")
    assert (tool.kind, tool.name) == (TOOL, "search")
    assert call_of({"http.route": "/"}) is None
    assert detect(None, {"db.system": "postgresql"}) is None


@pytest.mark.parametrize(
    ("value", "expected", "flagged"),
    [
        (12.0, 12, False),
        ("34", 34, False),
        (-3, -3, False),
        (1.5, 1.5, True),
        ("many", "many", True),
        (float("nan"), None, True),
    ],
)
def test_odd_counts_are_kept_and_flagged(value, expected, flagged):
    call = call_of(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": value,
        }
    )
    if expected is None:
        assert call.input_tokens != call.input_tokens  # NaN kept as it came
    else:
        assert call.input_tokens == expected
    assert bool(call.flags) is flagged


def test_opentelemetry_names_match_the_installed_conventions():
    gen_ai = pytest.importorskip("opentelemetry.semconv._incubating.attributes.gen_ai_attributes")
    for name in dir(gen_ai):
        if name.startswith("GEN_AI_") and hasattr(A, name) and isinstance(getattr(gen_ai, name), str):
            assert getattr(A, name) == getattr(gen_ai, name), name
    assert A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS == gen_ai.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS
    assert A.GEN_AI_PROVIDER_NAME == gen_ai.GEN_AI_PROVIDER_NAME


def test_raw_anthropic_input_count_is_converted():
    # OpenLLMetry's anthropic instrumentation before its 0.5 conventions copied Anthropic's raw
    # input_tokens, which excludes cache reads and writes
    call = call_of(
        {
            "gen_ai.system": "Anthropic",
            "llm.request.type": "chat",
            "gen_ai.request.model": "claude-3-5-sonnet-20241022",
            "gen_ai.usage.prompt_tokens": 20,
            "gen_ai.usage.cache_read_input_tokens": 1024,
            "gen_ai.usage.cache_creation_input_tokens": 135,
            "gen_ai.usage.completion_tokens": 13,
        },
        scope="opentelemetry.instrumentation.anthropic",
    )
    assert call.input_tokens == 1179
    assert "cache tokens added" in call.flags[0]


def test_a_forwarded_cost_is_compared_not_taken_unless_the_provider_billed_it():
    # a span another costspan priced and forwarded: gen_ai.usage.cost.* with source "local"
    usage = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 1000,
        "gen_ai.usage.output_tokens": 100,
        "gen_ai.usage.cost.amount": 0.0035,
        "gen_ai.usage.cost.currency": "USD",
    }
    forwarded = call_of(
        {**usage, "gen_ai.usage.cost.source": "local"}, scope="opentelemetry.instrumentation.openai_v2"
    )
    assert forwarded.reported_cost == 0.0035 and forwarded.provider_cost is None
    assert (forwarded.input_tokens, forwarded.output_tokens) == (1000, 100)  # priced again from these
    billed = call_of({**usage, "gen_ai.usage.cost.source": "provider"})
    assert str(billed.provider_cost) == "0.0035" and billed.reported_cost is None


# -- the AI SDK (npm ai): spans as ai 4, 5 and 7 write them (captures: tests/fixtures/genai/vercel_ai_*) --


def ai_sdk_call(operation_id, usage, metadata=None, provider="anthropic.messages", **extra):
    attrs = {
        "operation.name": operation_id,
        "ai.operationId": operation_id,
        "ai.model.provider": provider,
        "ai.model.id": "claude-sonnet-4-5",
        "gen_ai.system": provider,
        "ai.response.model": "claude-sonnet-4-5-20250929",
        **usage,
        **extra,
    }
    if metadata is not None:
        attrs["ai.response.providerMetadata"] = json.dumps(metadata)
    return call_of(attrs, scope="ai")


def test_ai_sdk_4_anthropic_input_excludes_the_cache_kept_in_provider_metadata():
    # ai 4 with @ai-sdk/anthropic 1: promptTokens is Anthropic's input_tokens (no cache reads or writes),
    # the cache counts are in the provider metadata only; more uncached input than cached, so no guess would
    # have caught it
    call = ai_sdk_call(
        "ai.generateText.doGenerate",
        {"ai.usage.promptTokens": 5000, "ai.usage.completionTokens": 40},
        {"anthropic": {"cacheCreationInputTokens": 200, "cacheReadInputTokens": 1000}},
    )
    assert (call.kind, call.dialect, call.operation, call.provider) == (LLM, "vercel_ai", "chat", "anthropic")
    assert (call.request_model, call.response_model) == ("claude-sonnet-4-5", "claude-sonnet-4-5-20250929")
    assert (call.input_tokens, call.cache_read_tokens, call.cache_write_tokens) == (6200, 1000, 200)
    assert call.output_tokens == 40 and call.streaming is False and not call.flags


def test_ai_sdk_5_anthropic_cached_input_tokens_and_the_raw_usage():
    call = ai_sdk_call(
        "ai.streamText.doStream",
        {"ai.usage.inputTokens": 5000, "ai.usage.outputTokens": 40, "ai.usage.cachedInputTokens": 1000},
        {
            "anthropic": {
                "usage": {
                    "input_tokens": 5000,
                    "cache_creation_input_tokens": 200,
                    "cache_read_input_tokens": 1000,
                    "cache_creation": {"ephemeral_5m_input_tokens": 150, "ephemeral_1h_input_tokens": 50},
                }
            }
        },
        **{"ai.response.msToFirstChunk": 76.5},
    )
    assert (call.input_tokens, call.cache_read_tokens, call.cache_write_tokens) == (6200, 1000, 200)
    assert call.cache_write_1h_tokens == 50
    assert call.streaming is True and call.time_to_first_chunk_s == 0.0765


def test_ai_sdk_and_langfuse_service_tier():
    # the tier the response reports, from the AI SDK's provider metadata or Langfuse's model parameters
    flex = ai_sdk_call(
        "ai.generateText.doGenerate",
        {"ai.usage.inputTokens": 10, "ai.usage.outputTokens": 2},
        {"openai": {"responseId": "resp_1", "serviceTier": "flex"}},
        provider="openai.responses",
    )
    langfuse = call_of(
        {
            "langfuse.observation.type": "generation",
            "langfuse.observation.model.name": "o4-mini",
            "langfuse.observation.model.parameters": '{"temperature": 1, "service_tier": "priority"}',
        }
    )
    assert (flex.service_tier, langfuse.service_tier) == ("flex", "priority")


def test_ai_sdk_7_input_token_details_include_the_cache():
    # ai 6+ (LanguageModelV3): inputTokens includes cache reads and writes, with their details beside it
    call = ai_sdk_call(
        "ai.generateText.doGenerate",
        {
            "ai.usage.inputTokens": 6200,
            "ai.usage.outputTokens": 40,
            "ai.usage.cachedInputTokens": 1000,
            "ai.usage.inputTokenDetails.noCacheTokens": 5000,
            "ai.usage.inputTokenDetails.cacheReadTokens": 1000,
            "ai.usage.inputTokenDetails.cacheWriteTokens": 200,
            "ai.usage.outputTokenDetails.reasoningTokens": 12,
        },
        {"anthropic": {"usage": {"input_tokens": 5000, "cache_creation": {"ephemeral_1h_input_tokens": 50}}}},
    )
    assert (call.input_tokens, call.cache_read_tokens, call.cache_write_tokens) == (6200, 1000, 200)
    assert (call.cache_write_1h_tokens, call.output_tokens, call.reasoning_tokens) == (50, 40, 12)


def test_ai_sdk_4_openai_cached_and_reasoning_counts_from_provider_metadata():
    call = ai_sdk_call(
        "ai.generateText.doGenerate",
        {"ai.usage.promptTokens": 1034, "ai.usage.completionTokens": 77},
        {"openai": {"reasoningTokens": 64, "cachedPromptTokens": 1024, "acceptedPredictionTokens": 0}},
        provider="openai.chat",
    )
    assert call.provider == "openai" and call.input_tokens == 1034  # OpenAI's count includes the cache
    assert (call.cache_read_tokens, call.output_tokens, call.reasoning_tokens) == (1024, 77, 64)


def test_ai_sdk_span_around_the_provider_call_is_a_workflow_and_tool_calls_are_tools():
    usage = {"ai.usage.promptTokens": 10, "ai.usage.completionTokens": 5}
    outer = ai_sdk_call("ai.generateText", usage, **{"ai.telemetry.functionId": "support-triage"})
    unnamed = ai_sdk_call("ai.streamText", usage)
    embed = ai_sdk_call("ai.embed.doEmbed", {"ai.usage.tokens": 5}, provider="openai.embedding")
    tool = call_of({"ai.operationId": "ai.toolCall", "ai.toolCall.name": "lookup_order"}, scope="ai")
    assert (outer.kind, outer.name, outer.input_tokens) == (WORKFLOW, "support-triage", None)
    assert (unnamed.kind, unnamed.name) == (WORKFLOW, "ai.streamText")
    assert (embed.kind, embed.operation, embed.input_tokens, embed.provider) == (
        LLM,
        "embeddings",
        5,
        "openai",
    )
    assert (tool.kind, tool.name) == (TOOL, "lookup_order")


@pytest.mark.parametrize(
    ("value", "provider"),
    [
        ("openai.chat", "openai"),
        ("openai.responses", "openai"),
        ("anthropic.messages", "anthropic"),
        ("google.generative-ai", "gcp.gemini"),
        ("google.vertex.chat", "gcp.vertex_ai"),
        ("vertex.anthropic.messages", "gcp.vertex_ai"),
        ("amazon-bedrock", "aws.bedrock"),
        ("azure.responses", "azure.ai.openai"),
        ("mistral.chat", "mistral_ai"),
        ("groq.chat", "groq"),
        ("xai.chat", "x_ai"),
        ("gateway", None),  # the model id names the provider: openai/gpt-4o
    ],
)
def test_ai_sdk_provider_names(value, provider):
    assert ai_sdk_provider(value) == provider


# -- pydantic-ai (scope pydantic-ai, read as Logfire's) ----------------------------------------------------


def test_pydantic_ai_usage_details():
    # pydantic-ai's RequestUsage.opentelemetry_attributes: input includes the cache, details beside it
    call = call_of(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": "claude-sonnet-4-5",
            "gen_ai.usage.input_tokens": 6200,
            "gen_ai.usage.output_tokens": 40,
            "gen_ai.usage.details.cache_read_tokens": 1000,
            "gen_ai.usage.details.cache_write_tokens": 200,
            "gen_ai.usage.details.ephemeral_1h_input_tokens": 50,
            "gen_ai.usage.details.reasoning_tokens": 12,
            "gen_ai.usage.details.input_audio_tokens": 30,
            "operation.cost": 0.02,
        },
        scope="pydantic-ai",
    )
    assert call.dialect == "logfire" and call.reported_cost == 0.02
    assert (call.input_tokens, call.cache_read_tokens, call.cache_write_tokens) == (6200, 1000, 200)
    assert (call.cache_write_1h_tokens, call.reasoning_tokens) == (50, 12)
    assert call.other_usage == {"input_audio_tokens": 30}
    agent = call_of({"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "agent"}, "pydantic-ai")
    assert agent.kind == AGENT
