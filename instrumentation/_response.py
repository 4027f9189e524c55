"""Watching a response's bytes as they pass from the transport to the application.

The transport yields the bytes as they came off the wire, so they may still be compressed: a watcher
decompresses a copy for itself (gzip, deflate, and br or zstd when their libraries are installed) and hands
the application the original chunk, untouched and without delay. Server-sent events are cut at event
boundaries and only the few events that carry model, id or usage are parsed (found with a substring test,
which costs far less than parsing every chunk); a whole JSON body is parsed once, at its end.

The one rewrite: when costspan added ``stream_options.include_usage`` to an OpenAI chat completions request,
the application did not ask for the usage chunk, so the watcher removes it (the event whose ``choices`` is
empty and whose ``usage`` is set) and the ``"usage":null`` member the server adds to every other chunk. The
application then reads what it would have read without costspan. Such a stream is handed over decompressed
(its ``Content-Encoding`` header removed), since the rewritten bytes are no longer the compressed ones.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from typing import Any

from ._call import Call, error_type
from ._endpoints import ANTHROPIC, BEDROCK, GEMINI
from ._failures import swallowed
from ._usage import (
    anthropic_usage,
    openai_usage,
    read_anthropic_message,
    read_gemini,
    read_ollama,
    read_openai,
    read_response,
)

MAX_BODY_BYTES = 32 * 1024 * 1024  # a larger body is passed on unread: its usage is not worth the memory
_LARGE_BODY = 256 * 1024  # above this, usage is read from the body's tail instead of parsing all of it
_EVENT_BOUNDARY = re.compile(rb"(\r\n\r\n|\n\n|\r\r)")
_USAGE_OBJECT = (b'"usage":{', b'"usage": {')
_USAGE_NULL = (b',"usage":null', b', "usage": null')
_USAGE_NULL_AT = ((_USAGE_NULL[0], 1), (_USAGE_NULL[1], 2))  # where "usage" starts in each
# a top-level string member of a chat completion, outside its choices
_CHAT_FIELD = re.compile(rb'"(id|model|service_tier)":"([^"\\]{0,256})"')


def decompressor(encoding: str) -> Callable[[bytes], bytes] | None:
    """A function that decompresses successive chunks of a body in ``encoding``; ``None`` when unknown."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress
    if encoding == "deflate":
        return zlib.decompressobj().decompress
    if encoding == "br":
        try:
            import brotli

            return brotli.Decompressor().process  # type: ignore[no-any-return]
        except ImportError:
            return None
    if encoding == "zstd":
        try:
            import zstandard

            return zstandard.ZstdDecompressor().decompressobj().decompress  # type: ignore[no-any-return]
        except ImportError:
            return None
    return None


class UnknownEncoding(Exception):
    """The body is compressed in an encoding costspan cannot read."""


