"""The botocore hook: boto3's Amazon Bedrock Runtime calls (Converse, ConverseStream, InvokeModel,
InvokeModelWithResponseStream) become the same GenAI spans and metrics as the calls the HTTP transports see.

botocore sends over urllib3, below no httpx transport, so it has a hook of its own. costspan wraps
``BaseClient._make_api_call`` with wrapt (as opentelemetry-instrumentation-botocore does) rather than
registering ``before-call`` / ``after-call`` handlers on botocore's event system, because:

- a client takes a copy of its session's event emitter when it is made, so handlers registered when the
  instrumentor starts would miss every client made before (a module-level client, boto3's default session's);
  the wrapped method sees every client of every session, made before or after;
- it sees the call whole: the parameters as the application passed them (``modelId``), the parsed result
  whose stream or body the application is about to read, and the exception the application will get;
- it sits outside botocore's retries, so a call is one span however many attempts it took (an attempt that
  was throttled or failed returned no usage to record).

An application's other AWS calls pay one dictionary lookup of the operation's name.

The application gets the very objects botocore made. A stream (``EventStream``) or body (``StreamingBody``)
to watch has its class set to a subclass here that hands every event or byte on as it came, after a watcher
has looked at it: the same object, state and type (``isinstance`` holds), with nothing copied or wrapped.
The call ends, and its span is made, when the stream or body ends, is closed, fails, or is dropped unread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from botocore.eventstream import EventStream
from botocore.exceptions import ClientError
from botocore.response import StreamingBody
from opentelemetry import context
from opentelemetry.trace import Tracer

from ._bedrock import (
    converse_usage,
    header_usage,
    read_converse_event,
    read_invoke_body,
    read_stream_chunk,
)
from ._call import Call, error_type, start_call
from ._endpoints import BEDROCK, CHAT, EMBEDDINGS, TEXT_COMPLETION, Endpoint
from ._failures import swallowed
from ._metrics import ClientMetrics
from ._others import bedrock_traced_elsewhere
from ._response import MAX_BODY_BYTES  # a larger body is handed on unread, as the transport hook does

SERVICE = "bedrock-runtime"
PROVIDER = "aws.bedrock"
CLOUD_REGION = "cloud.region"
# operation -> (the endpoint's api, whether its response is a stream)
_APIS: Mapping[str, tuple[str, bool]] = {
    "Converse": ("converse", False),
    "ConverseStream": ("converse-stream", True),
    "InvokeModel": ("invoke", False),
    "InvokeModelWithResponseStream": ("invoke-with-response-stream", True),
}
_ENDPOINTS: dict[tuple[str, str], Endpoint] = {}
_ADDRESSES: dict[str, tuple[str, int | None]] = {}


def _endpoint(api: str, streaming: bool, model: str | None) -> Endpoint:
    operation = CHAT
    if api.startswith("invoke") and model:
        # InvokeModel serves every model family: an embeddings model, and Titan's text completions
        lowered = model.lower()
        if "embed" in lowered:
            operation = EMBEDDINGS
        elif "titan-text" in lowered:
            operation = TEXT_COMPLETION
    key = (api, operation)
    found = _ENDPOINTS.get(key)
    if found is None:
        found = _ENDPOINTS[key] = Endpoint(PROVIDER, operation, BEDROCK, api, None, streaming)
    return found


def _address(endpoint_url: str) -> tuple[str, int | None]:
    """Host and port of a client's endpoint (``bedrock-runtime.<region>.amazonaws.com``, or the one the
    application set); the port only when the URL names one, as the transport hook reports it."""
    found = _ADDRESSES.get(endpoint_url)
    if found is None:
        parts = urlsplit(endpoint_url)
        found = (parts.hostname or "", parts.port)
        if len(_ADDRESSES) < 256:
            _ADDRESSES[endpoint_url] = found
    return found


class BotocoreHook:
    """What the ``_make_api_call`` wrapper shares: the tracer and the metrics."""

    def __init__(self, tracer: Tracer, metrics: ClientMetrics | None) -> None:
        self.tracer = tracer
        self.metrics = metrics

    def start(self, client: Any, operation_name: Any, params: Any) -> Call | None:
        """The call a Bedrock Runtime operation makes; ``None`` for any other AWS call, or for one another
        instrumentation traces."""
        api = _APIS.get(operation_name)
        if api is None:
            return None
        meta = client.meta
        if meta.service_model.service_name != SERVICE:
            return None
        parent = context.get_current()
        if bedrock_traced_elsewhere(parent):
            return None
        model = params.get("modelId") if isinstance(params, dict) else None
        if not isinstance(model, str) or not model:
            model = None
        name, streaming = api
        host, port = _address(meta.endpoint_url)
        region = meta.region_name
        return start_call(
            _endpoint(name, streaming, model),
            model,
            streaming,
            host,
            port,
            tracer=self.tracer,
            metrics=self.metrics,
            parent=parent,
            extra={CLOUD_REGION: region} if region else None,
        )

    def watch(self, call: Call, result: Any) -> None:
        """Reads what the result says at once, and watches its stream or body; the call ends with them."""
        if not isinstance(result, dict):
            call.end()
            return
        api = call.endpoint.api
        if api == "converse":
            converse_usage(call, result.get("usage"))
            call.end()
        elif api == "converse-stream":
            _watch_events(call, result.get("stream"), read_converse_event)
        else:
            metadata = result.get("ResponseMetadata")
            headers = metadata.get("HTTPHeaders") if isinstance(metadata, dict) else None
            known = header_usage(call, headers) if isinstance(headers, dict) else False
            body: Any = result.get("body")
            if api == "invoke" and type(body) is StreamingBody:
                body._costspan_watcher = BodyWatcher(call, known)
                body.__class__ = WatchedBody
            elif api == "invoke-with-response-stream":
                _watch_events(call, body, _read_chunk_event)
            else:
                call.end()


def _read_chunk_event(call: Call, event: Any) -> bool:
    chunk = event.get("chunk") if isinstance(event, dict) else None
    data = chunk.get("bytes") if isinstance(chunk, dict) else None
    return read_stream_chunk(call, data) if isinstance(data, bytes) else False


def _watch_events(call: Call, stream: Any, read: Callable[[Call, Any], bool]) -> None:
    # the exact type: a stream another instrumentation already wrapped is left as it is
    if type(stream) is not EventStream:
        call.end()
        return
    stream._costspan_watcher = EventWatcher(call, read)
    stream.__class__ = WatchedEvents


# -- watchers ------------------------------------------------------------------------------------------------


class EventWatcher:
    """Reads usage from the events of one response stream as the application iterates them."""

    __slots__ = ("call", "failed", "read", "started", "terminal")

    def __init__(self, call: Call, read: Callable[[Call, Any], bool]) -> None:
        self.call = call
        self.read = read  # one event -> whether it was the stream's last
        self.failed = False
        self.started = False
        self.terminal = False

    def pass_on(self, events: Iterator[Any]) -> Iterator[Any]:
        """``events`` handed on as they come; the call ends with them (cut short before the last event)."""
        call = self.call
        try:
            for event in events:
                self.see(event)
                yield event
        except GeneratorExit:  # the application stopped iterating
            call.end(cut_short=not self.terminal)
            raise
        except BaseException as exc:  # the stream failed: an exception event, a broken connection
            call.end(error_type=error_type(exc), cut_short=True)
            raise
        call.end()

    def see(self, event: Any) -> None:
        if self.failed:
            return
        try:
            if not self.started:
                self.started = True
                self.call.first_chunk()
            if self.read(self.call, event):
                self.terminal = True
        except Exception:  # never break the application: the stream is handed on unread
            self.failed = True
            swallowed("read a Bedrock stream event")


class BodyWatcher:
    """Reads an InvokeModel body as the application reads it; parsed once, at its end."""

    __slots__ = ("call", "chunks", "failed", "size", "usage_known")

    def __init__(self, call: Call, usage_known: bool) -> None:
        self.call = call
        self.usage_known = usage_known  # from the response headers
        self.chunks: list[bytes] = []
        self.size = 0
        self.failed = False

    def feed(self, chunk: bytes, at_end: bool) -> None:
        if self.call.ended:
            return
        try:
            if chunk and not self.failed:
                self.size += len(chunk)
                if self.size <= MAX_BODY_BYTES:
                    self.chunks.append(chunk)
            if at_end:
                if not self.failed and 0 < self.size <= MAX_BODY_BYTES:
                    read_invoke_body(self.call, b"".join(self.chunks), self.usage_known)
                self.chunks = []
                self.call.end()
        except Exception:  # never break the application
            self.failed = True
            self.chunks = []
            swallowed("read a Bedrock response body")
            if at_end:
                self.call.end()

    def closed(self) -> None:
        """The application closed the body, or dropped it, before its end."""
        self.chunks = []
        self.call.end(cut_short=True)

    def broken(self, exc: BaseException) -> None:
        self.chunks = []
        self.call.end(error_type=error_type(exc), cut_short=True)


# -- the classes a watched stream or body takes --------------------------------------------------------------


class WatchedEvents(EventStream):
    """An ``EventStream`` whose events a watcher sees as they pass (instances are botocore's own, their class
    set to this one)."""

    _costspan_watcher: EventWatcher

    def __iter__(self) -> Iterator[Any]:
        return self._costspan_watcher.pass_on(super().__iter__())

    def close(self) -> None:
        try:
            super().close()
        finally:
            call = self._costspan_watcher.call
            if not call.ended:
                call.end(cut_short=not self._costspan_watcher.terminal)

    def __del__(self) -> None:
        # a stream the application neither read to its end nor closed still ends its span
        watcher = getattr(self, "_costspan_watcher", None)
        if watcher is not None and not watcher.call.ended:
            watcher.call.end(cut_short=True)


class WatchedBody(StreamingBody):
    """A ``StreamingBody`` whose bytes a watcher sees as the application reads them (instances are botocore's
    own, their class set to this one). Reading through ``__enter__``'s raw stream, or ``readlines``, goes
    past it: the call then ends when the body is closed or dropped, with the usage of the headers."""

    _costspan_watcher: BodyWatcher

    def _at_end(self, chunk: bytes, asked: int | None) -> bool:
        if asked is None or (not chunk and asked > 0):
            return True
        length = self._content_length
        return length is not None and self._amount_read >= int(length)

    def read(self, amt: int | None = None) -> bytes:
        try:
            chunk = super().read(amt)
        except BaseException as exc:
            self._costspan_watcher.broken(exc)
            raise
        try:
            at_end = self._at_end(chunk, amt)
        except Exception:
            at_end = False
        self._costspan_watcher.feed(chunk, at_end)
        return chunk

    def readinto(self, b: Any) -> int:
        try:
            count = super().readinto(b)
        except BaseException as exc:
            self._costspan_watcher.broken(exc)
            raise
        try:
            chunk = bytes(memoryview(b)[:count])
            at_end = self._at_end(chunk, len(b))
        except Exception:
            chunk, at_end = b"", False
        self._costspan_watcher.feed(chunk, at_end)
        return count

    def close(self) -> None:
        try:
            super().close()
        finally:
            if not self._costspan_watcher.call.ended:
                self._costspan_watcher.closed()

    def __exit__(self, *exc_info: Any) -> None:
        try:
            super().__exit__(*exc_info)
        finally:
            if not self._costspan_watcher.call.ended:
                self._costspan_watcher.closed()

    def __del__(self) -> None:
        # as StreamingBody's own: the raw stream is not closed here
        watcher = getattr(self, "_costspan_watcher", None)
        if watcher is not None and not watcher.call.ended:
            watcher.closed()


# -- the wrapper ---------------------------------------------------------------------------------------------


def _failure(exc: BaseException) -> str:
    """``error.type`` of a failed call: the HTTP status of an error response (as the transport hook writes
    it), else the exception's class."""
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if isinstance(status, int):
            return str(status)
    return error_type(exc)


def api_call_wrapper(hook: BotocoreHook) -> Callable[..., Any]:
    def _make_api_call(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        try:
            operation = args[0] if args else kwargs.get("operation_name")
            call = None
            if operation in _APIS:
                params = args[1] if len(args) > 1 else kwargs.get("api_params")
                call = hook.start(instance, operation, params)
        except Exception:
            swallowed("trace a Bedrock call")
            call = None
        if call is None:
            return wrapped(*args, **kwargs)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            try:
                call.end(error_type=_failure(exc))
            except Exception:
                swallowed("record a failed Bedrock call")
            raise
        try:
            hook.watch(call, result)
        except Exception:
            swallowed("watch a Bedrock response")
            call.end()
        return result

    return _make_api_call
