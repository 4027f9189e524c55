"""redact: prompt and response content never leaves the collector unless configured.

Content attributes of every dialect (``gen_ai.input.messages``, ``gen_ai.output.messages``,
``gen_ai.system_instructions``, ``gen_ai.prompt.*``, ``gen_ai.completion.*``, ``input.value``,
``output.value``, ``llm.input_messages.*``, Langfuse's input and output, the AI SDK's ``ai.prompt`` and
``ai.response.text``, pydantic-ai's messages ...) and content-carrying span
events are removed from GenAI spans; the batch gets new attribute mappings, the originals are not touched.
Optionally a keyed hash (HMAC-SHA256) of the input goes on the record as ``input_hash``, so repeated
identical prompts can be counted, a caching opportunity, without storing any text.

The same lists decide what the collector takes out of a request before its write-ahead log holds it
(:mod:`costspan.collector.content_filter`), where the input hash is then made and logged as
``costspan.input.hash``, which this processor takes when the text is gone.

Configuration::

    redact:
      keep_content: false            # true keeps everything (only where content may be stored)
      input_hash_key_env: COSTSPAN_INPUT_HASH_KEY   # an environment variable holding the hash key
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from costspan.semconv import attributes as A

from ._base import ConfigError, Processor, check_keys, register
from ._batch import SpanBatch

CONTENT_KEYS: Final = frozenset(
    {
        A.GEN_AI_INPUT_MESSAGES,
        A.GEN_AI_OUTPUT_MESSAGES,
        A.GEN_AI_SYSTEM_INSTRUCTIONS,
        A.GEN_AI_TOOL_DEFINITIONS,
        A.GEN_AI_TOOL_CALL_ARGUMENTS,
        A.GEN_AI_TOOL_CALL_RESULT,
        A.GEN_AI_RETRIEVAL_QUERY_TEXT,
        A.GEN_AI_RETRIEVAL_DOCUMENTS,
        A.GEN_AI_PROMPT,
        A.GEN_AI_COMPLETION,
        A.INPUT_VALUE,
        A.OUTPUT_VALUE,
        A.LLM_PROMPT_TEMPLATE,
        A.LLM_INVOCATION_PARAMETERS,
        A.LANGFUSE_OBSERVATION_INPUT,
        A.LANGFUSE_OBSERVATION_OUTPUT,
        A.LANGFUSE_TRACE_INPUT,
        A.LANGFUSE_TRACE_OUTPUT,
        A.PYDANTIC_AI_ALL_MESSAGES,
        A.PYDANTIC_AI_FINAL_RESULT,
        A.PYDANTIC_AI_TOOL_ARGUMENTS,
        A.PYDANTIC_AI_TOOL_RESPONSE,
        *A.AI_CONTENT,
        "gen_ai.request.messages",
        "gen_ai.response.text",
        "llm.prompt_template.variables",
    }
)
CONTENT_PREFIXES: Final = (
    A.GEN_AI_PROMPT + ".",
    A.GEN_AI_COMPLETION + ".",
    A.LLM_INPUT_MESSAGES + ".",
    A.LLM_OUTPUT_MESSAGES + ".",
    A.LLM_PROMPTS + ".",
    A.EMBEDDING_EMBEDDINGS + ".",
    A.RETRIEVAL_DOCUMENTS + ".",
    "llm.tools.",
)
# Span events whose attributes are message content (OpenTelemetry GenAI events before 1.37 moved content
# to attributes; OpenLLMetry and OpenLIT also use events).
CONTENT_EVENTS: Final = frozenset(
    {
        "gen_ai.content.prompt",
        "gen_ai.content.completion",
        "gen_ai.system.message",
        "gen_ai.user.message",
        "gen_ai.assistant.message",
        "gen_ai.tool.message",
        "gen_ai.choice",
        "gen_ai.client.inference.operation.details",
    }
)
# Where the input text is, for the hash: the first present.
INPUT_KEYS: Final = (
    A.GEN_AI_INPUT_MESSAGES,
    A.INPUT_VALUE,
    A.LANGFUSE_OBSERVATION_INPUT,
    A.GEN_AI_PROMPT,
    "gen_ai.prompt.0.content",
    "llm.input_messages.0.message.content",
)


def is_content_key(key: str) -> bool:
    return key in CONTENT_KEYS or key.startswith(CONTENT_PREFIXES)


_CONTENT_KEYS_OF: Final[dict[int | tuple[str, ...], tuple[str, ...]]] = {}  # by shape (SpanBatch.shape_key)
_CONTENT_KEYS_LIMIT: Final = 20_000


def _content_keys(batch: SpanBatch, i: int) -> tuple[str, ...]:
    """The content keys of span ``i``'s attribute shape (spans of an instrumentation share a few shapes)."""
    shape_key = batch.shape_key(i)
    found = _CONTENT_KEYS_OF.get(shape_key)
    if found is None:
        if len(_CONTENT_KEYS_OF) >= _CONTENT_KEYS_LIMIT:
            _CONTENT_KEYS_OF.clear()
        found = _CONTENT_KEYS_OF[shape_key] = tuple(key for key in batch.shape(i) if is_content_key(key))
    return found


