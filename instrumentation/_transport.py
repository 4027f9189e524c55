"""The transport hook: every request an httpx or httpx2 transport sends passes here.

A request that is no LLM call (by host and path) goes straight through. For a call, the start time and
context are noted and the request is read for its model and stream flag (a regular-expression search of
the body, which the client has already serialised, rather than a parse of it); the transport sends it, and
the response's byte stream is wrapped by a :class:`~costspan.instrumentation._response.Watcher` that reads
usage as the application reads the bytes. When the stream ends or is closed, the call's span is made,
from its start time, and ended (see :class:`~costspan.instrumentation._call.Call`).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Iterator
from operator import itemgetter
from typing import Any

from opentelemetry import context
from opentelemetry.trace import Tracer

from costspan.semconv import attributes as A

from ._call import Call, error_type, start_call
from ._endpoints import Endpoint, EndpointTable, has_call_shape, with_model_provider
from ._failures import swallowed
from ._metrics import ClientMetrics
from ._others import traced_elsewhere
from ._response import UnknownEncoding, Watcher

_MODEL = re.compile(rb'"model"\s*:\s*"((?:[^"\\]|\\.){1,512})"')
_STREAM = re.compile(rb'"stream"\s*:\s*true')
_MULTIPART_MODEL = re.compile(rb'name="model"\r\n\r\n([^\r\n]{1,512})\r\n')
# OpenAI-compatible APIs that report a stream's usage without stream_options.include_usage, and are left
# alone: Mistral and Perplexity (usage on every chunk; they may refuse unknown fields), OpenRouter (usage in
# the last event always; include_usage "deprecated and has no effect",
# https://openrouter.ai/docs/use-cases/usage-accounting) and Groq (x_groq.usage in the last chunk)
_NO_USAGE_INJECTION = frozenset({"mistral_ai", "perplexity", "openrouter", "groq"})
_TAIL = 16 * 1024
_LOWERED_NAME_AND_VALUE = itemgetter(1, 2)
_INCLUDE_USAGE = b'"stream_options":{"include_usage":true},'
_USAGE_REQUESTED = {A.COSTSPAN_STREAM_USAGE_REQUESTED: True}
SCOPE = "costspan.instrumentation"


class Hook:
    """What the transport wrappers share: the tracer, the metrics, the endpoint table and the options."""

    def __init__(
        self, tracer: Tracer, metrics: ClientMetrics | None, table: EndpointTable, inject_usage: bool
    ) -> None:
        self.tracer = tracer
        self.metrics = metrics
        self.table = table
        self.inject_usage = inject_usage

    def start(self, request: Any) -> tuple[Call, bool] | None:
        """The call ``request`` makes and whether its stream is rewritten; ``None`` for anything else."""
        url = request.url
        host, port = url.host, url.port
        endpoint = self.table.match(host, port, url.path)
        if endpoint is None or request.method != "POST":
            return None
        try:
            body = request.content
        except Exception:  # a streamed upload: not read here
            body = b""
        model = endpoint.model
        if endpoint.by_shape:
            # found by its path alone: a call only when its body is the API's, with a model
            if not has_call_shape(endpoint, body) or not (model := _request_model(endpoint, body)):
                return None
            endpoint = with_model_provider(endpoint, model)  # a gateway's gpt-4o is OpenAI's
        parent = context.get_current()
        other = traced_elsewhere(endpoint.wire_format, request.headers, parent)
        if other is not None and endpoint.api != "chat_completions":
            return None
        if other is not None and not self._lacks_stream_usage(endpoint, body):
            return None
        if other is not None and other is not True:
            return self._usage_for(other, request, body, endpoint, host, port)
        if model is None:
            model = _request_model(endpoint, body)
        streaming = endpoint.streaming_path or (
            b'"stream"' in body and _search(_STREAM, body) is not None  # the test first: most calls have none
        )
        strip = (
            streaming
            and self.inject_usage
            and endpoint.api == "chat_completions"
            and endpoint.provider not in _NO_USAGE_INJECTION
            and _inject_include_usage(request, body)
        )
        call = start_call(
            endpoint,
            model,
            streaming,
            host,
            port,
            tracer=self.tracer,
            metrics=self.metrics,
            parent=parent,
            extra=_USAGE_REQUESTED if strip else None,
        )
        if endpoint.api == "speech" and body and model and model.startswith("tts-1"):
            call.extra = _speech_characters(body)  # tts-1 is billed per input character
        return call, strip

    def _lacks_stream_usage(self, endpoint: Endpoint, body: bytes) -> bool:
        """A chat completions stream whose usage no one will see unless costspan asks for it."""
        return (
            bool(body)
            and self.inject_usage
            and endpoint.provider not in _NO_USAGE_INJECTION
            and _search(_STREAM, body) is not None
            and not (b'"stream_options"' in body and b'"include_usage"' in body)
        )

    def _usage_for(
        self, other: Any, request: Any, body: bytes, endpoint: Endpoint, host: str, port: int | None
    ) -> Any:
        """Another instrumentation's span of this stream is at hand: its usage goes there (see _others)."""
        if not _inject_include_usage(request, body):
            return None
        return Call(endpoint, None, True, host, port, borrowed=other), True

    def watch(self, response: Any, call: Call, strip: bool, wrap: Callable[[Any, Watcher], Any]) -> None:
        status = response.status_code
        if status >= 400:
            call.end(error_type=str(status))
            return
        headers = response.headers
        content_type, encoding = _content_headers(headers)
        try:
            watcher = Watcher(call, content_type, encoding, strip)
        except UnknownEncoding:
            call.end()
            return
        if strip and encoding:
            # the rewritten stream is handed on decompressed (see _response)
            del headers["content-encoding"]
            if "content-length" in headers:
                del headers["content-length"]
        response.stream = wrap(response.stream, watcher)


