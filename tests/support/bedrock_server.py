"""A local, deterministic stand-in for the Amazon Bedrock Runtime API, for real boto3 clients
(``endpoint_url=server.endpoint_url``, any credentials: requests are not authenticated).

Operations, in the wire formats botocore reads (Bedrock API reference,
https://docs.aws.amazon.com/bedrock/latest/APIReference/API_Operations_Amazon_Bedrock_Runtime.html):

- ``POST /model/{modelId}/converse``: JSON with ``output``, ``stopReason``, ``usage``, ``metrics``;
- ``POST /model/{modelId}/converse-stream``: an AWS event stream (``application/vnd.amazon.eventstream``)
  of ``messageStart``, ``contentBlockDelta`` ..., ``contentBlockStop``, ``messageStop`` and ``metadata``
  (the usage) events;
- ``POST /model/{modelId}/invoke``: the model family's own JSON body (Anthropic Messages, Meta Llama,
  Amazon Nova, Amazon Titan text and embeddings), with the ``X-Amzn-Bedrock-*-Token-Count`` headers;
- ``POST /model/{modelId}/invoke-with-response-stream``: ``chunk`` events, each ``{"bytes": base64}`` of
  one of the model's own stream events; the last carries ``amazon-bedrock-invocationMetrics``.

An event stream message is framed as the AWS event stream encoding has it
(https://docs.aws.amazon.com/transcribe/latest/dg/event-stream.html, and the same page of Amazon Lex V2,
https://docs.aws.amazon.com/lexv2/latest/dg/event-stream-encoding.html): a
12-byte prelude (total length, headers length, CRC32 of the two), the headers (name length, name, value
type 7 = string, value length, value), the payload, and a CRC32 of all before it. The response is sent
with chunked transfer encoding, one message a chunk.

Usage is derived from the request: one token per word of every text in it (messages, system prompt,
Anthropic's ``messages`` / ``system``, Llama's and Titan's ``prompt`` / ``inputText``). A ``cachePoint``
block (Converse's and Amazon Nova's), or an Anthropic block with ``cache_control``, ends a cached prefix: the
first request with a given prefix writes it to the cache (``cacheWriteInputTokens``, with its TTL in
``cacheDetails``), later ones read it (``cacheReadInputTokens``); the input count excludes the prefix, as
Bedrock counts. The reply is :data:`REPLY_TEXT`, one token per word.

A model id starting ``garbled.`` streams a first chunk that is not JSON. ``stream_failure`` makes the next
streams fail after two text events: ``"exception"`` sends a
``modelStreamErrorException`` event, ``"drop"`` closes the connection mid-stream. ``usage_headers = False``
leaves the usage headers out of InvokeModel responses, ``cache_headers = False`` the cache counts' alone.
Every request is recorded (:class:`BedrockRequest`).
"""

from __future__ import annotations

import base64
import json
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

HOST = "127.0.0.1"
REPLY_TEXT = "Invoice INV-0042 was paid in full on the first of March."
REPLY_WORDS = REPLY_TEXT.split(" ")
OUTPUT_TOKENS = len(REPLY_WORDS)
EVENT_STREAM = "application/vnd.amazon.eventstream"
_OPERATIONS = ("converse", "converse-stream", "invoke", "invoke-with-response-stream")


@dataclass
class BedrockRequest:
    """One request the server answered, and the usage it reported, in Bedrock's own counts (the input
    excludes the cache reads and writes)."""

    operation: str
    model: str
    body: dict[str, Any]
    headers: dict[str, str]
    usage: dict[str, int] = field(default_factory=dict)
    cache_ttl: str | None = None


