"""Other GenAI instrumentations: is this HTTP request (or boto3 Bedrock call) one that one of them already
traces?

Two signs, checked in this order:

- the current span is another instrumentation's span of an LLM call: the anthropic SDK's own span (scope
  ``com.anthropic.sdk.python``), or a span whose attributes name an LLM operation (OpenTelemetry GenAI
  ``gen_ai.operation.name``, OpenLLMetry ``llm.request.type``, OpenInference ``openinference.span.kind``);
- an SDK-level instrumentor of the provider's SDK is switched on (OpenLLMetry, OpenInference, the official
  OpenTelemetry GenAI packages) and the request comes from that SDK (its ``x-stainless-lang`` header); for a
  boto3 Bedrock Runtime call, a Bedrock instrumentor is switched on (OpenLLMetry's, OpenInference's, or
  opentelemetry-instrumentation-botocore with its bedrock-runtime extension), every call of which it sees.

costspan then leaves the call to that instrumentation: no second span, no metrics, the request's bytes as
the application built them. One exception: an OpenAI chat completions stream without ``include_usage``,
whose usage no instrumentation could otherwise see. costspan asks for the usage as usual and writes the
usage counts on the other instrumentation's span, when that span is the current one and has none; when
it is not at hand, costspan traces the stream itself, and the collector's dedupe keeps the one record with
usage of the two nested spans.

An agent or workflow span (``invoke_agent``, OpenInference ``AGENT``) is not a call, so calls made inside
one are traced as usual.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context

from costspan.semconv import attributes as A

from ._endpoints import ANTHROPIC, BEDROCK, OPENAI

_CALL_OPERATIONS = frozenset(
    {"chat", "text_completion", "generate_content", "embeddings", "completion", "embedding", "responses"}
)
_OPENINFERENCE_CALLS = frozenset({"LLM", "EMBEDDING"})
# (module, class) of instrumentors that trace the SDK of each wire format
_SDK_INSTRUMENTORS: Mapping[str, tuple[tuple[str, str], ...]] = {
    OPENAI: (
        ("opentelemetry.instrumentation.openai", "OpenAIInstrumentor"),  # OpenLLMetry
        ("openinference.instrumentation.openai", "OpenAIInstrumentor"),
        ("opentelemetry.instrumentation.genai.openai", "OpenAIInstrumentor"),
        ("opentelemetry.instrumentation.openai_v2", "OpenAIInstrumentor"),
    ),
    ANTHROPIC: (
        ("opentelemetry.instrumentation.anthropic", "AnthropicInstrumentor"),
        ("openinference.instrumentation.anthropic", "AnthropicInstrumentor"),
        ("opentelemetry.instrumentation.genai.anthropic", "AnthropicInstrumentor"),
    ),
    # boto3's Bedrock Runtime calls (see _botocore)
    BEDROCK: (
        ("opentelemetry.instrumentation.bedrock", "BedrockInstrumentor"),  # OpenLLMetry
        ("openinference.instrumentation.bedrock", "BedrockInstrumentor"),
        ("opentelemetry.instrumentation.botocore", "BotocoreInstrumentor"),  # with its bedrock extension
    ),
}


def is_call_span(span: Any) -> bool:
    """Whether ``span`` is another instrumentation's span of one LLM call."""
    scope = getattr(span, "instrumentation_scope", None)
    name = getattr(scope, "name", None)
    if name == A.ANTHROPIC_SCOPE:
        return True
    if name is not None and name.startswith("costspan"):
        return False
    attributes = getattr(span, "attributes", None)
    if not attributes:
        return False
    operation = attributes.get(A.GEN_AI_OPERATION_NAME)
    if operation is not None:
        return str(operation).lower() in _CALL_OPERATIONS
    if A.LLM_REQUEST_TYPE in attributes:
        return str(attributes[A.LLM_REQUEST_TYPE]).lower() in _CALL_OPERATIONS
    kind = attributes.get(A.OPENINFERENCE_SPAN_KIND)
    if kind is not None:
        return kind in _OPENINFERENCE_CALLS
    return False


# wire format -> the number of loaded modules when none of its SDK instrumentors was among them: the usual
# answer, given again without looking until a module is imported
_NONE_LOADED_AT: dict[str, int] = {}


def sdk_instrumented(wire_format: str) -> bool:
    loaded = len(sys.modules)
    if _NONE_LOADED_AT.get(wire_format) == loaded:
        return False
    any_loaded = False
    for module_name, class_name in _SDK_INSTRUMENTORS.get(wire_format, ()):
        module = sys.modules.get(module_name)
        if module is None:
            continue
        any_loaded = True
        instance = getattr(getattr(module, class_name, None), "_instance", None)
        if (
            instance is not None
            and getattr(instance, "_is_instrumented_by_opentelemetry", False)
            and _makes_genai_spans(module_name)
        ):
            return True
    if not any_loaded:
        _NONE_LOADED_AT[wire_format] = loaded
    return False


def _makes_genai_spans(module_name: str) -> bool:
    """opentelemetry-instrumentation-botocore traces every AWS call, and Bedrock's as GenAI spans with usage
    only since it has its bedrock-runtime extension; the other instrumentors trace GenAI calls alone."""
    if module_name != "opentelemetry.instrumentation.botocore":
        return True
    extensions = sys.modules.get("opentelemetry.instrumentation.botocore.extensions")
    # the extensions' table, by its name in current releases and in earlier ones
    table = getattr(extensions, "_BOTOCORE_EXTENSIONS", None) or getattr(extensions, "_KNOWN_EXTENSIONS", ())
    return "bedrock-runtime" in table


def traced_elsewhere(wire_format: str, headers: Any, ctx: Context | None = None) -> Any:
    """The other instrumentation's span of this call (``True`` when it is not at hand), or ``None``."""
    span = trace.get_current_span(ctx)
    if span.is_recording() and is_call_span(span):
        return span
    # the header test second: httpx's Headers answers `in` by lowering every name
    if sdk_instrumented(wire_format) and "x-stainless-lang" in headers:
        return True
    return None


def bedrock_traced_elsewhere(ctx: Context) -> bool:
    """Whether another instrumentation traces this boto3 Bedrock Runtime call: the current span is another
    instrumentation's span of an LLM call, or a Bedrock instrumentor is on (every call it sees comes from
    boto3, so no header is needed to tell)."""
    span = trace.get_current_span(ctx)
    if span.is_recording() and is_call_span(span):
        return True
    return sdk_instrumented(BEDROCK)