def _content_headers(headers: Any) -> tuple[str, str]:
    """Content-Type and Content-Encoding, in one pass: each ``Headers.get`` walks them all."""
    try:
        # (name as sent, name lowered, value): how httpx and httpx2 hold headers, lowered once already;
        # the dict is built in C, a Python loop over a response's dozen headers costs more
        found = dict(map(_LOWERED_NAME_AND_VALUE, headers._list))
    except (AttributeError, TypeError, IndexError):  # held some other way: the public view
        found = {name.lower(): value for name, value in headers.raw}
    return (
        found.get(b"content-type", b"").decode("latin-1"),
        found.get(b"content-encoding", b"").decode("latin-1"),
    )


def _request_model(endpoint: Endpoint, body: bytes) -> str | None:
    """The model a request body names."""
    found = _search(_MODEL, body) if body else None
    if found is None and endpoint.api == "transcriptions" and body:
        found = _MULTIPART_MODEL.search(body)
    return _decode(found.group(1)) if found is not None else None


def _search(pattern: re.Pattern[bytes], body: bytes) -> re.Match[bytes] | None:
    """The first match of ``pattern``, looked for in the body's tail first: the SDKs write ``model`` and
    ``stream`` after the messages, and a long prompt would otherwise be read to its end for each."""
    if len(body) > _TAIL:
        found = pattern.search(body, len(body) - _TAIL)
        if found is not None:
            return found
    return pattern.search(body)


def _decode(raw: bytes) -> str:
    if b"\\" in raw:
        try:
            return str(json.loads(b'"' + raw + b'"'))
        except ValueError:
            pass
    return raw.decode("utf-8", "replace")


def _inject_include_usage(request: Any, body: bytes) -> bool:
    """Adds ``stream_options.include_usage`` to a chat completions request; ``False`` if it cannot."""
    stream = request.stream
    if type(stream).__name__ != "ByteStream":
        return False
    new = _with_include_usage(body)
    if new is None:
        return False
    request.stream = type(stream)(new)
    request._content = new  # what request.content answers, for hooks and instrumentations after this one
    request.headers["Content-Length"] = str(len(new))
    return True


