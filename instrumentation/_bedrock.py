"""Reading Amazon Bedrock Runtime responses, as boto3 hands them to the application, into a :class:`Call`.

Where each operation reports usage (Bedrock API reference:
https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_TokenUsage.html,
https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_CacheDetail.html):

- Converse: the response's ``usage`` (``inputTokens``, ``outputTokens``, ``totalTokens``,
  ``cacheReadInputTokens``, ``cacheWriteInputTokens``, and ``cacheDetails``, the cache writes by TTL);
  ConverseStream: the same object in the stream's last event, ``metadata``.
- InvokeModel: the ``X-Amzn-Bedrock-Input-Token-Count`` / ``-Output-Token-Count`` /
  ``-Cache-Read-Input-Token-Count`` / ``-Cache-Write-Input-Token-Count`` response headers, read first; the
  body is in the model family's own format (Anthropic's ``usage.input_tokens`` ...,
  Amazon Nova's ``usage.inputTokens``, Titan's ``inputTextTokenCount``, Meta Llama's ``prompt_token_count`` /
  ``generation_token_count``) and fills in what the headers lack.
- InvokeModelWithResponseStream: ``chunk`` events whose bytes are the model's own stream events; the last
  one carries ``amazon-bedrock-invocationMetrics`` (``inputTokenCount``, ``outputTokenCount``, and the cache
  counts where the model caches). Before it, Anthropic's ``message_start`` and cumulative ``message_delta``,
  Meta Llama's counts and Amazon Nova's ``metadata`` (its chunks are ConverseStream's events) give the usage
  of a stream cut short.

Bedrock's input counts exclude the cache reads and writes, as Converse's ``inputTokens`` does: every form is
read into Converse's names and converted by :func:`~costspan.instrumentation._usage.read_bedrock`, the one
home of that rule.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ._call import Call
from ._usage import anthropic_usage, read_bedrock

# InvokeModel's usage headers (as botocore lowers them) -> Converse's usage names
_HEADERS = (
    ("x-amzn-bedrock-input-token-count", "inputTokens"),
    ("x-amzn-bedrock-output-token-count", "outputTokens"),
    ("x-amzn-bedrock-cache-read-input-token-count", "cacheReadInputTokens"),
    ("x-amzn-bedrock-cache-write-input-token-count", "cacheWriteInputTokens"),
)
# amazon-bedrock-invocationMetrics (and Nova's InvokeModel usage) -> Converse's usage names
_METRICS = (
    ("inputTokenCount", "inputTokens"),
    ("outputTokenCount", "outputTokens"),
    ("cacheReadInputTokenCount", "cacheReadInputTokens"),
    ("cacheWriteInputTokenCount", "cacheWriteInputTokens"),
)
INVOCATION_METRICS = "amazon-bedrock-invocationMetrics"
_INVOCATION_METRICS_BYTES = INVOCATION_METRICS.encode()
_TTL_FIELDS = {"5m": "cache_write_5m_tokens", "1h": "cache_write_1h_tokens"}


def _count(value: Any) -> int | None:
    return value if type(value) is int else None


def converse_usage(call: Call, usage: Any) -> None:
    """Converse's ``usage`` (or the ``usage`` of ConverseStream's ``metadata`` event)."""
    if not isinstance(usage, dict):
        return
    read_bedrock(call, {"usage": usage})
    details = usage.get("cacheDetails")
    if isinstance(details, list):
        for detail in details:
            if isinstance(detail, dict):
                field = _TTL_FIELDS.get(detail.get("ttl"))  # type: ignore[arg-type]
                tokens = _count(detail.get("inputTokens"))
                if field is not None and tokens is not None:
                    setattr(call, field, tokens)


def _renamed(
    call: Call, source: Mapping[str, Any], names: tuple[tuple[str, str], ...], convert: Any = _count
) -> dict[str, int]:
    """``source``'s counts under Converse's names; a cache count it lacks is the one already read (Anthropic's
    ``message_start``), so that the input it is added to stays whole."""
    usage: dict[str, int] = {}
    for name, converse_name in names:
        value = convert(source.get(name))
        if value is not None:
            usage[converse_name] = value
    if "cacheReadInputTokens" not in usage and call.cache_read_tokens is not None:
        usage["cacheReadInputTokens"] = call.cache_read_tokens
    if "cacheWriteInputTokens" not in usage and call.cache_write_tokens is not None:
        usage["cacheWriteInputTokens"] = call.cache_write_tokens
    return usage


def _header_count(value: Any) -> int | None:
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def header_usage(call: Call, headers: Mapping[str, Any]) -> bool:
    """InvokeModel's usage headers; whether they gave the input and output counts."""
    usage = _renamed(call, headers, _HEADERS, _header_count)
    if "inputTokens" not in usage or "outputTokens" not in usage:
        return False
    read_bedrock(call, {"usage": usage})
    return True


