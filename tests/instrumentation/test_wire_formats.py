"""Usage from the wire formats the SDK tests do not reach: Gemini, Bedrock Converse, Ollama, OpenAI-compatible
streams written with spaces, and bodies too large to parse whole. The bytes reach the response watcher in
small pieces, as a transport yields them, or an event at a time."""

from __future__ import annotations

import gzip
import json

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from costspan.instrumentation import EndpointTable
from costspan.instrumentation._call import Call
from costspan.instrumentation._response import Watcher, _read_chat_completion
from costspan.instrumentation._transport import _content_headers, _with_include_usage


def _watch(
    url_host: str, port: int | None, path: str, content_type: str, body: bytes, encoding: str = ""
) -> dict:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    endpoint = EndpointTable().match(url_host, port, path)
    assert endpoint is not None
    call = Call(endpoint, None, False, url_host, port, tracer=provider.get_tracer("t"), name="x")
    watcher = Watcher(call, content_type, encoding, strip=False)
    handed_on = b""
    for i in range(0, len(body), 7):
        handed_on += watcher.feed(body[i : i + 7])
    watcher.done()
    call.end(cut_short=not watcher.terminal and watcher.mode != "body")
    assert handed_on == body
    (span,) = exporter.get_finished_spans()
    return dict(span.attributes)


def test_gemini_sse_usage_and_thinking_tokens():
    chunks = [
        {
            "candidates": [{"content": {"parts": [{"text": "Hi"}]}}],
            "modelVersion": "gemini-2.5-flash",
            "responseId": "r1",
            "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 1},
        },
        {
            "candidates": [{"content": {"parts": [{"text": " there"}]}, "finishReason": "STOP"}],
            "modelVersion": "gemini-2.5-flash",
            "responseId": "r1",
            "usageMetadata": {
                "promptTokenCount": 12,
                "candidatesTokenCount": 5,
                "thoughtsTokenCount": 30,
                "cachedContentTokenCount": 8,
            },
        },
    ]
    body = b"".join(b"data: " + json.dumps(c).encode() + b"\r\n\r\n" for c in chunks)
    attributes = _watch(
        "generativelanguage.googleapis.com",
        None,
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
        "text/event-stream",
        body,
    )
    assert attributes["gen_ai.response.model"] == "gemini-2.5-flash"
    assert attributes["gen_ai.usage.input_tokens"] == 12
    assert attributes["gen_ai.usage.output_tokens"] == 35  # thinking is part of the output
    assert attributes["gen_ai.usage.reasoning.output_tokens"] == 30
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == 8


def test_bedrock_converse_counts_cache_in_input():
    body = json.dumps(
        {
            "output": {"message": {"role": "assistant", "content": [{"text": "Hi"}]}},
            "stopReason": "end_turn",
            "usage": {
                "inputTokens": 10,
                "outputTokens": 4,
                "totalTokens": 64,
                "cacheReadInputTokens": 40,
                "cacheWriteInputTokens": 10,
            },
        }
    ).encode()
    attributes = _watch(
        "bedrock-runtime.eu-west-1.amazonaws.com", None, "/model/m/converse", "application/json", body
    )
    assert attributes["gen_ai.usage.input_tokens"] == 60
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == 40
    assert attributes["gen_ai.usage.output_tokens"] == 4


def test_bedrock_converse_stream_usage_from_the_binary_event_stream():
    frame = b"\x00\x00\x01\x0b\x00\x00\x00\x8b:event-type\x07\x00\x08metadata"
    payload = json.dumps({"usage": {"inputTokens": 7, "outputTokens": 3}, "metrics": {"latencyMs": 9}})
    body = b"\x00\x00\x00\x60junk" + frame + payload.encode() + b"\xde\xad\xbe\xef"
    attributes = _watch(
        "bedrock-runtime.us-east-1.amazonaws.com",
        None,
        "/model/m/converse-stream",
        "application/vnd.amazon.eventstream",
        body,
    )
    assert (attributes["gen_ai.usage.input_tokens"], attributes["gen_ai.usage.output_tokens"]) == (7, 3)
    assert "costspan.stream.cut_short" not in attributes


def test_ollama_ndjson_stream():
    lines = [
        {"model": "llama3.2", "message": {"content": "Hi"}, "done": False},
        {
            "model": "llama3.2",
            "message": {"content": ""},
            "done": True,
            "prompt_eval_count": 26,
            "eval_count": 9,
        },
    ]
    body = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
    attributes = _watch("localhost", 11434, "/api/chat", "application/x-ndjson", body)
    assert attributes["gen_ai.response.model"] == "llama3.2"
    assert (attributes["gen_ai.usage.input_tokens"], attributes["gen_ai.usage.output_tokens"]) == (26, 9)