def _with_include_usage(body: bytes) -> bytes | None:
    """``body`` asking for the usage chunk; ``None`` when it is no JSON object, or when the application
    chose ``include_usage`` itself."""
    if b'"stream_options"' not in body:  # a key: it cannot be inside a string, where quotes are escaped
        # the usual case: the member goes first, and the rest of the body is left as the client wrote it
        # (copied once: a prompt may be megabytes)
        start = body.find(b"{", 0, 64)
        if (
            start >= 0
            and not body[:start].strip()
            and body[start + 1 : start + 64].lstrip()[:1] not in (b"}", b"")
        ):
            return b"".join((body[: start + 1], _INCLUDE_USAGE, memoryview(body)[start + 1 :]))
    payload = json.loads(body)
    if not isinstance(payload, dict):
        return None
    options = payload.get("stream_options")
    if options is None:
        options = payload["stream_options"] = {}
    if not isinstance(options, dict) or "include_usage" in options:
        return None
    options["include_usage"] = True
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def _speech_characters(body: bytes) -> dict[str, Any] | None:
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    text = payload.get("input") if isinstance(payload, dict) else None
    return {"input_characters": len(text)} if isinstance(text, str) else None


# -- the wrappers -------------------------------------------------------------------------------------------


def sync_stream_type(base: type) -> type:
    """A subclass of the library's ``SyncByteStream`` that passes the bytes through a watcher."""

    class WatchedStream(base):  # type: ignore[misc, valid-type]
        def __init__(self, inner: Any, watcher: Watcher) -> None:
            self._inner = inner
            self._watcher = watcher

        def __iter__(self) -> Iterator[bytes]:
            return self._watcher.pass_on(self._inner)

        def close(self) -> None:
            try:
                self._inner.close()
            finally:
                watcher = self._watcher
                if not watcher.call.ended:
                    watcher.done()
                    watcher.call.end(cut_short=not watcher.terminal)

        def __del__(self) -> None:
            # a response the application neither read to its end nor closed still ends its span
            call = self._watcher.call
            if not call.ended:
                call.end(cut_short=True)

    WatchedStream.__qualname__ = f"WatchedStream[{base.__module__}]"
    return WatchedStream


def async_stream_type(base: type) -> type:
    """A subclass of the library's ``AsyncByteStream`` that passes the bytes through a watcher."""

    class AsyncWatchedStream(base):  # type: ignore[misc, valid-type]
        def __init__(self, inner: Any, watcher: Watcher) -> None:
            self._inner = inner
            self._watcher = watcher

        def __aiter__(self) -> AsyncIterator[bytes]:
            return self._watcher.apass_on(self._inner)

        async def aclose(self) -> None:
            try:
                await self._inner.aclose()
            finally:
                watcher = self._watcher
                if not watcher.call.ended:
                    watcher.done()
                    watcher.call.end(cut_short=not watcher.terminal)

        def __del__(self) -> None:
            # a response the application neither read to its end nor closed still ends its span
            call = self._watcher.call
            if not call.ended:
                call.end(cut_short=True)

    AsyncWatchedStream.__qualname__ = f"AsyncWatchedStream[{base.__module__}]"
    return AsyncWatchedStream


def sync_wrapper(hook: Hook, stream_type: type) -> Callable[..., Any]:
    def handle_request(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        try:
            started = hook.start(args[0] if args else kwargs["request"])
        except Exception:
            swallowed("trace a request")
            started = None
        if started is None:
            return wrapped(*args, **kwargs)
        call, strip = started
        try:
            response = wrapped(*args, **kwargs)
        except BaseException as exc:
            call.end(error_type=error_type(exc))
            raise
        try:
            hook.watch(response, call, strip, stream_type)
        except Exception:
            swallowed("watch a response")
            call.end()
        return response

    return handle_request


def async_wrapper(hook: Hook, stream_type: type) -> Callable[..., Any]:
    async def handle_async_request(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        try:
            started = hook.start(args[0] if args else kwargs["request"])
        except Exception:
            swallowed("trace a request")
            started = None
        if started is None:
            return await wrapped(*args, **kwargs)
        call, strip = started
        try:
            response = await wrapped(*args, **kwargs)
        except BaseException as exc:
            call.end(error_type=error_type(exc))
            raise
        try:
            hook.watch(response, call, strip, stream_type)
        except Exception:
            swallowed("watch a response")
            call.end()
        return response

    return handle_async_request
