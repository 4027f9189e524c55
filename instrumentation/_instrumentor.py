"""``CostspanInstrumentor``: LLM calls over httpx and httpx2, and boto3's Bedrock Runtime calls, become GenAI
spans and metrics.

The design: costspan wraps the transports' ``handle_request`` / ``handle_async_request`` (``HTTPTransport``
and ``AsyncHTTPTransport`` of both libraries) rather than the clients' ``send``, because the transport is
where the bytes are: the request body is final (so ``include_usage`` can be added) and the response stream
is the one the client will read (so usage is read as the bytes pass, without buffering). It works beside
opentelemetry-instrumentation-httpx, which wraps the same methods for HTTP spans: both use ``wrapt``, so
either can be switched on or off first. Every SDK that talks HTTP through httpx (openai, anthropic,
mistralai, groq, langchain's clients, LiteLLM ...) is covered at once, over HTTP/1.1 and HTTP/2 alike.
botocore sends over urllib3, so boto3's Bedrock calls have a hook of their own (``BaseClient._make_api_call``,
see _botocore), set when the application imports botocore, which makes its calls with the same code (_call).

Options of ``instrument()``, each with an environment variable for ``opentelemetry-instrument``:

- ``tracer_provider``, ``meter_provider``: as every instrumentor takes them (default: the global ones);
- ``endpoints``: ``{base_url: provider}`` of servers to treat as LLM APIs beyond the known hosts (a vLLM
  server, an internal gateway); ``COSTSPAN_LLM_ENDPOINTS="openai=http://gateway:8080/v1,..."``. The
  provider decides the wire format: ``anthropic``, ``gcp.gemini``, ``aws.bedrock``, ``ollama``, and any other
  name means OpenAI-compatible;
- ``inject_stream_usage``: add ``stream_options.include_usage`` to OpenAI chat completions streams that lack
  it (default on; ``COSTSPAN_INJECT_STREAM_USAGE=false`` turns it off).
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Callable, Collection
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from opentelemetry import metrics, trace
from opentelemetry.instrumentation.dependencies import DependencyConflict, get_dependency_conflicts
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.instrumentation.utils import unwrap
from wrapt import register_post_import_hook, wrap_function_wrapper

from . import _attribution, _record
from ._endpoints import EndpointTable
from ._failures import swallowed
from ._metrics import ClientMetrics
from ._transport import SCOPE, Hook, async_stream_type, async_wrapper, sync_stream_type, sync_wrapper
from .package import _instruments, _instruments_any

logger = logging.getLogger("costspan.instrumentation")

__version__ = "0.1.0"
_LIBRARIES = ("httpx", "httpx2")
_BOTOCORE_CLIENT = "botocore.client"
INJECT_STREAM_USAGE_ENV = "COSTSPAN_INJECT_STREAM_USAGE"


_T = TypeVar("_T")

# One of each per provider and meter, kept over uninstrument() and instrument() again: neither a span
# processor nor an instrument can be taken back from an SDK provider.
_PROCESSORS: WeakKeyDictionary[Any, _attribution.AttributionSpanProcessor] = WeakKeyDictionary()
_METRICS: WeakKeyDictionary[Any, ClientMetrics] = WeakKeyDictionary()


def _one_per(cache: WeakKeyDictionary[Any, _T], owner: Any, make: Callable[[Any], _T]) -> _T:
    """What ``make(owner)`` made for ``owner`` the first time; an owner that cannot be weakly referenced
    gets a new one each time."""
    try:
        made = cache.get(owner)
        if made is None:
            made = cache[owner] = make(owner)
    except TypeError:
        made = make(owner)
    return made


def _metrics_of(meter: Any) -> ClientMetrics:
    return _one_per(_METRICS, meter, ClientMetrics)


def _processor_of(provider: Any) -> _attribution.AttributionSpanProcessor:
    return _one_per(_PROCESSORS, provider, _add_processor)


def _add_processor(provider: Any) -> _attribution.AttributionSpanProcessor:
    processor = _attribution.AttributionSpanProcessor()
    provider.add_span_processor(processor)
    return processor


class CostspanInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Traces LLM calls made over httpx and httpx2, and boto3's Bedrock Runtime calls:
    ``CostspanInstrumentor().instrument()``."""

    # class attributes, not __init__: BaseInstrumentor is a singleton whose __init__ runs at every call
    _wrapped: tuple[tuple[type, str], ...] = ()
    _processor: _attribution.AttributionSpanProcessor | None = None
    # boto3's Bedrock calls: the tracer and metrics while instrumented; the import hook, once a process
    _botocore: tuple[trace.Tracer, ClientMetrics] | None = None
    _botocore_hooked = False

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _check_dependency_conflicts(self) -> DependencyConflict | None:
        # either HTTP client is enough (the distribution's `instruments-any` extra says the same)
        return get_dependency_conflicts(_instruments, _instruments_any)

    def _instrument(self, **kwargs: Any) -> None:
        tracer_provider = kwargs.get("tracer_provider")
        meter_provider = kwargs.get("meter_provider")
        tracer = trace.get_tracer(SCOPE, __version__, tracer_provider)
        meter = metrics.get_meter(SCOPE, __version__, meter_provider)
        endpoints = kwargs.get("endpoints")
        inject = kwargs.get("inject_stream_usage")
        if inject is None:
            inject = os.environ.get(INJECT_STREAM_USAGE_ENV, "true").strip().lower() not in (
                "false",
                "0",
                "no",
            )
        client_metrics = _metrics_of(meter)
        hook = Hook(tracer, client_metrics, EndpointTable.from_env(endpoints), bool(inject))
        _attribution.reload_defaults()
        _record.use_tracer(tracer)
        for name in _LIBRARIES:
            try:
                library = importlib.import_module(name)
            except ImportError:
                continue
            sync_type = sync_stream_type(library.SyncByteStream)
            async_type = async_stream_type(library.AsyncByteStream)
            wrap_function_wrapper(library.HTTPTransport, "handle_request", sync_wrapper(hook, sync_type))
            wrap_function_wrapper(
                library.AsyncHTTPTransport, "handle_async_request", async_wrapper(hook, async_type)
            )
            self._wrapped += (
                (library.HTTPTransport, "handle_request"),
                (library.AsyncHTTPTransport, "handle_async_request"),
            )
        self._instrument_botocore(tracer, client_metrics)
        provider = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
        if hasattr(provider, "add_span_processor"):
            # Other instrumentations' GenAI spans get the attribution too. An SDK tracer provider cannot drop
            # a span processor, so one is added per provider and switched off and on again.
            processor = _processor_of(provider)
            processor.enabled = True
            self._processor = processor

    def _instrument_botocore(self, tracer: trace.Tracer, client_metrics: ClientMetrics) -> None:
        """botocore is wrapped when the application imports it, or now if it has: importing it here would cost
        every application that has boto3 installed some hundreds of milliseconds of start-up, used or not."""
        CostspanInstrumentor._botocore = (tracer, client_metrics)
        if not CostspanInstrumentor._botocore_hooked:
            CostspanInstrumentor._botocore_hooked = True
            register_post_import_hook(_wrap_botocore, _BOTOCORE_CLIENT)  # runs at once if imported already
        elif _BOTOCORE_CLIENT in sys.modules:
            _wrap_botocore(sys.modules[_BOTOCORE_CLIENT])

    def _uninstrument(self, **kwargs: Any) -> None:
        CostspanInstrumentor._botocore = None
        for cls, method in self._wrapped:
            unwrap(cls, method)
        self._wrapped = ()
        if self._processor is not None:
            self._processor.enabled = False
            self._processor = None
        _record.use_tracer(None)


def _wrap_botocore(module: Any) -> None:
    """Wraps ``botocore.client.BaseClient._make_api_call`` for the instrumentor, if it is on (run when the
    application imports botocore: a failure here must not fail that import)."""
    instrumentor = CostspanInstrumentor()
    started = CostspanInstrumentor._botocore
    try:
        base = module.BaseClient
        if started is None or (base, "_make_api_call") in instrumentor._wrapped:
            return
        from ._botocore import BotocoreHook, api_call_wrapper

        wrap_function_wrapper(base, "_make_api_call", api_call_wrapper(BotocoreHook(*started)))
        instrumentor._wrapped += ((base, "_make_api_call"),)
    except Exception:
        swallowed("instrument botocore")
