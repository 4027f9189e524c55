"""Reading a provider's response objects into a :class:`Call`: model, id, service tier and usage, converted
to the canonical arithmetic (input includes cache reads and writes; output includes reasoning).

Each function takes one parsed JSON object (a whole response, or the stream event that carries usage), so
objects are tested with ``isinstance(x, dict)``: the ``Mapping`` test would go through the ABC machinery
for each.
"""

from __future__ import annotations

from typing import Any

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
