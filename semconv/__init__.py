"""costspan.semconv: GenAI attribute names of every instrumentation dialect, and the canonical call record.

``to_call`` turns a span of any dialect (OpenTelemetry GenAI conventions old and new, OpenLLMetry,
OpenInference, OpenLIT, Logfire and pydantic-ai, Langfuse, the AI SDK's ai.* spans, the anthropic SDK's own
spans, plain HTTP client spans to a provider) into a :class:`GenAICall` in the canonical arithmetic.
"""

from . import attributes
from .dialects import DIALECTS, detect, to_call
from .enrich import cost_attributes
from .providers import (
    ANTHROPIC_COMPATIBLE,
    OPENAI_COMPATIBLE,
    SELF_HOSTED,
    canonical_provider,
    provider_for_host,
    provider_for_model,
    provider_for_url,
)
from .record import AGENT, LLM, OTHER, RETRIEVAL, TOOL, WORKFLOW, GenAICall

__all__ = [
    "AGENT",
    "ANTHROPIC_COMPATIBLE",
    "DIALECTS",
    "LLM",
    "OPENAI_COMPATIBLE",
    "OTHER",
    "RETRIEVAL",
    "SELF_HOSTED",
    "TOOL",
    "WORKFLOW",
    "GenAICall",
    "attributes",
    "canonical_provider",
    "cost_attributes",
    "detect",
    "provider_for_host",
    "provider_for_model",
    "provider_for_url",
    "to_call",
]