def input_hash(attrs: Mapping[str, Any], key: bytes) -> str | None:
    """A keyed hash of the call's input text: equal for equal prompts, meaningless without the key."""
    text = next((attrs[k] for k in INPUT_KEYS if k in attrs), None)
    if text is None:
        return None
    return hmac.new(key, str(text).encode(), hashlib.sha256).hexdigest()[:32]


def redact(batch: SpanBatch, counts: Counter[str], hash_key: bytes | None, keep_content: bool) -> SpanBatch:
    attributes = list(batch.attributes)
    events = list(batch.events)
    changed = False
    for i, call in enumerate(batch.calls):
        if call is None:
            continue
        attrs = attributes[i]
        if hash_key is not None and call.kind == "llm":
            call.input_hash = input_hash(attrs, hash_key)
            if call.input_hash is None:  # the text was removed before the write-ahead log, hashed there
                logged = attrs.get(A.COSTSPAN_INPUT_HASH)
                call.input_hash = logged if isinstance(logged, str) else None
            counts["hashed"] += call.input_hash is not None
        if keep_content:
            continue
        content = _content_keys(batch, i)
        if content:
            drop = set(content)
            attributes[i] = {k: v for k, v in attrs.items() if k not in drop}
            counts["attributes_removed"] += len(content)
            changed = True
        if events[i] and any(name in CONTENT_EVENTS for name, _ in events[i]):
            events[i] = tuple((name, {} if name in CONTENT_EVENTS else ev) for name, ev in events[i])
            counts["events_emptied"] += 1
            changed = True
    if not changed:
        return batch
    return batch.with_columns(attributes=attributes, events=events)


@dataclass(frozen=True)
class RedactSettings:
    keep_content: bool = False
    hash_key: bytes | None = None


def settings_of(config: Mapping[str, Any], path: str) -> RedactSettings:
    """A redact processor's configuration, checked (also read by the write-ahead log's content filter,
    :mod:`costspan.collector.content_filter`, which applies this module's rule before a request is logged)."""
    check_keys(config, {"keep_content", "input_hash_key_env"}, path)
    keep = config.get("keep_content", False)
    if not isinstance(keep, bool):
        raise ConfigError(f"{path}.keep_content: true or false; got {keep!r}")
    key_env = config.get("input_hash_key_env")
    hash_key = None
    if key_env is not None:
        if not isinstance(key_env, str) or not key_env:
            raise ConfigError(f"{path}.input_hash_key_env: the name of an environment variable")
        secret = os.environ.get(key_env)
        if not secret:
            raise ConfigError(f"{path}.input_hash_key_env: environment variable {key_env} is not set")
        hash_key = secret.encode()
    return RedactSettings(keep, hash_key)


@register("redact")
def _factory(config: Mapping[str, Any], path: str) -> Processor:
    settings = settings_of(config, path)
    return Processor(
        "redact", lambda batch, counts: redact(batch, counts, settings.hash_key, settings.keep_content)
    )
