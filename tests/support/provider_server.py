"""The local OpenAI / Anthropic stand-in the tests run against: :mod:`costspan.collector.demo.provider`,
which ``costspan demo`` runs too, with two things only tests need:

- **legacy completions** (``POST /v1/completions``, JSON only);
- **paths behind a gateway's prefix**: ``/openai/v1/chat/completions``, ``/api/v1/messages``, or no ``/v1``
  at all (``/chat/completions``), are answered as the API's own paths; any path under ``/app/`` answers as an
  ordinary application would (an echo of the JSON it was sent), so that tests have non-LLM endpoints with
  LLM-like paths (``/app/v1/messages``);
- **other providers' usage shapes** (``ProviderServer(usage_shape="groq")``) for chat completions, written
  from the same counts as OpenAI's, each as the provider documents it:

  ============ ===================================================================================
  deepseek     ``prompt_cache_hit_tokens`` / ``prompt_cache_miss_tokens`` in place of
               ``prompt_tokens_details`` (https://api-docs.deepseek.com/guides/kv_cache)
  openrouter   ``cost`` (US dollars), ``cost_details``, ``is_byok``, cached and reasoning details; a stream's
               last event carries usage whether or not ``include_usage`` was asked for
               (https://openrouter.ai/docs/use-cases/usage-accounting)
  xai          ``text_tokens`` and ``cached_tokens`` details, ``num_sources_used`` (3 when the request has
               ``search_parameters``) (https://docs.x.ai/developers/advanced-api-usage/prompt-caching/usage-and-pricing)
  groq         ``queue_time``, ``prompt_time``, ``completion_time``, ``total_time``; a stream's last content
               chunk carries ``x_groq.usage`` (https://console.groq.com/docs/api-reference)
  mistral      the three counts only; a stream's last chunk carries usage always
  together     the three counts only
  fireworks    the three counts and ``prompt_tokens_details.cached_tokens``
  perplexity   ``completion_tokens`` without reasoning and citations, ``citation_tokens`` (120),
               ``num_search_queries`` (4), ``reasoning_tokens`` (:data:`REASONING_TOKENS`),
               ``search_context_size`` and ``cost.total_cost``; every stream chunk carries usage
               (https://docs.perplexity.ai/api-reference)
  ============ ===================================================================================
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from costspan.collector.demo import provider as _demo
from costspan.collector.demo.provider import (
    CACHED_PREFIX_TOKENS,
    CREATED,
    HOST,
    REASONING_TOKENS,
    REPLY_TEXT,
    RecordedRequest,
    count_tokens,
)

__all__ = [
    "CACHED_PREFIX_TOKENS",
    "CREATED",
    "HOST",
    "OPENROUTER_RATES",
    "PERPLEXITY_CITATION_TOKENS",
    "PERPLEXITY_SEARCH_QUERIES",
    "REASONING_TOKENS",
    "REPLY_TEXT",
    "USAGE_SHAPES",
    "ProviderServer",
    "RecordedRequest",
    "count_tokens",
    "openrouter_cost",
]

_API_PATHS = (
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/responses",
    "/v1/embeddings",
    "/v1/messages/count_tokens",
    "/v1/messages",
)
APP_PREFIX = "/app/"
OPENROUTER_RATES = (Decimal("0.15"), Decimal("0.6"))  # USD per million input / output tokens, for `cost`
PERPLEXITY_CITATION_TOKENS = 120
PERPLEXITY_SEARCH_QUERIES = 4
XAI_SOURCES = 3


def api_path(path: str) -> str:
    """The API path ``path`` leads to behind a gateway's prefix (``/openai/v1/chat/completions``), or
    without ``/v1`` (``/chat/completions``, as DeepSeek's base URL has it); other paths as they are."""
    for api in _API_PATHS:
        if path.endswith(api) or path.endswith(api[3:]):
            return api
    return path


def openrouter_cost(usage: Mapping[str, Any]) -> Decimal:
    """What the stand-in bills a call as OpenRouter: :data:`OPENROUTER_RATES` per million tokens."""
    per_input, per_output = OPENROUTER_RATES
    million = Decimal(1_000_000)
    return (usage["prompt_tokens"] * per_input + usage["completion_tokens"] * per_output) / million


def _openrouter(usage: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    details = usage["prompt_tokens_details"]
    return {
        "prompt_tokens": usage["prompt_tokens"],
        "completion_tokens": usage["completion_tokens"],
        "total_tokens": usage["total_tokens"],
        "completion_tokens_details": {
            "reasoning_tokens": usage["completion_tokens_details"]["reasoning_tokens"]
        },
        "cost": float(openrouter_cost(usage)),
        "is_byok": False,
        "cost_details": {"upstream_inference_cost": None},
        "prompt_tokens_details": {
            "cached_tokens": details["cached_tokens"],
            "cache_write_tokens": 0,
            "audio_tokens": 0,
        },
    }


def _deepseek(usage: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    cached = usage["prompt_tokens_details"]["cached_tokens"]
    shaped: dict[str, Any] = {
        "prompt_tokens": usage["prompt_tokens"],
        "completion_tokens": usage["completion_tokens"],
        "total_tokens": usage["total_tokens"],
        "prompt_cache_hit_tokens": cached,
        "prompt_cache_miss_tokens": usage["prompt_tokens"] - cached,
    }
    reasoning = usage["completion_tokens_details"]["reasoning_tokens"]
    if reasoning:
        shaped["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return shaped


def _xai(usage: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    reasoning = usage["completion_tokens_details"]["reasoning_tokens"]
    return {
        "prompt_tokens": usage["prompt_tokens"],
        "completion_tokens": usage["completion_tokens"],
        "total_tokens": usage["total_tokens"],
        "prompt_tokens_details": {
            "text_tokens": usage["prompt_tokens"],
            "audio_tokens": 0,
            "image_tokens": 0,
            "cached_tokens": usage["prompt_tokens_details"]["cached_tokens"],
        },
        "completion_tokens_details": {
            "reasoning_tokens": reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
        "num_sources_used": XAI_SOURCES if "search_parameters" in body else 0,
    }


def _groq(usage: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "queue_time": 0.0125,
        "prompt_tokens": usage["prompt_tokens"],
        "prompt_time": 0.0031,
        "completion_tokens": usage["completion_tokens"],
        "completion_time": 0.0402,
        "total_tokens": usage["total_tokens"],
        "total_time": 0.0433,
    }


def _counts(usage: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    return {key: usage[key] for key in ("prompt_tokens", "completion_tokens", "total_tokens")}


def _fireworks(usage: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    cached = usage["prompt_tokens_details"]["cached_tokens"]
    return {**_counts(usage, body), "prompt_tokens_details": {"cached_tokens": cached}}


def _perplexity(usage: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    prompt, completion = usage["prompt_tokens"], usage["completion_tokens"]
    input_cost = Decimal(prompt) * 2 / 1_000_000
    output_cost = Decimal(completion) * 8 / 1_000_000
    citation_cost = Decimal(PERPLEXITY_CITATION_TOKENS) * 2 / 1_000_000
    reasoning_cost = Decimal(REASONING_TOKENS) * 3 / 1_000_000
    search_cost = Decimal(PERPLEXITY_SEARCH_QUERIES) * 5 / 1000
    total = input_cost + output_cost + citation_cost + reasoning_cost + search_cost
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "search_context_size": "low",
        "citation_tokens": PERPLEXITY_CITATION_TOKENS,
        "num_search_queries": PERPLEXITY_SEARCH_QUERIES,
        "reasoning_tokens": REASONING_TOKENS,
        "cost": {
            "input_tokens_cost": float(input_cost),
            "output_tokens_cost": float(output_cost),
            "citation_tokens_cost": float(citation_cost),
            "reasoning_tokens_cost": float(reasoning_cost),
            "search_queries_cost": float(search_cost),
            "total_cost": float(total),
        },
    }


USAGE_SHAPES: Mapping[str, Callable[[Mapping[str, Any], Mapping[str, Any]], dict[str, Any]]] = {
    "deepseek": _deepseek,
    "openrouter": _openrouter,
    "xai": _xai,
    "groq": _groq,
    "mistral": _counts,
    "together": _counts,
    "fireworks": _fireworks,
    "perplexity": _perplexity,
}
# where a stream carries usage beyond include_usage's last chunk
_ALWAYS_LAST = frozenset({"openrouter"})  # a last usage event, asked for or not
_ON_FINISH = frozenset({"mistral", "groq"})  # on the chunk with the finish reason (Groq: in x_groq)
_ON_EVERY_CHUNK = frozenset({"perplexity"})


class _ShapedProvider(_demo._Provider):
    def __init__(self, server: ProviderServer) -> None:
        super().__init__()
        self._server = server

    def handle(self, path: str, body: Any) -> _demo._Reply:
        if path.startswith(APP_PREFIX):
            # an ordinary application's endpoint: whatever it was sent, echoed
            return _demo._Reply(body={"ok": True, "echo": body})
        route = api_path(path)
        if route == "/v1/completions" and isinstance(body, Mapping):
            return self._completion(body, self.next_id())
        reply = super().handle(route, body)
        shape = USAGE_SHAPES.get(self._server.usage_shape)
        if shape is None or route != "/v1/chat/completions" or reply.usage is None:
            return reply
        usage = shape(reply.usage, body)
        if reply.events is None:
            reply.body = {**reply.body, "usage": usage}
        else:
            reply.events = self._stream(reply.events, usage, reply)
        reply.usage = usage
        return reply

    def _completion(self, body: Mapping[str, Any], n: int) -> _demo._Reply:
        """A legacy completion (JSON only), counted as chat completions are."""
        model, prompt = body.get("model"), body.get("prompt")
        if not isinstance(model, str) or not isinstance(prompt, str):
            return _demo._Reply(status=400, body={"error": {"message": "model and prompt: strings"}})
        prompt_tokens = 3 + count_tokens(prompt)
        completion_tokens = count_tokens(REPLY_TEXT)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        choice = {"text": REPLY_TEXT, "index": 0, "logprobs": None, "finish_reason": "stop"}
        reply = {
            "id": f"cmpl-cs{n:06d}",
            "object": "text_completion",
            "created": CREATED,
            "model": model,
            "choices": [choice],
            "usage": usage,
        }
        return _demo._Reply(body=reply, model=model, usage=usage)

    def _stream(
        self, events: list[tuple[str | None, str]], usage: dict[str, Any], reply: _demo._Reply
    ) -> list[tuple[str | None, str]]:
        name = self._server.usage_shape
        out: list[tuple[str | None, str]] = []
        last_chunk: dict[str, Any] | None = None
        for event, data in events:
            if data == "[DONE]":
                if name in _ALWAYS_LAST and not reply.usage_sent and last_chunk is not None:
                    out.append((None, _demo._json({**last_chunk, "choices": [], "usage": usage})))
                    reply.usage_sent = True
                out.append((event, data))
                continue
            chunk = json.loads(data)
            last_chunk = {k: v for k, v in chunk.items() if k not in ("choices", "usage")}
            if chunk.get("choices") == [] and isinstance(chunk.get("usage"), dict):
                chunk["usage"] = usage  # include_usage's chunk
            elif name in _ON_EVERY_CHUNK:
                chunk["usage"] = usage
                reply.usage_sent = True
            elif name in _ON_FINISH and chunk["choices"][0].get("finish_reason") is not None:
                if name == "groq":
                    chunk["x_groq"] = {"id": "req_cs000001", "usage": usage}
                else:
                    chunk["usage"] = usage
                reply.usage_sent = True
            out.append((event, _demo._json(chunk)))
        return out


class ProviderServer(_demo.ProviderServer):
    """:class:`costspan.collector.demo.provider.ProviderServer`, with prefixed paths, ``/app/`` paths and
    ``usage_shape`` (``None``: OpenAI's own; else a key of :data:`USAGE_SHAPES`)."""

    def __init__(
        self, port: int = 0, content_encoding: str | None = None, usage_shape: str | None = None
    ) -> None:
        super().__init__(port, content_encoding)
        if usage_shape is not None and usage_shape not in USAGE_SHAPES:
            raise ValueError(f"unknown usage shape {usage_shape!r}; one of {sorted(USAGE_SHAPES)}")
        self.usage_shape = usage_shape
        self.provider = _ShapedProvider(self)