@pytest.mark.parametrize("encoding", ["", "gzip"])
def test_a_large_embeddings_body_is_read_from_its_tail(encoding):
    data = [
        {"object": "embedding", "index": i, "embedding": [0.001 * j for j in range(1536)]} for i in range(20)
    ]
    body = json.dumps(
        {"object": "list", "data": data, "model": "text-embedding-3-small", "usage": {"prompt_tokens": 321}}
    ).encode()
    assert len(body) > 256 * 1024
    wire = gzip.compress(body) if encoding else body
    attributes = _watch("api.openai.com", None, "/v1/embeddings", "application/json", wire, encoding)
    assert attributes["gen_ai.usage.input_tokens"] == 321
    assert attributes["gen_ai.response.model"] == "text-embedding-3-small"


@pytest.mark.parametrize(
    "body",
    [
        b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"stream":true}',
        b'  {\n  "model": "gpt-4o-mini", "stream": true}',
        # stream_options already there (or only named in a message): parsed and rewritten
        b'{"model":"m","stream":true,"stream_options":{"include_obfuscation":false}}',
        b'{"model":"m","stream":true,"stream_options":null}',
        b'{"messages":[{"role":"user","content":"what are stream_options?"}],"stream":true}',
    ],
)
def test_include_usage_is_added_and_the_rest_of_the_request_kept(body):
    new = _with_include_usage(body)
    assert new is not None
    sent, asked = json.loads(new), json.loads(body)
    assert sent["stream_options"]["include_usage"] is True
    assert {k: v for k, v in sent.items() if k != "stream_options"} == {
        k: v for k, v in asked.items() if k != "stream_options"
    }
    assert {k: v for k, v in sent["stream_options"].items() if k != "include_usage"} == (
        asked.get("stream_options") or {}
    )


@pytest.mark.parametrize(
    "body",
    [
        b"[1, 2]",
        b'"stream_options"',
        # the application chose: its choice stands
        b'{"stream":true,"stream_options":{"include_usage":false}}',
        b'{"stream":true,"stream_options":{"include_usage":true}}',
    ],
)
def test_include_usage_is_not_added_to_what_is_no_object_or_already_says(body):
    assert _with_include_usage(body) is None


