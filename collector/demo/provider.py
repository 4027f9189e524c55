"""A local, deterministic stand-in for the OpenAI and Anthropic HTTP APIs.

The real ``openai`` and ``anthropic`` SDKs are pointed at it (``base_url``) so that ``costspan demo``, the
tests and the GenAI fixture capture (``tests/fixtures/genai/capture.py``) exercise real client code, real
instrumentations and real wire formats without any network or key. Only the standard library is used
(and ``brotli`` for brotli-compressed replies, when asked for).

Endpoints (JSON, and server-sent events when the request has ``"stream": true``):

- ``POST /v1/chat/completions``: a ``chat.completion``, or ``chat.completion.chunk`` events ending in
  ``data: [DONE]``; with ``stream_options.include_usage`` every chunk has ``"usage":null`` and a last
  chunk with ``"choices":[]`` carries the usage.
- ``POST /v1/responses``: a ``response`` object, or the ``response.*`` event sequence from
  ``response.created`` to ``response.completed``.
- ``POST /v1/embeddings``: float or base64 (little-endian float32) vectors, as ``encoding_format`` asks.
- ``POST /v1/messages``: an Anthropic ``message``, or ``message_start`` ... ``message_stop`` events.
- ``POST /v1/messages/count_tokens``.

Everything is derived from the request, so captures are stable run to run:

- input tokens count the word and punctuation pieces of every text part, plus 3 per message and 3 more;
- the reply is always :data:`REPLY_TEXT` (cut short, with ``length`` / ``max_tokens`` as the finish
  reason, when the request's output limit is smaller);
- a user message containing ``cache`` (any case) reads a cached prefix of :data:`CACHED_PREFIX_TOKENS`
  tokens: OpenAI's ``prompt_tokens`` includes it and ``cached_tokens`` reports it; Anthropic's
  ``cache_read_input_tokens`` reports it and ``input_tokens`` excludes it, as the real API counts;
- an Anthropic text block with ``cache_control`` is written to the cache instead of counted as input:
  its tokens go to ``cache_creation_input_tokens`` and to ``ephemeral_1h_input_tokens`` when its
  ``ttl`` is ``"1h"``, else to ``ephemeral_5m_input_tokens``;
- an OpenAI model whose name starts with ``o`` or contains ``reasoning`` spends
  :data:`REASONING_TOKENS` reasoning tokens, included in the output tokens;
- ids come from one counter per server, every timestamp is :data:`CREATED`, and response models are
  the dated snapshots the real APIs report (``gpt-4o-mini`` -> ``gpt-4o-mini-2024-07-18``).

Every request is recorded (:class:`RecordedRequest`) so tests can assert what a client sent.

``ProviderServer(content_encoding="gzip")`` (or ``"br"``) compresses JSON bodies and event streams for
clients that accept the encoding, as providers' CDNs do; a stream is flushed after every event, so each
event still arrives on its own.

Use it as a context manager (``with ProviderServer() as server: server.openai_base_url``) or run it:
``python -m costspan.collector.demo.provider --port 8089``. It binds 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import itertools
import json
import math
import re
import struct
import sys
import threading
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

HOST = "127.0.0.1"
CREATED = 1767225600
"""2026-01-01T00:00:00Z, the creation time of every response."""
REPLY_TEXT = "Hello! This is a deterministic reply from the costspan test provider."
CACHED_PREFIX_TOKENS = 1024
REASONING_TOKENS = 64
EMBEDDING_DIMENSIONS = 1536
MAX_EMBEDDING_DIMENSIONS = 4096
MAX_CHOICES = 8
FAIL_ATTEMPTS_HEADER = "x-fail-attempts"  # tests: refuse this many attempts of a request with a 429
MAX_BODY_BYTES = 16 * 1024 * 1024
IDLE_TIMEOUT_S = 30.0
ANTHROPIC_ORGANIZATION_ID = "00000000-0000-4000-8000-00000000c057"

SNAPSHOTS: Mapping[str, str] = {
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "o4-mini": "o4-mini-2025-04-16",
    "o3-mini": "o3-mini-2025-01-31",
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
    "claude-opus-4-1": "claude-opus-4-1-20250805",
}
"""The model a response reports for a requested alias; other names are echoed."""

_REDACTED_HEADERS = frozenset({"authorization", "x-api-key", "api-key"})
_PIECE = re.compile(r"\w+|[^\w\s]")
_STREAM_PIECE = re.compile(r"\s*(?:\w+|[^\w\s])")


@dataclass(frozen=True)
class RecordedRequest:
    """One request the server received, and what it answered.

    ``headers`` has every request header by its lower-case name, credentials (``authorization``,
    ``x-api-key``) as ``<redacted>``. ``body`` is the parsed JSON body (``None`` when absent or not JSON).
    ``model`` and ``usage`` are the response model and the usage object of the call, in the provider's own
    shape: the truth to compare an instrumentation's attributes with. ``usage_sent`` is false when the
    client never received that usage (a chat completions stream without ``include_usage``).
    """

    method: str
    path: str
    headers: Mapping[str, str]
    body: Any
    status: int = 200
    model: str | None = None
    usage: Mapping[str, Any] | None = None
    usage_sent: bool = False


@dataclass
class _Reply:
    status: int = 200
    body: Any = None
    events: list[tuple[str | None, str]] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    model: str | None = None
    usage: Mapping[str, Any] | None = None
    usage_sent: bool = True


class _RequestError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def count_tokens(text: str) -> int:
    """The server's token count of ``text``: its word and punctuation pieces."""
    return len(_PIECE.findall(text))