class Watcher:
    """Reads usage from one response as its bytes pass: :meth:`pass_on` (or :meth:`apass_on`) hands a stream
    on; :meth:`feed` returns what to hand on for one chunk."""

    __slots__ = (
        "block",
        "body",
        "body_size",
        "call",
        "chat",
        "decompress",
        "failed",
        "fast",
        "first",
        "last",
        "mode",
        "pending",
        "saw_end",
        "started",
        "steady",
        "strip",
    )

    def __init__(self, call: Call, content_type: str, encoding: str, strip: bool) -> None:
        self.call = call
        self.decompress = decompressor(encoding) if encoding else None
        if encoding and self.decompress is None and encoding.strip().lower() not in ("", "identity"):
            raise UnknownEncoding(encoding)
        self.strip = strip
        self.failed = False
        self.started = False
        self.saw_end = False  # the stream's last event came (read from `last` for chat completions)
        self.steady = False  # the next whole chunk may take the chat completions short path (see pass_on)
        self.last: bytes | None = None
        self.first: bytes | None = None  # the first events, parsed when (and if) they are needed
        self.pending = b""
        self.body: list[bytes] = []
        self.body_size = 0
        content_type = content_type.lower()
        if "text/event-stream" in content_type:
            self.mode = "sse"
        elif "ndjson" in content_type:
            self.mode = "ndjson"
        elif "eventstream" in content_type:
            self.mode = "scan"  # Bedrock's binary event stream: JSON payloads inside binary frames
        else:
            self.mode = "body"
        call.streaming = call.streaming or self.mode != "body"
        self.fast = self.mode == "sse" and self.decompress is None
        # one handler per format, chosen once: the per-chunk path does only what its format needs
        wire_format, api = call.endpoint.wire_format, call.endpoint.api
        self.chat = False  # chat completions over uncompressed server-sent events: see pass_on
        if wire_format == ANTHROPIC:
            self.block: Callable[[bytes], bytes] = self._anthropic_block
        elif wire_format == GEMINI:
            self.block = self._gemini_block
        elif api == "responses":
            self.block = self._responses_block
        else:
            self.block = self._chat_block
            self.chat = self.fast

    @property
    def terminal(self) -> bool:
        """Whether the stream's last event came: a stream without it was cut short."""
        return self.saw_end or (self.last is not None and b"[DONE]" in self.last[-12:])

    # -- bytes in -----------------------------------------------------------------------------------

    def pass_on(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """``chunks`` handed on as the application reads them, watched on the way; the call ends with the
        stream (cut short when it ends before its last event)."""
        strip = self.strip
        usage_null = _USAGE_NULL[0]  # locals: looked up once a stream, not once a chunk
        usage_object, usage_object_spaced = _USAGE_OBJECT
        try:
            for chunk in chunks:
                if self.steady and chunk.endswith(b"\n\n"):
                    # The usual chunk of an uncompressed chat completions stream after the first: whole
                    # events, none with usage, settled with a C-level search or two and no call, as a stream
                    # has a chunk per token or so (apass_on has the same lines: a generator is either
                    # synchronous or not). A "usage" key cannot hide in a string, where quotes are escaped.
                    self.last = chunk
                    if strip:
                        # the "usage":null the server adds to every chunk once include_usage is asked for
                        out = chunk.replace(usage_null, b"")
                        if b'"usage"' not in out:
                            yield out
                            continue
                    elif usage_object not in chunk and usage_object_spaced not in chunk:
                        yield chunk
                        continue
                out = self.feed(chunk)
                if out:
                    yield out
        except GeneratorExit:
            self._closed()
            raise
        except BaseException as exc:
            self._broken(exc)
            raise
        rest = self._finished()
        if rest:
            yield rest

    async def apass_on(self, chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
        """:meth:`pass_on` for an asynchronous stream."""
        strip = self.strip
        usage_null = _USAGE_NULL[0]
        usage_object, usage_object_spaced = _USAGE_OBJECT
        try:
            async for chunk in chunks:
                if self.steady and chunk.endswith(b"\n\n"):  # as in pass_on
                    self.last = chunk
                    if strip:
                        out = chunk.replace(usage_null, b"")
                        if b'"usage"' not in out:
                            yield out
                            continue
                    elif usage_object not in chunk and usage_object_spaced not in chunk:
                        yield chunk
                        continue
                out = self.feed(chunk)
                if out:
                    yield out
        except GeneratorExit:
            self._closed()
            raise
        except BaseException as exc:
            self._broken(exc)
            raise
        rest = self._finished()
        if rest:
            yield rest

    def _closed(self) -> None:
        """The application closed the stream: cut short unless its last event came."""
        self.call.end(cut_short=not self.terminal)

    def _broken(self, exc: BaseException) -> None:
        """Reading the stream raised ``exc``: what came is recorded, with the error."""
        self.done()
        self.call.end(error_type=error_type(exc), cut_short=True)

    def _finished(self) -> bytes:
        """The stream ended: the call ends; returns the bytes still to hand on."""
        self.done()
        rest = self.leftover()
        self.call.end()
        return rest

    def feed(self, chunk: bytes) -> bytes:
        """The bytes to hand on for ``chunk`` (the chunk itself, unless the stream is rewritten)."""
        if self.failed or not chunk:
            return chunk
        try:
            if self.started and self.fast and not self.pending and chunk.endswith(b"\n\n"):
                # the usual chunk of an uncompressed event stream: whole events, nothing held back
                handed_on = self.block(chunk)
                return handed_on if self.strip else chunk
            if not self.started:
                self.started = True
                self.call.first_chunk()
            data = self.decompress(chunk) if self.decompress is not None else chunk
            if self.mode == "sse":
                if self.pending:
                    data = self.pending + data
                    self.pending = b""
                # a whole number of events is the usual case
                whole = data.endswith((b"\n\n", b"\r\n\r\n"))
                handed_on = self.block(data) if whole else self._split(data)
                self.steady = self.chat and not self.pending
                return handed_on if self.strip else chunk
            if self.mode == "ndjson":
                self._ndjson(data)
            else:
                self.body_size += len(data)
                if self.body_size <= MAX_BODY_BYTES:
                    self.body.append(data)
            return chunk
        except Exception:
            self.failed = True
            self.steady = False
            swallowed("read a response; passing it on unread")
            return chunk

    def done(self) -> None:
        """The body ended: parse what is left."""
        self.steady = False
        if self.failed:
            return
        try:
            if self.mode == "sse":
                if self.pending:
                    handed_on = self.block(self.pending)
                    self.pending = handed_on if self.strip else b""
                if self.first is not None and self.call.response_model is None:
                    self._first_event(_EVENT_BOUNDARY.split(self.first, 1)[0])
                self.first = None
            elif self.mode == "ndjson":
                if self.pending:
                    self._ndjson(b"\n")
            elif self.body and self.body_size <= MAX_BODY_BYTES:
                body = b"".join(self.body)
                self.body = []
                if self.mode == "scan":
                    self._scan(body)
                else:
                    self._body(body)
        except Exception:
            self.failed = True
            swallowed("read a response")

    def leftover(self) -> bytes:
        """Bytes held back at the end of a rewritten stream (an event without its closing blank line)."""
        out, self.pending = self.pending, b""
        return out if self.strip else b""

    # -- whole bodies -------------------------------------------------------------------------------

    def _body(self, body: bytes) -> None:
        call = self.call
        if len(body) <= _LARGE_BODY:
            if call.endpoint.api == "chat_completions" and _read_chat_completion(call, body):
                return
            read_response(call, _loads(body))
            return
        # embeddings and images: megabytes of vectors or base64 before a small usage object at the end
        usage = _last_object(body, b'"usage"')
        head: dict[str, Any] = {
            "model": _string_value(body, b'"model"'),
            "id": _string_value(body[:1024], b'"id"'),
        }
        if usage is not None:
            head["usage"] = usage
        read_response(call, head)

    def _scan(self, body: bytes) -> None:
        if self.call.endpoint.wire_format == BEDROCK:
            usage = _last_object(body, b'"usage"')
            if usage is not None:
                read_response(self.call, {"usage": usage})
            self.saw_end = usage is not None

    # -- server-sent events ---------------------------------------------------------------------------

    def _split(self, buffer: bytes) -> bytes:
        """Hands the complete events of ``buffer`` to the format's handler and keeps the rest for later."""
        end = buffer.rfind(b"\n\n")
        end = end + 2 if end >= 0 else -1
        crlf = buffer.rfind(b"\r\n\r\n")
        if crlf >= 0 and crlf + 4 > end:
            end = crlf + 4
        if end < 0:
            self.pending = buffer
            return b""
        self.pending = buffer[end:]
        return self.block(buffer[:end])

    def _chat_block(self, block: bytes) -> bytes:
        """Chat completions (and legacy completions): usage is in the last chunk, which also names the
        model and id; the first chunk is read only when no usage chunk came."""
        if self.first is None:
            self.first = block
        if b"[DONE]" in block[-12:]:  # the stream's last event, so at the end of its block
            self.saw_end = True
        at = block.find(b'"usage"')
        if at < 0:
            return block
        if block.find(b'"usage"', at + 7) < 0:
            # The usual block: one chunk, and its "usage":null (every chunk but the last, when usage was
            # asked for). Settled here, by looking at the bytes around the one match.
            for null, offset in _USAGE_NULL_AT:
                if at >= offset and block.startswith(null, at - offset):
                    return block[: at - offset] + block[at - offset + len(null) :] if self.strip else block
        if _USAGE_OBJECT[0] in block or _USAGE_OBJECT[1] in block:
            if self.strip:
                block = self._drop_usage_chunk(block)
            else:
                for _, obj in _parsed_events(block, b'"usage"'):
                    read_openai(self.call, obj)
        if self.strip:
            block = block.replace(_USAGE_NULL[0], b"").replace(_USAGE_NULL[1], b"")
        return block

    def _responses_block(self, block: bytes) -> bytes:
        if self.first is None:
            self.first = block
        if b"response.completed" in block or b"response.incomplete" in block or b"response.failed" in block:
            for _, obj in _parsed_events(block, b"response."):
                if _get(obj, "type") in ("response.completed", "response.incomplete", "response.failed"):
                    response = obj.get("response")
                    if isinstance(response, dict):
                        read_openai(self.call, response)
                    self.saw_end = True
        return block

    def _anthropic_block(self, block: bytes) -> bytes:
        call = self.call
        if self.first is None:
            self.first = block
            self._first_event(_EVENT_BOUNDARY.split(block, 1)[0])  # message_start: the input usage
        if b"message_delta" in block:
            for name, obj in _parsed_events(block, b"message_delta"):
                if name == "message_delta" or _get(obj, "type") == "message_delta":
                    usage = obj.get("usage")
                    if isinstance(usage, dict):
                        anthropic_usage(call, usage)
        if b"message_stop" in block:
            self.saw_end = True
        return block

    def _gemini_block(self, block: bytes) -> bytes:
        if b"usageMetadata" in block:
            for _, obj in _parsed_events(block, b"usageMetadata"):
                read_gemini(self.call, obj)
        return block

    def _drop_usage_chunk(self, block: bytes) -> bytes:
        line_end = block.find(b"\n")
        if block.startswith(b"data:") and line_end >= 0 and not block[line_end:].strip():
            # the usual block: one event of one data line
            data = block[5:line_end]
            if _read_chat_completion(self.call, data):
                return b"" if b'"choices":[]' in data else block
            try:
                obj = _loads(data)
            except ValueError:
                obj = None
            if isinstance(obj, dict):
                read_openai(self.call, obj)
                only_usage = obj.get("choices") == [] and isinstance(obj.get("usage"), dict)
                return b"" if only_usage else block
        parts = _EVENT_BOUNDARY.split(block)  # event, separator, event, separator ...
        kept: list[bytes] = []
        for i in range(0, len(parts), 2):
            event = parts[i]
            separator = parts[i + 1] if i + 1 < len(parts) else b""
            if _USAGE_OBJECT[0] in event or _USAGE_OBJECT[1] in event:
                obj = _event_json(event)
                if isinstance(obj, dict):
                    read_openai(self.call, obj)
                    if obj.get("choices") == [] and isinstance(obj.get("usage"), dict):
                        continue  # the chunk only include_usage asked for
            kept.append(event + separator)
        return b"".join(kept)

    def _first_event(self, event: bytes) -> None:
        obj = _event_json(event)
        if not isinstance(obj, dict):
            return
        wire_format = self.call.endpoint.wire_format
        if wire_format == ANTHROPIC:
            message = obj.get("message")
            if isinstance(message, dict):
                read_anthropic_message(self.call, message)
        elif wire_format == GEMINI:
            read_gemini(self.call, obj)
        elif self.call.endpoint.api == "responses":
            response = obj.get("response")
            if isinstance(response, dict):
                read_openai(self.call, response)
        else:
            read_openai(self.call, obj)

    # -- newline-delimited JSON (Ollama) ------------------------------------------------------------------

    def _ndjson(self, data: bytes) -> None:
        buffer = self.pending + data if self.pending else data
        end = buffer.rfind(b"\n")
        if end < 0:
            self.pending = buffer
            return
        complete, self.pending = buffer[: end + 1], buffer[end + 1 :]
        if self.first is None:
            self.first = complete
            line = complete.split(b"\n", 1)[0]
            if line.strip():
                read_ollama(self.call, _loads(line))
        if b'"done":true' in complete or b'"done": true' in complete:
            for line in complete.split(b"\n"):
                if b'"done"' in line:
                    obj = _loads(line)
                    if isinstance(obj, dict) and obj.get("done") is True:
                        read_ollama(self.call, obj)
                        self.saw_end = True


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else None


def _event_json(event: bytes) -> Any:
    """The JSON ``data`` of one server-sent event, or ``None``."""
    data = [line[5:].lstrip(b" ") for line in event.splitlines() if line.startswith(b"data:")]
    if not data:
        return None
    payload = data[0] if len(data) == 1 else b"\n".join(data)
    if payload == b"[DONE]":
        return None
    try:
        return _loads(payload)
    except ValueError:
        return None


def _parsed_events(block: bytes, marker: bytes) -> Iterator[tuple[str | None, Any]]:
    """(event name, parsed data) of the events of ``block`` that contain ``marker``."""
    for event in _EVENT_BOUNDARY.split(block)[::2]:
        if marker not in event:
            continue
        name = None
        for line in event.splitlines():
            if line.startswith(b"event:"):
                name = line[6:].strip().decode("utf-8", "replace")
                break
        obj = _event_json(event)
        if isinstance(obj, dict):
            yield name, obj


_DECODER = json.JSONDecoder()


def _loads(data: bytes) -> Any:
    """``json.loads(data)``, without its sniffing for UTF-16 and UTF-32 first: JSON exchanged between
    systems is UTF-8 (RFC 8259). Anything else (a byte order mark, another encoding) goes to
    ``json.loads``."""
    try:
        return _DECODER.decode(data.decode())
    except ValueError:
        return json.loads(data)


def _last_object(body: bytes, key: bytes) -> dict[str, Any] | None:
    """The JSON object after the last ``key`` in ``body`` (``"usage": {...}``), without parsing the rest."""
    at = body.rfind(key)
    if at < 0:
        return None
    colon = body.find(b":", at + len(key))
    if colon < 0:
        return None
    text = body[colon + 1 : colon + 1 + 65536].decode("utf-8", "replace").lstrip()
    try:
        obj, _ = _DECODER.raw_decode(text)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def _read_chat_completion(call: Call, body: bytes) -> bool:
    """A chat completion's id, model, service tier and usage, read around its choices instead of parsing
    them: the choices grow with the reply, the rest does not. OpenAI writes compact JSON with the choices
    before ``"usage"`` and the string members around them; ``False`` (parse the body whole) for anything
    else. A key cannot hide in the choices' strings, where quotes are escaped."""
    usage_at = body.rfind(_USAGE_OBJECT[0])
    choices_at = body.find(b'"choices":')
    if usage_at < 0 or not 0 < choices_at < usage_at:
        return False
    try:
        tail = body[usage_at + len(b'"usage":') :].decode()  # from the usage object's brace
        usage, end = _DECODER.raw_decode(tail)
    except ValueError:
        return False
    fields = dict(_CHAT_FIELD.findall(body[:choices_at] + tail[end:].encode()))
    model = fields.get(b"model")
    if not isinstance(usage, dict) or type(usage.get("prompt_tokens")) is not int or not model:
        return False
    call.response_model = call.response_model or model.decode()
    response_id = fields.get(b"id")
    if response_id and call.response_id is None:
        call.response_id = response_id.decode()
    tier = fields.get(b"service_tier")
    if tier:
        call.service_tier = tier.decode()
    openai_usage(call, usage)
    return True


def _string_value(body: bytes, key: bytes) -> str | None:
    found = re.search(re.escape(key) + rb'\s*:\s*"([^"\\]{1,256})"', body[-8192:]) or re.search(
        re.escape(key) + rb'\s*:\s*"([^"\\]{1,256})"', body[:8192]
    )
    return found.group(1).decode("utf-8", "replace") if found else None
