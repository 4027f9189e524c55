"""Attribution: who and what each LLM call is for, held in OpenTelemetry context and propagated as baggage.

``attribute(team=..., feature=...)`` is a context manager and a decorator (sync and async). Scopes nest,
the inner value winning for each field. The merged attribution lives in the context under a private key
(read once per call, no parsing) and, for the services the application calls, in W3C baggage under the
same ``costspan.*`` names the collector's attribute processor reads, so a downstream service's LLM calls
carry it too. Defaults come from ``COSTSPAN_*`` environment variables (``COSTSPAN_TEAM=search``) and from
``costspan.*`` entries of ``OTEL_RESOURCE_ATTRIBUTES``.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType, TracebackType
from typing import Any, TypeVar, cast

from opentelemetry import baggage, context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from costspan.semconv import attributes as A

F = TypeVar("F", bound=Callable[..., Any])

# Field of attribute() -> the span attribute (and baggage key) the collector reads.
FIELDS: Mapping[str, str] = MappingProxyType(
    {
        "feature": A.COSTSPAN_FEATURE,
        "team": A.COSTSPAN_TEAM,
        "customer_id": A.COSTSPAN_CUSTOMER_ID,
        "user_id": A.COSTSPAN_USER_ID,
        "agent": A.COSTSPAN_AGENT,
        "step": A.COSTSPAN_STEP,
        "prompt_key": A.COSTSPAN_PROMPT_KEY,
        "prompt_version": A.COSTSPAN_PROMPT_VERSION,
        "environment": A.COSTSPAN_ENVIRONMENT,
    }
)
_KEYS = frozenset(FIELDS.values())
_CONTEXT_KEY = context.create_key("costspan-attribution")
_EMPTY: Mapping[str, str] = MappingProxyType({})


def _env_defaults() -> dict[str, str]:
    """``costspan.*`` entries of ``OTEL_RESOURCE_ATTRIBUTES``, then ``COSTSPAN_<FIELD>`` (which win)."""
    out: dict[str, str] = {}
    for entry in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "").split(","):
        key, sep, value = entry.partition("=")
        key, value = key.strip(), value.strip()
        if sep and value and (key in _KEYS or key.startswith(A.COSTSPAN_TAG_PREFIX)):
            out[key] = value
    for name, key in FIELDS.items():
        variable = os.environ.get("COSTSPAN_" + name.upper())
        if variable:
            out[key] = variable
    return out


_defaults: Mapping[str, str] = MappingProxyType(_env_defaults())


def reload_defaults() -> None:
    """Read the environment's defaults again (the instrumentor does, when it starts)."""
    global _defaults
    _defaults = MappingProxyType(_env_defaults())


def current_attribution(ctx: context.Context | None = None) -> Mapping[str, str]:
    """The span attributes of the attribution in effect: scopes of this process, else baggage a caller
    propagated, over the environment's defaults."""
    found = context.get_value(_CONTEXT_KEY, ctx)
    if found is not None:
        return cast(Mapping[str, str], found)
    entries = baggage.get_all(ctx)
    if entries:
        propagated = {
            k: str(v) for k, v in entries.items() if k in _KEYS or k.startswith(A.COSTSPAN_TAG_PREFIX)
        }
        if propagated:
            return {**_defaults, **propagated}
    return _defaults or _EMPTY