def event_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One message of the AWS event stream encoding."""
    encoded = b"".join(
        bytes([len(name)]) + name.encode() + b"\x07" + len(value.encode()).to_bytes(2, "big") + value.encode()
        for name, value in headers.items()
    )
    total = 12 + len(encoded) + len(payload) + 4
    prelude = total.to_bytes(4, "big") + len(encoded).to_bytes(4, "big")
    message = prelude + zlib.crc32(prelude).to_bytes(4, "big") + encoded + payload
    return message + zlib.crc32(message).to_bytes(4, "big")


def _event(event_type: str, payload: dict[str, Any]) -> bytes:
    headers = {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}
    return event_message(headers, json.dumps(payload, separators=(",", ":")).encode())


def _exception(exception_type: str, message: str) -> bytes:
    headers = {
        ":exception-type": exception_type,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return event_message(headers, json.dumps({"message": message}).encode())


def _chunk(obj: dict[str, Any] | bytes) -> bytes:
    data = obj if isinstance(obj, bytes) else json.dumps(obj, separators=(",", ":")).encode()
    return _event("chunk", {"bytes": base64.b64encode(data).decode()})


def _words(text: Any) -> int:
    return len(text.split()) if isinstance(text, str) else 0


class _Prompt:
    """The texts of a request in order, and where its cached prefix ends."""

    def __init__(self) -> None:
        self.tokens = 0
        self.prefix_tokens = 0
        self.prefix: list[str] = []
        self.texts: list[str] = []
        self.ttl: str | None = None

    def text(self, text: Any) -> None:
        if isinstance(text, str):
            self.texts.append(text)
            self.tokens += _words(text)

    def cache_point(self, ttl: Any) -> None:
        self.prefix = list(self.texts)
        self.prefix_tokens = self.tokens
        self.ttl = ttl if isinstance(ttl, str) else "5m"


def _converse_prompt(body: dict[str, Any]) -> _Prompt:
    prompt = _Prompt()
    blocks = list(body.get("system") or [])
    for message in body.get("messages") or []:
        blocks.extend(message.get("content") or [])
    for block in blocks:
        if "cachePoint" in block:
            prompt.cache_point(block["cachePoint"].get("ttl"))
        else:
            prompt.text(block.get("text"))
    return prompt


def _native_prompt(body: dict[str, Any]) -> _Prompt:
    prompt = _Prompt()
    system = body.get("system")
    blocks: list[Any] = [{"text": system}] if isinstance(system, str) else list(system or [])
    for message in body.get("messages") or []:
        content = message.get("content")
        if isinstance(content, str):
            blocks.append({"text": content})
        else:
            blocks.extend(content or [])
    for block in blocks:
        prompt.text(block.get("text"))
        control = block.get("cache_control")  # Anthropic's
        if isinstance(control, dict):
            prompt.cache_point(control.get("ttl"))
        point = block.get("cachePoint")  # Amazon Nova's, as in Converse
        if isinstance(point, dict):
            prompt.cache_point(point.get("ttl"))
    prompt.text(body.get("prompt"))  # Meta Llama
    prompt.text(body.get("inputText"))  # Amazon Titan
    return prompt


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # the headers and the body go out at once, not 40 ms apart
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        parts = self.path.split("?", 1)[0].split("/")
        if len(parts) != 4 or parts[1] != "model" or parts[3] not in _OPERATIONS:
            self._json(
                404, {"message": "Unknown operation"}, {"x-amzn-ErrorType": "UnknownOperationException"}
            )
            return
        model, operation = unquote(parts[2]), parts[3]
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            self._json(
                400, {"message": "Malformed input request"}, {"x-amzn-ErrorType": "ValidationException"}
            )
            return
        if model.startswith("missing."):
            self._json(
                404,
                {"message": "The provided model identifier is invalid."},
                {"x-amzn-ErrorType": "ResourceNotFoundException"},
            )
            return
        stand_in = self.server.stand_in
        prompt = _converse_prompt(body) if operation.startswith("converse") else _native_prompt(body)
        usage = stand_in.usage_of(prompt)
        if "embed" in model:  # an embeddings model generates no tokens
            usage["output"] = 0
        request = BedrockRequest(operation, model, body, dict(self.headers.items()), usage, prompt.ttl)
        stand_in.record(request)
        if operation == "converse":
            self._json(200, {**_converse_message(), "usage": _converse_usage(usage, prompt.ttl)})
        elif operation == "converse-stream":
            self._stream(_converse_events(usage, prompt.ttl), {})
        elif operation == "invoke":
            headers = _usage_headers(usage, stand_in.cache_headers) if stand_in.usage_headers else {}
            self._json(200, _invoke_body(model, usage, prompt.ttl, stand_in.next_id()), headers)
        else:
            events = _invoke_stream_events(model, usage, prompt.ttl, stand_in.next_id())
            self._stream(events, {"X-Amzn-Bedrock-Content-Type": "application/json"})

    def _json(self, status: int, obj: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(obj, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", self.server.stand_in.next_id())
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, messages: list[bytes], headers: dict[str, str]) -> None:
        failure = self.server.stand_in.stream_failure
        self.send_response(200)
        self.send_header("Content-Type", EVENT_STREAM)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-amzn-RequestId", self.server.stand_in.next_id())
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        for message in _with_failure(messages, failure):
            if message is None:  # "drop": half a chunk, then the connection closes
                self.wfile.write(b"%x\r\n" % 64 + b"\x00" * 10)
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(b"%x\r\n%s\r\n" % (len(message), message))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def _with_failure(messages: list[bytes], failure: str | None) -> Iterator[bytes | None]:
    if failure is None:
        yield from messages
        return
    yield from messages[:4]  # the first events, two of them text
    if failure == "exception":
        yield _exception("modelStreamErrorException", "The model failed while streaming its response.")
    else:
        yield None


def _converse_message() -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": REPLY_TEXT}]}},
        "stopReason": "end_turn",
        "metrics": {"latencyMs": 42},
    }


def _converse_usage(usage: dict[str, int], ttl: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "inputTokens": usage["input"],
        "outputTokens": usage["output"],
        "totalTokens": usage["input"] + usage["output"] + usage["cache_read"] + usage["cache_write"],
    }
    if ttl is not None:
        out["cacheReadInputTokens"] = usage["cache_read"]
        out["cacheWriteInputTokens"] = usage["cache_write"]
        if usage["cache_write"]:
            out["cacheDetails"] = [{"ttl": ttl, "inputTokens": usage["cache_write"]}]
    return out


def _converse_events(usage: dict[str, int], ttl: str | None) -> list[bytes]:
    events = [
        _event("messageStart", {"role": "assistant"}),
        *(
            _event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": word + " "}})
            for word in REPLY_WORDS
        ),
        _event("contentBlockStop", {"contentBlockIndex": 0}),
        _event("messageStop", {"stopReason": "end_turn"}),
        _event("metadata", {"usage": _converse_usage(usage, ttl), "metrics": {"latencyMs": 42}}),
    ]
    return events


def _usage_headers(usage: dict[str, int], cache: bool) -> dict[str, str]:
    """InvokeModel's usage headers: like Converse's inputTokens, the input count excludes the cache."""
    headers = {
        "X-Amzn-Bedrock-Input-Token-Count": str(usage["input"]),
        "X-Amzn-Bedrock-Output-Token-Count": str(usage["output"]),
        "X-Amzn-Bedrock-Invocation-Latency": "42",
    }
    if cache:
        headers["X-Amzn-Bedrock-Cache-Read-Input-Token-Count"] = str(usage["cache_read"])
        headers["X-Amzn-Bedrock-Cache-Write-Input-Token-Count"] = str(usage["cache_write"])
    return headers


def _anthropic_usage(usage: dict[str, int], ttl: str | None, output: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "input_tokens": usage["input"],
        "output_tokens": output,
        "cache_creation_input_tokens": usage["cache_write"],
        "cache_read_input_tokens": usage["cache_read"],
    }
    if ttl is not None:
        five, hour = (0, usage["cache_write"]) if ttl == "1h" else (usage["cache_write"], 0)
        out["cache_creation"] = {"ephemeral_5m_input_tokens": five, "ephemeral_1h_input_tokens": hour}
    return out


def _invoke_body(model: str, usage: dict[str, int], ttl: str | None, message_id: str) -> dict[str, Any]:
    if "anthropic." in model:
        return {
            "id": f"msg_bdrk_{message_id}",
            "type": "message",
            "role": "assistant",
            "model": "claude-3-5-sonnet-20240620",
            "content": [{"type": "text", "text": REPLY_TEXT}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": _anthropic_usage(usage, ttl, usage["output"]),
        }
    if "meta." in model:
        return {
            "generation": REPLY_TEXT,
            "prompt_token_count": usage["input"],
            "generation_token_count": usage["output"],
            "stop_reason": "stop",
        }
    if "nova" in model:
        return {
            "output": {"message": {"role": "assistant", "content": [{"text": REPLY_TEXT}]}},
            "stopReason": "end_turn",
            "usage": {
                "inputTokens": usage["input"],
                "outputTokens": usage["output"],
                "totalTokens": usage["input"] + usage["output"],
                "cacheReadInputTokenCount": usage["cache_read"],
                "cacheWriteInputTokenCount": usage["cache_write"],
            },
        }
    if "embed" in model:
        return {"embedding": [0.125, -0.25, 0.5], "inputTextTokenCount": usage["input"]}
    return {
        "inputTextTokenCount": usage["input"],
        "results": [{"tokenCount": usage["output"], "outputText": REPLY_TEXT, "completionReason": "FINISH"}],
    }


def _invocation_metrics(usage: dict[str, int]) -> dict[str, int]:
    return {
        "inputTokenCount": usage["input"],
        "outputTokenCount": usage["output"],
        "invocationLatency": 42,
        "firstByteLatency": 7,
        "cacheReadInputTokenCount": usage["cache_read"],
        "cacheWriteInputTokenCount": usage["cache_write"],
    }


def _invoke_stream_events(model: str, usage: dict[str, int], ttl: str | None, message_id: str) -> list[bytes]:
    metrics = {"amazon-bedrock-invocationMetrics": _invocation_metrics(usage)}
    if model.startswith("garbled."):  # a model whose first chunk is not the JSON it claims to be
        delta = {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": REPLY_TEXT},
        }
        return [
            _chunk(b'{"type":"message_start","usage": not JSON'),
            _chunk(delta),
            _chunk({"type": "message_stop", **metrics}),
        ]
    if "meta." in model:
        chunks: list[dict[str, Any]] = [
            {
                "generation": word + " ",
                "prompt_token_count": usage["input"] if i == 0 else None,
                "generation_token_count": i + 1,
                "stop_reason": None,
            }
            for i, word in enumerate(REPLY_WORDS)
        ]
        chunks[-1] = {**chunks[-1], "stop_reason": "stop", **metrics}
        return [_chunk(c) for c in chunks]
    if "nova" in model:  # Amazon Nova's chunks are ConverseStream's events
        nova: list[dict[str, Any]] = [
            {"messageStart": {"role": "assistant"}},
            *(
                {"contentBlockDelta": {"delta": {"text": word + " "}, "contentBlockIndex": 0}}
                for word in REPLY_WORDS
            ),
            {"contentBlockStop": {"contentBlockIndex": 0}},
            {"messageStop": {"stopReason": "end_turn"}},
            {
                "metadata": {
                    "usage": {
                        "inputTokens": usage["input"],
                        "outputTokens": usage["output"],
                        "cacheReadInputTokenCount": usage["cache_read"],
                        "cacheWriteInputTokenCount": usage["cache_write"],
                    },
                    "metrics": {},
                    "trace": {},
                },
                **metrics,
            },
        ]
        return [_chunk(c) for c in nova]
    message = {
        "id": f"msg_bdrk_{message_id}",
        "type": "message",
        "role": "assistant",
        "model": "claude-3-5-sonnet-20240620",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": _anthropic_usage(usage, ttl, 1),
    }
    chunks = [
        {"type": "message_start", "message": message},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        *(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": word + " "}}
            for word in REPLY_WORDS
        ),
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": usage["output"]},
        },
        {"type": "message_stop", **metrics},
    ]
    return [_chunk(c) for c in chunks]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    stand_in: BedrockServer


class BedrockServer:
    """The stand-in on 127.0.0.1, on an ephemeral port, in a thread; a context manager."""

    def __init__(self) -> None:
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._requests: list[BedrockRequest] = []
        self._cached: set[tuple[str, ...]] = set()
        self._ids = 0
        self.stream_failure: str | None = None
        self.usage_headers = True
        self.cache_headers = True

    @property
    def endpoint_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the Bedrock stand-in is not running")
        return f"http://{HOST}:{self._httpd.server_address[1]}"

    @property
    def port(self) -> int:
        return int(self.endpoint_url.rsplit(":", 1)[1])

    @property
    def requests(self) -> list[BedrockRequest]:
        with self._lock:
            return list(self._requests)

    def record(self, request: BedrockRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def next_id(self) -> str:
        with self._lock:
            self._ids += 1
            return f"{self._ids:08d}-0000-4000-8000-000000000000"

    def usage_of(self, prompt: _Prompt) -> dict[str, int]:
        read = written = 0
        if prompt.ttl is not None:
            key = tuple(prompt.prefix)
            with self._lock:
                if key in self._cached:
                    read = prompt.prefix_tokens
                else:
                    self._cached.add(key)
                    written = prompt.prefix_tokens
        return {
            "input": prompt.tokens - read - written,
            "output": OUTPUT_TOKENS,
            "cache_read": read,
            "cache_write": written,
        }

    def __enter__(self) -> BedrockServer:
        self._httpd = _Server((HOST, 0), _Handler)
        self._httpd.stand_in = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="bedrock-stand-in", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
