"""Reading a provider's response objects into a :class:`Call`: model, id, service tier and usage, converted
to the canonical arithmetic (input includes cache reads and writes; output includes reasoning).

Each function takes one parsed JSON object (a whole response, or the stream event that carries usage), so
objects are tested with ``isinstance(x, dict)``: the ``Mapping`` test would go through the ABC machinery
for each.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from costspan.semconv import attributes as A

from ._call import Call
from ._endpoints import ANTHROPIC, BEDROCK, GEMINI, OLLAMA


def _int(value: Any) -> int | None:
    return value if type(value) is int else None


def read_response(call: Call, obj: Any) -> None:
    """A whole (non-streaming) response body."""
    if isinstance(obj, list):  # Gemini's streamGenerateContent without alt=sse: a JSON array of chunks
        for item in obj:
            read_response(call, item)
        return
    if not isinstance(obj, dict):
        return
    wire_format = call.endpoint.wire_format
    if wire_format == ANTHROPIC:
        read_anthropic_message(call, obj)
    elif wire_format == GEMINI:
        read_gemini(call, obj)
    elif wire_format == BEDROCK:
        read_bedrock(call, obj)
    elif wire_format == OLLAMA:
        read_ollama(call, obj)
    else:
        read_openai(call, obj)


def read_openai(call: Call, obj: dict[str, Any]) -> None:
    """A chat completion (or chunk), a Responses API response, embeddings, images or a transcription."""
    model = obj.get("model")
    if isinstance(model, str) and call.response_model is None:
        call.response_model = model
    response_id = obj.get("id")
    if isinstance(response_id, str) and call.response_id is None:
        call.response_id = response_id
    tier = obj.get("service_tier")
    if isinstance(tier, str):
        call.service_tier = tier
    usage = obj.get("usage")
    if isinstance(usage, dict):
        openai_usage(call, usage)
        return
    groq = obj.get("x_groq")
    if isinstance(groq, dict):
        # Groq's stream reports usage in the last chunk's x_groq object (Groq's API reference,
        # https://console.groq.com/docs/api-reference; its fields: groq-typescript's CompletionUsage)
        usage = groq.get("usage")
        if isinstance(usage, dict):
            openai_usage(call, usage)


def openai_usage(call: Call, usage: dict[str, Any]) -> None:
    get = usage.get
    if get("type") == "duration":  # a transcription billed by audio length
        seconds = get("seconds")
        if isinstance(seconds, (int, float)) and not isinstance(seconds, bool):
            call.extra = {**(call.extra or {}), "input_audio_seconds": seconds}
        return
    # chat completions and embeddings say prompt/completion; the Responses API, images and audio say
    # input/output. Both include cached and reasoning tokens already.
    input_tokens = get("prompt_tokens")
    if type(input_tokens) is not int:
        input_tokens = _int(get("input_tokens"))
    output_tokens = get("completion_tokens")
    if type(output_tokens) is not int:
        output_tokens = _int(get("output_tokens"))
    call.input_tokens = input_tokens
    call.output_tokens = output_tokens
    input_details = get("prompt_tokens_details") or get("input_tokens_details")
    if isinstance(input_details, dict):
        cached = input_details.get("cached_tokens")
        if type(cached) is int:
            call.cache_read_tokens = cached
        written = input_details.get("cache_write_tokens")
        if type(written) is int and written:
            call.cache_write_tokens = written
    output_details = get("completion_tokens_details") or get("output_tokens_details")
    if isinstance(output_details, dict):
        reasoning = output_details.get("reasoning_tokens")
        if type(reasoning) is int:
            call.reasoning_tokens = reasoning
            if type(output_tokens) is int and reasoning > output_tokens:
                # a part larger than its whole: the output leaves reasoning out, as xAI's grok-3-mini
                # counted it (later models count it in, as OpenAI does). The one sure sign: text_tokens is
                # a modality's count to some providers, the visible text to others.
                call.output_tokens = output_tokens + reasoning
    if not usage.keys() <= _OPENAI_USAGE_KEYS:  # a test of a few keys, in C
        _provider_usage(call, usage)


# the members of OpenAI's usage objects (chat completions and embeddings; the Responses API, images, audio)
_OPENAI_USAGE_KEYS = frozenset(
    {
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "prompt_tokens_details",
        "completion_tokens_details",
        "input_tokens",
        "output_tokens",
        "input_tokens_details",
        "output_tokens_details",
    }
)


def _provider_usage(call: Call, usage: dict[str, Any]) -> None:
    """Usage members of OpenAI-compatible providers beyond OpenAI's, recognised by their names (a gateway
    passes them on whatever its host is)."""
    get = usage.get
    # DeepSeek: prompt_tokens = prompt_cache_hit_tokens + prompt_cache_miss_tokens
    # (https://api-docs.deepseek.com/guides/kv_cache; the sum as the deepseek-sdk crate's field docs state it)
    hit = get("prompt_cache_hit_tokens")
    if type(hit) is int and call.cache_read_tokens is None:
        call.cache_read_tokens = hit
    # OpenRouter: usage.cost is what the call cost, in credits (US dollars); with a key of the
    # application's own (is_byok), cost_details.upstream_inference_cost is what the upstream provider
    # charged on top (https://openrouter.ai/docs/use-cases/usage-accounting).
    # Perplexity: usage.cost.total_cost, in US dollars (https://docs.perplexity.ai/api-reference).
    cost = get("cost")
    if isinstance(cost, dict):
        cost = cost.get("total_cost")
    amount = _money(cost)
    if amount is not None:
        details = get("cost_details")
        if get("is_byok") is True and isinstance(details, dict):
            upstream = _money(details.get("upstream_inference_cost"))
            amount += upstream or 0
        call.provider_cost = amount
    if "num_search_queries" in usage or "citation_tokens" in usage or "search_context_size" in usage:
        _perplexity_usage(call, usage)
    # xAI: live search sources; no catalog unit prices them
    sources = get("num_sources_used")
    if type(sources) is int and sources > 0:
        call.provider_attributes = {**(call.provider_attributes or {}), A.XAI_USAGE_NUM_SOURCES_USED: sources}
    # Groq: seconds spent queued, reading the prompt, generating, and in all
    timings = {
        A.GROQ_USAGE_PREFIX + key: value
        for key in _GROQ_TIMINGS
        if isinstance(value := get(key), (int, float)) and not isinstance(value, bool)
    }
    if timings:
        call.provider_attributes = {**(call.provider_attributes or {}), **timings}
    # Mistral: seconds of audio input (UsageInfo.prompt_audio_seconds of Mistral's API spec), the catalog's
    # input_audio_seconds
    audio = get("prompt_audio_seconds")
    if isinstance(audio, (int, float)) and not isinstance(audio, bool) and audio > 0:
        call.extra = {**(call.extra or {}), "input_audio_seconds": audio}


_GROQ_TIMINGS = ("queue_time", "prompt_time", "completion_time", "total_time")


def _perplexity_usage(call: Call, usage: dict[str, Any]) -> None:
    """Perplexity's completion_tokens leaves out reasoning and citation tokens (total_tokens = prompt +
    completion), which sonar-deep-research bills apart, with its search queries
    (https://docs.perplexity.ai/api-reference). In the canonical arithmetic both token counts are parts of
    the output; the citations and searches are the catalog's output_citation_tokens and web_searches."""
    reasoning = _int(usage.get("reasoning_tokens"))
    citation = _int(usage.get("citation_tokens"))
    searches = _int(usage.get("num_search_queries"))
    if call.output_tokens is not None:
        call.output_tokens += (reasoning or 0) + (citation or 0)
    if reasoning:
        call.reasoning_tokens = reasoning
    extra = dict(call.extra or {})
    if citation:
        extra["output_citation_tokens"] = citation
    if searches:
        extra["web_searches"] = searches
    call.extra = extra or None


def _money(value: Any) -> Decimal | None:
    """A non-negative amount as the JSON wrote it (a float's shortest text is the JSON's number)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    try:
        amount = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        return None
    return amount if amount.is_finite() and amount >= 0 else None


def read_anthropic_message(call: Call, message: dict[str, Any]) -> None:
    """A message (a whole response, or the ``message`` of a ``message_start`` event)."""
    model = message.get("model")
    if isinstance(model, str):
        call.response_model = model
    message_id = message.get("id")
    if isinstance(message_id, str):
        call.response_id = message_id
    usage = message.get("usage")
    if isinstance(usage, dict):
        anthropic_usage(call, usage)


def anthropic_usage(call: Call, usage: dict[str, Any]) -> None:
    """Anthropic's ``input_tokens`` excludes cache reads and writes; ``message_delta`` usage is cumulative,
    so later values replace earlier ones, and a field a delta leaves out keeps its earlier value."""
    raw_input = _int(usage.get("input_tokens"))
    read = _int(usage.get("cache_read_input_tokens"))
    written = _int(usage.get("cache_creation_input_tokens"))
    if read is not None:
        call.cache_read_tokens = read
    if written is not None:
        call.cache_write_tokens = written
    split = usage.get("cache_creation")
    if isinstance(split, dict):
        five = _int(split.get("ephemeral_5m_input_tokens"))
        hour = _int(split.get("ephemeral_1h_input_tokens"))
        if five is not None:
            call.cache_write_5m_tokens = five
        if hour is not None:
            call.cache_write_1h_tokens = hour
    if raw_input is not None:
        call.input_tokens = raw_input + (call.cache_read_tokens or 0) + (call.cache_write_tokens or 0)
    output_tokens = _int(usage.get("output_tokens"))
    if output_tokens is not None:
        call.output_tokens = output_tokens
    tier = usage.get("service_tier")
    if isinstance(tier, str):
        call.service_tier = tier


def read_gemini(call: Call, obj: dict[str, Any]) -> None:
    model = obj.get("modelVersion")
    if isinstance(model, str):
        call.response_model = model
    response_id = obj.get("responseId")
    if isinstance(response_id, str):
        call.response_id = response_id
    usage = obj.get("usageMetadata")
    if isinstance(usage, dict):
        # promptTokenCount includes cached content; candidatesTokenCount excludes thinking tokens
        prompt = _int(usage.get("promptTokenCount"))
        candidates = _int(usage.get("candidatesTokenCount"))
        thoughts = _int(usage.get("thoughtsTokenCount"))
        cached = _int(usage.get("cachedContentTokenCount"))
        if prompt is not None:
            call.input_tokens = prompt
        if candidates is not None or thoughts is not None:
            call.output_tokens = (candidates or 0) + (thoughts or 0)
        if thoughts is not None:
            call.reasoning_tokens = thoughts
        if cached is not None:
            call.cache_read_tokens = cached


def read_bedrock(call: Call, obj: dict[str, Any]) -> None:
    usage = obj.get("usage")
    if not isinstance(usage, dict):
        return
    # Converse's inputTokens excludes cache reads and writes
    raw_input = _int(usage.get("inputTokens"))
    read = _int(usage.get("cacheReadInputTokens"))
    written = _int(usage.get("cacheWriteInputTokens"))
    if read is not None:
        call.cache_read_tokens = read
    if written is not None:
        call.cache_write_tokens = written
    if raw_input is not None:
        call.input_tokens = raw_input + (read or 0) + (written or 0)
    output_tokens = _int(usage.get("outputTokens"))
    if output_tokens is not None:
        call.output_tokens = output_tokens


def read_ollama(call: Call, obj: dict[str, Any]) -> None:
    model = obj.get("model")
    if isinstance(model, str):
        call.response_model = model
    prompt = _int(obj.get("prompt_eval_count"))
    output = _int(obj.get("eval_count"))
    if prompt is not None:
        call.input_tokens = prompt
    if output is not None:
        call.output_tokens = output