def _chat_stream(separators: tuple[str, str], include_usage: bool) -> list[bytes]:
    """An OpenAI chat completions stream, one event a chunk, as a server writing JSON with ``separators``
    sends it (OpenAI writes it compact; some OpenAI-compatible servers put spaces after the separators)."""
    chunks = []
    for delta, finish in (
        ({"role": "assistant", "content": ""}, None),
        ({"content": "Hi"}, None),
        ({}, "stop"),
    ):
        chunk = {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        if include_usage:
            chunk["usage"] = None
        chunks.append(chunk)
    if include_usage:
        usage = {"prompt_tokens": 9, "completion_tokens": 2, "prompt_tokens_details": {"cached_tokens": 4}}
        chunks.append({"id": "chatcmpl-1", "model": "gpt-4o-mini-2024-07-18", "choices": [], "usage": usage})
    events = [b"data: " + json.dumps(c, separators=separators).encode() + b"\n\n" for c in chunks]
    return [*events, b"data: [DONE]\n\n"]


@pytest.mark.parametrize("separators", [(",", ":"), (", ", ": ")], ids=["compact", "spaced"])
@pytest.mark.parametrize("piece", [None, 7], ids=["event-chunks", "7-byte-pieces"])
def test_a_chat_stream_with_usage_asked_by_costspan_reads_as_without_it(separators, piece):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    endpoint = EndpointTable().match("api.openai.com", None, "/v1/chat/completions")
    assert endpoint is not None
    call = Call(
        endpoint, "gpt-4o-mini", True, "api.openai.com", None, tracer=provider.get_tracer("t"), name="x"
    )
    watcher = Watcher(call, "text/event-stream; charset=utf-8", "", strip=True)
    sent = _chat_stream(separators, include_usage=True)
    if piece is not None:
        joined = b"".join(sent)
        sent = [joined[i : i + piece] for i in range(0, len(joined), piece)]
    handed_on = b"".join(watcher.pass_on(iter(sent)))  # ends the call
    assert watcher.terminal
    assert handed_on == b"".join(_chat_stream(separators, include_usage=False))
    (span,) = exporter.get_finished_spans()
    assert span.attributes["gen_ai.usage.input_tokens"] == 9
    assert span.attributes["gen_ai.usage.output_tokens"] == 2
    assert span.attributes["gen_ai.usage.cache_read.input_tokens"] == 4
    assert span.attributes["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"


def test_a_chat_stream_cut_before_its_end_is_not_terminal():
    endpoint = EndpointTable().match("api.openai.com", None, "/v1/chat/completions")
    assert endpoint is not None
    call = Call(endpoint, "gpt-4o-mini", True, "api.openai.com", None)
    watcher = Watcher(call, "text/event-stream", "", strip=True)
    stream = watcher.pass_on(iter(_chat_stream((",", ":"), include_usage=True)))
    for _ in range(3):  # the three chunks of the reply; the usage chunk and [DONE] are not read
        next(stream)
    assert not watcher.terminal
    stream.close()
    assert call.ended


@pytest.mark.parametrize("library", ["httpx", "httpx2"])
def test_content_headers_are_read_from_either_library_and_any_case(library):
    headers_type = pytest.importorskip(library).Headers
    headers = headers_type({"Content-Type": "text/event-stream", "CONTENT-ENCODING": "gzip", "x-other": "1"})
    assert _content_headers(headers) == ("text/event-stream", "gzip")
    assert _content_headers(headers_type({"x-other": "1"})) == ("", "")

    class PublicView:  # headers held some other way: only the public raw view is read
        raw = headers.raw

    assert _content_headers(PublicView()) == ("text/event-stream", "gzip")


def _chat_completion(separators=(",", ":"), **overrides) -> bytes:
    body = {
        "id": "chatcmpl-9",
        "object": "chat.completion",
        "created": 1767225600,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": 'He said "usage": {"prompt_tokens": 1}'},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 1200,
            "completion_tokens": 30,
            "prompt_tokens_details": {"cached_tokens": 1024},
            "completion_tokens_details": {"reasoning_tokens": 10},
        },
        "service_tier": "priority",
        "system_fingerprint": "fp_1",
    }
    body.update(overrides)
    return json.dumps({k: v for k, v in body.items() if v is not None}, separators=separators).encode()


def _tool_named_usage() -> list:
    call = {"id": "call_1", "type": "function", "function": {"name": "usage", "arguments": '{"usage":{}}'}}
    message = {"role": "assistant", "content": None, "tool_calls": [call]}
    return [{"index": 0, "message": message, "finish_reason": "tool_calls"}]


@pytest.mark.parametrize(
    "body",
    [
        _chat_completion(),
        _chat_completion(separators=(", ", ": ")),  # parsed whole
        _chat_completion(choices=_tool_named_usage()),
        # fields in another order: usage before the choices, the model after them (parsed whole)
        json.dumps(
            {"usage": json.loads(_chat_completion())["usage"], "choices": [], "id": "chatcmpl-9"}
            | {"model": "gpt-4o-mini-2024-07-18", "service_tier": "priority"}
        ).encode(),
    ],
    ids=["compact", "spaced", "a-tool-named-usage", "other-order"],
)
def test_a_chat_completion_body_is_read_the_same_whatever_its_layout(body):
    attributes = _watch("api.openai.com", None, "/v1/chat/completions", "application/json", body)
    assert attributes["gen_ai.usage.input_tokens"] == 1200
    assert attributes["gen_ai.usage.output_tokens"] == 30
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == 1024
    assert attributes["gen_ai.usage.reasoning.output_tokens"] == 10
    assert attributes["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    assert attributes["openai.response.service_tier"] == "priority"
    assert attributes.get("gen_ai.response.id") == "chatcmpl-9"


def test_a_chat_completion_without_usage_still_names_its_model():
    body = _chat_completion(usage=None, service_tier=None)
    attributes = _watch("api.openai.com", None, "/v1/chat/completions", "application/json", body)
    assert attributes["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    assert "gen_ai.usage.input_tokens" not in attributes


def test_only_the_compact_layout_openai_writes_is_read_without_parsing_the_choices():
    endpoint = EndpointTable().match("api.openai.com", None, "/v1/chat/completions")
    assert endpoint is not None
    for body, read_around in (
        (_chat_completion(), True),
        (_chat_completion(choices=_tool_named_usage()), True),
        (_chat_completion(separators=(", ", ": ")), False),
        (_chat_completion(usage=None), False),
        (_chat_completion(model=None), False),
    ):
        call = Call(endpoint, "gpt-4o-mini", False, "api.openai.com", None)
        assert _read_chat_completion(call, body) is read_around