def invocation_metrics(call: Call, metrics: Any) -> None:
    if isinstance(metrics, dict):
        usage = _renamed(call, metrics, _METRICS)
        if usage:
            read_bedrock(call, {"usage": usage})


def read_invoke_body(call: Call, body: bytes, usage_known: bool) -> None:
    """A whole InvokeModel response body: the response id, and the usage the headers did not give (all of it,
    or the cache counts: the body then gives the whole usage again, in its own consistent arithmetic).

    The body's ``model`` (Anthropic's) is not taken as the response model: it names the base model, while the
    model id the request gave (a regional or global inference profile, an ARN) is what sets the price."""
    try:
        obj = json.loads(body)
    except ValueError:
        return
    if not isinstance(obj, dict):
        return
    from_body = not usage_known or (call.cache_read_tokens is None and call.cache_write_tokens is None)
    usage = obj.get("usage")
    if obj.get("type") == "message":  # Anthropic's Messages API
        message_id = obj.get("id")
        if isinstance(message_id, str):
            call.response_id = message_id
        if isinstance(usage, dict):
            if from_body:
                anthropic_usage(call, usage)
            else:  # the headers have no 5-minute / 1-hour split of the cache writes
                split = usage.get("cache_creation")
                if isinstance(split, dict):
                    call.cache_write_5m_tokens = _count(split.get("ephemeral_5m_input_tokens"))
                    call.cache_write_1h_tokens = _count(split.get("ephemeral_1h_input_tokens"))
        return
    if not from_body:
        return
    if isinstance(usage, dict):  # Amazon Nova: Converse's names, its cache counts named as in the metrics
        read_bedrock(call, {"usage": {**usage, **_renamed(call, usage, _METRICS[2:])}})
        return
    if usage_known:
        return  # the other families report no cache counts: the headers' usage stands
    if "prompt_token_count" in obj or "generation_token_count" in obj:  # Meta Llama
        _llama(call, obj)
        return
    input_count = _count(obj.get("inputTextTokenCount"))  # Amazon Titan text and embeddings
    if input_count is not None:
        call.input_tokens = input_count
        results = obj.get("results")
        if isinstance(results, list):
            counts = [_count(r.get("tokenCount")) for r in results if isinstance(r, dict)]
            if counts and None not in counts:
                call.output_tokens = sum(c for c in counts if c is not None)


def _llama(call: Call, obj: dict[str, Any]) -> None:
    prompt = _count(obj.get("prompt_token_count"))
    generated = _count(obj.get("generation_token_count"))
    if prompt is not None:
        call.input_tokens = prompt
    if generated is not None:
        call.output_tokens = generated  # cumulative in a stream's chunks


_USAGE_MARKERS = (_INVOCATION_METRICS_BYTES, b'"usage"', b'_token_count"')


def read_stream_chunk(call: Call, data: bytes) -> bool:
    """The bytes of one InvokeModelWithResponseStream ``chunk``; whether it was the stream's last (the one
    with the invocation metrics). Only chunks that carry usage are parsed, found by a substring test (a key
    cannot hide in the text of a delta, where quotes are escaped): Anthropic's ``message_start`` and
    ``message_delta``, Meta Llama's token counts, Amazon Nova's ``metadata``, and the invocation metrics."""
    if not any(marker in data for marker in _USAGE_MARKERS):
        return False
    last = _INVOCATION_METRICS_BYTES in data
    obj = json.loads(data)
    if not isinstance(obj, dict):
        return last
    kind = obj.get("type")
    if kind == "message_start":  # Anthropic
        message = obj.get("message")
        if isinstance(message, dict):
            message_id = message.get("id")
            if isinstance(message_id, str):
                call.response_id = message_id
            if isinstance(message.get("usage"), dict):
                anthropic_usage(call, message["usage"])
    elif kind == "message_delta" and isinstance(obj.get("usage"), dict):
        anthropic_usage(call, obj["usage"])
    if "prompt_token_count" in obj or "generation_token_count" in obj:  # Meta Llama
        _llama(call, obj)
    metadata = obj.get("metadata")  # Amazon Nova, as ConverseStream's last event
    usage = metadata.get("usage") if isinstance(metadata, dict) else None
    if isinstance(usage, dict):
        read_bedrock(call, {"usage": {**usage, **_renamed(call, usage, _METRICS[2:])}})
    if last:
        invocation_metrics(call, obj.get(INVOCATION_METRICS))
    return last


def read_converse_event(call: Call, event: Any) -> bool:
    """One ConverseStream event as botocore parsed it; whether it was the last (``metadata``)."""
    if isinstance(event, dict) and "metadata" in event:
        metadata = event["metadata"]
        if isinstance(metadata, dict):
            converse_usage(call, metadata.get("usage"))
        return True
    return False