def _attributes_of(fields: Mapping[str, Any], tags: Mapping[str, Any] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in fields.items():
        if value is not None:
            out[FIELDS[name]] = str(value)
    for tag, value in (tags or {}).items():
        if value is not None:
            out[A.COSTSPAN_TAG_PREFIX + str(tag)] = str(value)
    return out


class attribute:
    """Attribute every LLM call made inside to a team, feature, customer ...

    As a context manager (``with`` or ``async with``) or a decorator of a function or coroutine function.
    Values nest: an inner scope's value wins for its field; ``None`` leaves a field as the outer scope has
    it. ``tags`` adds free-form ``costspan.tag.*`` labels.
    """

    def __init__(
        self,
        *,
        feature: str | None = None,
        team: str | None = None,
        customer_id: str | None = None,
        user_id: str | None = None,
        agent: str | None = None,
        step: str | None = None,
        prompt_key: str | None = None,
        prompt_version: str | None = None,
        environment: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        fields = {
            "feature": feature,
            "team": team,
            "customer_id": customer_id,
            "user_id": user_id,
            "agent": agent,
            "step": step,
            "prompt_key": prompt_key,
            "prompt_version": prompt_version,
            "environment": environment,
        }
        self._attributes = _attributes_of(fields, tags)
        self._tokens: list[object] = []

    @property
    def attributes(self) -> Mapping[str, str]:
        """This scope's own span attributes (without the enclosing scopes')."""
        return MappingProxyType(self._attributes)

    def _enter(self) -> None:
        merged = {**current_attribution(), **self._attributes}
        ctx = context.set_value(_CONTEXT_KEY, MappingProxyType(merged))
        for key, value in self._attributes.items():
            ctx = baggage.set_baggage(key, value, ctx)
        self._tokens.append(context.attach(ctx))

    def _exit(self) -> None:
        context.detach(self._tokens.pop())  # type: ignore[arg-type]

    def __enter__(self) -> attribute:
        self._enter()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._exit()

    async def __aenter__(self) -> attribute:
        self._enter()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._exit()

    def __call__(self, func: F) -> F:
        attributes = self._attributes

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                with _scope(attributes):
                    return await func(*args, **kwargs)

            return cast(F, run_async)

        if inspect.isasyncgenfunction(func) or inspect.isgeneratorfunction(func):
            raise TypeError("attribute() decorates functions and coroutine functions, not generators")

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            with _scope(attributes):
                return func(*args, **kwargs)

        return cast(F, run)


@contextmanager
def _scope(attributes: Mapping[str, str]) -> Iterator[None]:
    # a fresh scope per call: a decorated function may run in several threads or tasks at once
    scope = attribute()
    scope._attributes = dict(attributes)
    with scope:
        yield


# -- stamping other instrumentations' spans ---------------------------------------------------------------

# Instrumentation scopes of GenAI instrumentations, by prefix: their spans started inside an attribute()
# scope get its attributes too, so that a call another instrumentation traces is attributed the same way.
_GENAI_SCOPES = (
    A.ANTHROPIC_SCOPE,
    "openinference.instrumentation",
    "opentelemetry.instrumentation.openai",
    "opentelemetry.instrumentation.anthropic",
    "opentelemetry.instrumentation.genai",
    "opentelemetry.instrumentation.google_genai",
    "opentelemetry.instrumentation.vertexai",
    "opentelemetry.instrumentation.bedrock",
    "opentelemetry.instrumentation.langchain",
    "opentelemetry.util.genai",
    "traceloop",
    "openlit",
    "logfire",
    "langfuse",
)
_GENAI_KEY_PREFIXES = ("gen_ai.", "llm.", "openinference.")


def is_genai_span(span: ReadableSpan) -> bool:
    scope = span.instrumentation_scope
    if scope is not None and scope.name.startswith(_GENAI_SCOPES):
        return True
    attributes = span.attributes
    return attributes is not None and any(key.startswith(_GENAI_KEY_PREFIXES) for key in attributes)


class AttributionSpanProcessor(SpanProcessor):
    """Stamps the attribution in effect on GenAI spans other instrumentations start (costspan's own
    spans carry it from the start)."""

    def __init__(self) -> None:
        self.enabled = True

    def on_start(self, span: Span, parent_context: context.Context | None = None) -> None:
        if not self.enabled:
            return
        try:
            scope = span.instrumentation_scope
            if scope is not None and scope.name == "costspan.instrumentation":
                return  # first: the test costs less than reading the attribution
            attribution = current_attribution(parent_context)
            if not attribution:
                return
            if is_genai_span(span):
                span.set_attributes(attribution)
        except Exception:  # never break the application's tracing
            return

    def on_end(self, span: ReadableSpan) -> None:
        return None

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