def _stream_pieces(text: str) -> list[str]:
    """``text`` cut into one piece per token, leading whitespace kept, so the pieces join to ``text``."""
    return _STREAM_PIECE.findall(text)


def _snapshot(model: str) -> str:
    return SNAPSHOTS.get(model, model)


def _is_reasoning_model(model: str) -> bool:
    return model.startswith("o") or "reasoning" in model


def _text_of(content: Any) -> str:
    """The text of an OpenAI or Anthropic message content: a string or a list of parts / blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [part.get("text") for part in content if isinstance(part, Mapping)]
        return " ".join(text for text in texts if isinstance(text, str))
    return ""


def _has_cache_marker(messages: Iterable[Any]) -> bool:
    for message in messages:
        if (
            isinstance(message, Mapping)
            and message.get("role", "user") == "user"
            and "cache" in _text_of(message.get("content")).lower()
        ):
            return True
    return False


def _reply(limit: Any, reasoning: int) -> tuple[str, int, int, bool]:
    """The reply text, its token count, the reasoning tokens spent and whether the output limit
    (``limit``, when it is an integer) cut the reply short. Reasoning comes first, as with the real APIs."""
    pieces = _stream_pieces(REPLY_TEXT)
    if isinstance(limit, int) and not isinstance(limit, bool) and reasoning + len(pieces) > limit:
        reasoning = min(reasoning, max(0, limit))
        kept = max(0, limit - reasoning)
        return "".join(pieces[:kept]), kept, reasoning, True
    return REPLY_TEXT, len(pieces), reasoning, False


def _messages(body: Mapping[str, Any]) -> list[Any]:
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise _RequestError(400, "messages: a list is required")
    return messages


def _model(body: Mapping[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _RequestError(400, "model: a string is required")
    return model


def _prompt_tokens(texts: Iterable[str]) -> int:
    return 3 + sum(3 + count_tokens(text) for text in texts)


def _openai_service_tier(body: Mapping[str, Any]) -> str:
    tier = body.get("service_tier")
    return tier if tier in ("flex", "priority", "scale") else "default"


def _json(value: Any) -> str:
    """JSON as both APIs write it on the wire: compact, without spaces after separators."""
    return json.dumps(value, separators=(",", ":"))


def _sse(events: Iterable[tuple[str | None, Any]]) -> list[tuple[str | None, str]]:
    return [(name, data if isinstance(data, str) else _json(data)) for name, data in events]


class _Provider:
    """The responses, by route. One instance per server; its counter makes the ids."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def next_id(self) -> int:
        with self._lock:
            return next(self._counter)

    def handle(self, path: str, body: Any) -> _Reply:
        routes = {
            "/v1/chat/completions": self.chat_completions,
            "/v1/responses": self.responses,
            "/v1/embeddings": self.embeddings,
            "/v1/messages": self.messages,
            "/v1/messages/count_tokens": self.count_message_tokens,
        }
        route = routes.get(path)
        if route is None:
            raise _RequestError(404, f"no route for POST {path}")
        if not isinstance(body, Mapping):
            raise _RequestError(400, "the request body must be a JSON object")
        return route(body, self.next_id())

    # --- OpenAI ------------------------------------------------------------------------------------

    def chat_completions(self, body: Mapping[str, Any], n: int) -> _Reply:
        model = _model(body)
        messages = _messages(body)
        prompt = _prompt_tokens(_text_of(m.get("content")) for m in messages if isinstance(m, Mapping))
        cached = CACHED_PREFIX_TOKENS if _has_cache_marker(messages) else 0
        prompt += cached
        reasoning = REASONING_TOKENS if _is_reasoning_model(model) else 0
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        text, visible, reasoning, cut = _reply(limit, reasoning)
        choices_n = body.get("n") if isinstance(body.get("n"), int) else 1
        choices_n = min(max(choices_n, 1), MAX_CHOICES)
        completion = (visible + reasoning) * choices_n
        finish = "length" if cut else "stop"
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": reasoning * choices_n,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
        head = {
            "id": f"chatcmpl-cs{n:06d}",
            "object": "chat.completion",
            "created": CREATED,
            "model": _snapshot(model),
        }
        tail = {"service_tier": _openai_service_tier(body), "system_fingerprint": "fp_costspan01"}
        headers = self._openai_headers(n)
        if not body.get("stream"):
            choices = [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": text, "refusal": None, "annotations": []},
                    "logprobs": None,
                    "finish_reason": finish,
                }
                for i in range(choices_n)
            ]
            reply = {**head, "choices": choices, "usage": usage, **tail}
            return _Reply(body=reply, headers=headers, model=head["model"], usage=usage)

        options = body.get("stream_options")
        include_usage = isinstance(options, Mapping) and bool(options.get("include_usage"))
        chunk_head = {**head, "object": "chat.completion.chunk", **tail}
        # OpenAI's order: the choices, then (when asked for) "usage", null on every chunk but the last
        chunk_usage = {"usage": None} if include_usage else {}

        def chunk(delta: Mapping[str, Any], finish_reason: str | None, i: int) -> dict[str, Any]:
            choice = {"index": i, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            return {**chunk_head, "choices": [choice], **chunk_usage}

        events: list[tuple[str | None, Any]] = []
        for i in range(choices_n):
            events.append((None, chunk({"role": "assistant", "content": "", "refusal": None}, None, i)))
            events.extend((None, chunk({"content": piece}, None, i)) for piece in _stream_pieces(text))
            events.append((None, chunk({}, finish, i)))
        if include_usage:
            events.append((None, {**chunk_head, "choices": [], "usage": usage}))
        events.append((None, "[DONE]"))
        return _Reply(
            events=_sse(events), headers=headers, model=head["model"], usage=usage, usage_sent=include_usage
        )

    def responses(self, body: Mapping[str, Any], n: int) -> _Reply:
        model = _model(body)
        raw_input = body.get("input")
        if isinstance(raw_input, str):
            items: list[Any] = [{"role": "user", "content": raw_input}]
        elif isinstance(raw_input, list):
            items = raw_input
        else:
            raise _RequestError(400, "input: a string or a list is required")
        texts = [_text_of(item.get("content")) for item in items if isinstance(item, Mapping)]
        instructions = body.get("instructions")
        if isinstance(instructions, str):
            texts.append(instructions)
        cached = CACHED_PREFIX_TOKENS if _has_cache_marker(items) else 0
        prompt = _prompt_tokens(texts) + cached
        reasoning = REASONING_TOKENS if _is_reasoning_model(model) else 0
        text, visible, reasoning, cut = _reply(body.get("max_output_tokens"), reasoning)
        usage = {
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
            "output_tokens": visible + reasoning,
            "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": prompt + visible + reasoning,
        }
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        message = {
            "id": f"msg_cs{n:06d}",
            "type": "message",
            "status": "incomplete" if cut else "completed",
            "role": "assistant",
            "content": [part],
        }
        output: list[dict[str, Any]] = []
        if reasoning:
            output.append({"id": f"rs_cs{n:06d}", "type": "reasoning", "summary": []})
        output.append(message)
        requested_reasoning = body.get("reasoning")
        effort = requested_reasoning.get("effort") if isinstance(requested_reasoning, Mapping) else None
        response = {
            "id": f"resp_cs{n:06d}",
            "object": "response",
            "created_at": CREATED,
            "status": "incomplete" if cut else "completed",
            "background": False,
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if cut else None,
            "instructions": instructions if isinstance(instructions, str) else None,
            "max_output_tokens": body.get("max_output_tokens"),
            "max_tool_calls": None,
            "model": _snapshot(model),
            "output": output,
            "parallel_tool_calls": True,
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": {"effort": effort or ("medium" if reasoning else None), "summary": None},
            "service_tier": _openai_service_tier(body),
            "store": body.get("store", True),
            "temperature": body.get("temperature", 1.0),
            "text": {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": "auto",
            "tools": [],
            "top_logprobs": 0,
            "top_p": body.get("top_p", 1.0),
            "truncation": "disabled",
            "usage": usage,
            "user": None,
            "metadata": body.get("metadata") or {},
        }
        headers = self._openai_headers(n)
        if not body.get("stream"):
            return _Reply(body=response, headers=headers, model=response["model"], usage=usage)

        pending = {**response, "status": "in_progress", "incomplete_details": None, "output": []}
        pending["usage"] = None
        sequence = itertools.count(0)
        events: list[tuple[str | None, Any]] = []

        def event(kind: str, **fields: Any) -> None:
            events.append((kind, {"type": kind, "sequence_number": next(sequence), **fields}))

        event("response.created", response=pending)
        event("response.in_progress", response=pending)
        index = 0
        if reasoning:
            event("response.output_item.added", output_index=0, item=output[0])
            event("response.output_item.done", output_index=0, item=output[0])
            index = 1
        item_id = message["id"]
        where = {"item_id": item_id, "output_index": index, "content_index": 0}
        event(
            "response.output_item.added",
            output_index=index,
            item={**message, "status": "in_progress", "content": []},
        )
        event("response.content_part.added", **where, part={**part, "text": ""})
        for piece in _stream_pieces(text):
            event("response.output_text.delta", **where, delta=piece, logprobs=[])
        event("response.output_text.done", **where, text=text, logprobs=[])
        event("response.content_part.done", **where, part=part)
        event("response.output_item.done", output_index=index, item=message)
        event("response.incomplete" if cut else "response.completed", response=response)
        return _Reply(events=_sse(events), headers=headers, model=response["model"], usage=usage)

    def embeddings(self, body: Mapping[str, Any], n: int) -> _Reply:
        model = _model(body)
        raw = body.get("input")
        inputs: list[Any] = raw if isinstance(raw, list) and raw and not isinstance(raw[0], int) else [raw]
        if not inputs or any(not isinstance(item, (str, list)) for item in inputs):
            raise _RequestError(400, "input: a string, a list of strings or token arrays is required")
        dimensions = body.get("dimensions") or EMBEDDING_DIMENSIONS
        if not isinstance(dimensions, int) or not 1 <= dimensions <= MAX_EMBEDDING_DIMENSIONS:
            raise _RequestError(400, f"dimensions: an integer from 1 to {MAX_EMBEDDING_DIMENSIONS}")
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        tokens = 0
        for index, item in enumerate(inputs):
            text = item if isinstance(item, str) else " ".join(str(t) for t in item)
            tokens += count_tokens(item) if isinstance(item, str) else len(item)
            vector = _vector(text, dimensions)
            embedding: Any = vector
            if as_base64:
                embedding = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        body_out = {
            "object": "list",
            "data": data,
            "model": _snapshot(model),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        headers = self._openai_headers(n)
        return _Reply(body=body_out, headers=headers, model=body_out["model"], usage=body_out["usage"])

    @staticmethod
    def _openai_headers(n: int) -> dict[str, str]:
        return {
            "x-request-id": f"req_cs{n:06d}",
            "openai-organization": "costspan-test",
            "openai-processing-ms": "7",
            "openai-version": "2020-10-01",
        }

    # --- Anthropic ---------------------------------------------------------------------------------

    def _anthropic_usage(self, body: Mapping[str, Any]) -> dict[str, Any]:
        messages = _messages(body)
        blocks: list[tuple[str, Any]] = []
        system = body.get("system")
        if isinstance(system, str):
            blocks.append((system, None))
        elif isinstance(system, list):
            blocks.extend(
                (block.get("text") or "", block.get("cache_control"))
                for block in system
                if isinstance(block, Mapping)
            )
        for message in messages:
            content = message.get("content") if isinstance(message, Mapping) else None
            if isinstance(content, list):
                blocks.extend(
                    (block.get("text") or "", block.get("cache_control"))
                    for block in content
                    if isinstance(block, Mapping)
                )
            else:
                blocks.append((_text_of(content), None))
        uncached = 3 + 3 * len(messages) + (3 if system else 0)
        write_5m = write_1h = 0
        for text, cache_control in blocks:
            tokens = count_tokens(text)
            if not isinstance(cache_control, Mapping):
                uncached += tokens
            elif cache_control.get("ttl") == "1h":
                write_1h += tokens
            else:
                write_5m += tokens
        return {
            "input_tokens": uncached,
            "cache_creation_input_tokens": write_5m + write_1h,
            "cache_read_input_tokens": CACHED_PREFIX_TOKENS if _has_cache_marker(messages) else 0,
            "cache_creation": {"ephemeral_5m_input_tokens": write_5m, "ephemeral_1h_input_tokens": write_1h},
        }

    def messages(self, body: Mapping[str, Any], n: int) -> _Reply:
        model = _model(body)
        max_tokens = body.get("max_tokens")
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise _RequestError(400, "max_tokens: a positive integer is required")
        input_usage = self._anthropic_usage(body)
        text, output_tokens, _, cut = _reply(max_tokens, 0)
        stop_reason = "max_tokens" if cut else "end_turn"
        usage = {**input_usage, "output_tokens": output_tokens, "service_tier": "standard"}
        usage["server_tool_use"] = None
        message_id = f"msg_01CS{n:06d}"
        message = {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": _snapshot(model),
            "content": [{"type": "text", "text": text}],
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": usage,
        }
        headers = {"request-id": f"req_01CS{n:06d}", "anthropic-organization-id": ANTHROPIC_ORGANIZATION_ID}
        if not body.get("stream"):
            return _Reply(body=message, headers=headers, model=message["model"], usage=usage)

        start = {
            **message,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**usage, "output_tokens": 1},
        }
        events: list[tuple[str | None, Any]] = [
            ("message_start", {"type": "message_start", "message": start}),
            (
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            ),
            ("ping", {"type": "ping"}),
        ]
        events.extend(
            (
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}},
            )
            for piece in _stream_pieces(text)
        )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
        cumulative = {
            "input_tokens": usage["input_tokens"],
            "cache_creation_input_tokens": usage["cache_creation_input_tokens"],
            "cache_read_input_tokens": usage["cache_read_input_tokens"],
            "output_tokens": output_tokens,
        }
        events.append(
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                    "usage": cumulative,
                },
            )
        )
        events.append(("message_stop", {"type": "message_stop"}))
        return _Reply(events=_sse(events), headers=headers, model=message["model"], usage=usage)

    def count_message_tokens(self, body: Mapping[str, Any], n: int) -> _Reply:
        _model(body)
        usage = self._anthropic_usage(body)
        total = usage["input_tokens"] + usage["cache_creation_input_tokens"]
        return _Reply(body={"input_tokens": total}, headers={"request-id": f"req_01CS{n:06d}"})


def _vector(text: str, dimensions: int) -> list[float]:
    """A unit vector that depends only on ``text`` and ``dimensions``."""
    digest = hashlib.sha256(text.encode()).digest()
    raw = [math.sin(digest[i % len(digest)] + i) for i in range(dimensions)]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return [round(x / norm, 6) for x in raw]


def _error_body(path: str, status: int, message: str) -> dict[str, Any]:
    kinds = {400: "invalid_request_error", 404: "not_found_error", 413: "request_too_large"}
    kind = kinds.get(status, "api_error")
    if path.startswith("/v1/messages"):
        return {"type": "error", "error": {"type": kind, "message": message}}
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm and the client's
    # delayed acknowledgement hold the body back some 40 ms
    disable_nagle_algorithm = True
    server_version = "costspan-provider/1"
    timeout = IDLE_TIMEOUT_S
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        self.server.provider_server.record(RecordedRequest("GET", path, self._headers(), None, 404))
        self._send_json(404, _error_body(path, 404, f"no route for GET {path}"), {})

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            self.server.provider_server.record(RecordedRequest("POST", path, self._headers(), None, 413))
            self._send_json(413, _error_body(path, 413, "request body too large"), {})
            return
        raw = self.rfile.read(length) if length > 0 else b""
        body: Any = None
        if self._failing_attempt():
            # a rate limit the SDK retries after a millisecond: the request of a failed attempt, unbilled
            self.server.provider_server.record(RecordedRequest("POST", path, self._headers(), None, 429))
            self._send_json(429, _error_body(path, 429, "rate limited"), {"retry-after-ms": "1"})
            return
        try:
            try:
                body = json.loads(raw) if raw else None
            except ValueError as exc:
                raise _RequestError(400, "the request body is not JSON") from exc
            reply = self.server.provider_server.provider.handle(path, body)
        except _RequestError as error:
            record = RecordedRequest("POST", path, self._headers(), body, error.status)
            self.server.provider_server.record(record)
            self._send_json(error.status, _error_body(path, error.status, error.message), {})
            return
        record = RecordedRequest(
            "POST",
            path,
            self._headers(),
            body,
            reply.status,
            reply.model,
            reply.usage,
            reply.usage is not None and reply.usage_sent,
        )
        self.server.provider_server.record(record)
        if reply.events is None:
            self._send_json(reply.status, reply.body, reply.headers)
        else:
            self._send_events(reply.events, reply.headers)

    def _failing_attempt(self) -> bool:
        """The first N attempts of a request whose ``x-fail-attempts`` header says N are refused; the SDKs
        count their attempts in ``x-stainless-retry-count``."""
        try:
            failing = int(self.headers.get(FAIL_ATTEMPTS_HEADER) or 0)
            attempt = int(self.headers.get("x-stainless-retry-count") or 0)
        except ValueError:
            return False
        return attempt < failing

    def _headers(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            out[key] = "<redacted>" if key in _REDACTED_HEADERS else value
        return out

    def _encoding(self) -> str | None:
        """The server's content encoding, when this request's client accepts it."""
        encoding = self.server.provider_server.content_encoding
        accepted = self.headers.get("Accept-Encoding") or ""
        return encoding if encoding and encoding in accepted else None

    def _send_json(self, status: int, body: Any, headers: Mapping[str, str]) -> None:
        data = _json(body).encode()
        encoding = self._encoding()
        if encoding is not None:
            compress = _compressor(encoding)
            data = compress(data) + compress(None)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if encoding is not None:
            self.send_header("Content-Encoding", encoding)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_events(self, events: list[tuple[str | None, str]], headers: Mapping[str, str]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        encoding = self._encoding()
        compress = _compressor(encoding) if encoding is not None else None
        if encoding is not None:
            self.send_header("Content-Encoding", encoding)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        for name, data in events:
            text = (f"event: {name}\n" if name else "") + f"data: {data}\n\n"
            payload = text.encode() if compress is None else compress(text.encode())
            self.wfile.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
            self.wfile.flush()
        if compress is not None:
            tail = compress(None)
            if tail:
                self.wfile.write(f"{len(tail):x}\r\n".encode() + tail + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def _compressor(encoding: str) -> Any:
    """``compress(data)`` returns the bytes to send for ``data``, flushed; ``compress(None)`` ends it."""
    if encoding == "br":
        import brotli

        brotli_compressor = brotli.Compressor()

        def brotli_step(data: bytes | None) -> bytes:
            if data is None:
                return brotli_compressor.finish()
            return brotli_compressor.process(data) + brotli_compressor.flush()

        return brotli_step
    if encoding not in ("gzip", "deflate"):
        raise ValueError(f"unsupported content encoding {encoding!r}")
    zlib_compressor = zlib.compressobj(wbits=16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS)

    def zlib_step(data: bytes | None) -> bytes:
        if data is None:
            return zlib_compressor.flush()
        return zlib_compressor.compress(data) + zlib_compressor.flush(zlib.Z_SYNC_FLUSH)

    return zlib_step


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, port: int, provider_server: ProviderServer) -> None:
        self.provider_server = provider_server
        super().__init__((HOST, port), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that drops a keep-alive connection is normal; anything else is reported.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class ProviderServer:
    """The local provider server on 127.0.0.1, on ``port`` (0: an ephemeral one), in a thread."""

    def __init__(self, port: int = 0, content_encoding: str | None = None) -> None:
        self._port = port
        self.content_encoding = content_encoding
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self.provider = _Provider()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the provider server is not running")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``, the ``base_url`` of an Anthropic client."""
        return f"http://{HOST}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``, the ``base_url`` of an OpenAI client."""
        return f"{self.base_url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.base_url

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the requests received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    def start(self) -> ProviderServer:
        if self._httpd is not None:
            return self
        self._httpd = _HTTPServer(self._port, self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="provider-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, thread = self._httpd, self._thread
        self._httpd = self._thread = None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> ProviderServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: an ephemeral one)")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=3600.0,
        help="stop after this many seconds (default: 3600); Ctrl-C stops it sooner",
    )
    args = parser.parse_args(argv)
    stop = threading.Event()
    with ProviderServer(args.port) as server:
        print(f"provider server on {server.base_url} (OpenAI base_url {server.openai_base_url})", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait(args.max_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
