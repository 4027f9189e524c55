"""An application traced by another GenAI instrumentation and by costspan at once; prints its spans as JSON.

    python -m tests.instrumentation.apps.beside_other INSTRUMENTATION BASE_URL

Run in its own process: instrumentations patch SDK classes for the life of a process, and the anthropic
SDK's own tracing starts with the global tracer provider.
"""

from __future__ import annotations

import importlib
import json
import sys

import anthropic
import openai
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from costspan.instrumentation import CostspanInstrumentor, attribute

INSTRUMENTORS = {
    "openllmetry_openai": "opentelemetry.instrumentation.openai:OpenAIInstrumentor",
    "openinference_openai": "openinference.instrumentation.openai:OpenAIInstrumentor",
    "otel_genai_openai": "opentelemetry.instrumentation.genai.openai:OpenAIInstrumentor",
    "openllmetry_anthropic": "opentelemetry.instrumentation.anthropic:AnthropicInstrumentor",
    "anthropic_native": None,  # the anthropic SDK's own spans, on once a global tracer provider is set
}
MESSAGES = [{"role": "user", "content": "Summarise invoice INV-0042 from the cache."}]


def main(name: str, base_url: str) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    target = INSTRUMENTORS[name]
    if target is not None:
        module_name, class_name = target.split(":")
        getattr(importlib.import_module(module_name), class_name)().instrument(tracer_provider=provider)
    CostspanInstrumentor().instrument(
        tracer_provider=provider,
        endpoints={f"{base_url}/v1": "openai", f"{base_url}/v1/messages": "anthropic"},
    )
    with attribute(team="billing", feature="invoices"):
        if name.endswith("openai"):
            client = openai.OpenAI(base_url=f"{base_url}/v1", api_key="test", max_retries=0)
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            for _ in client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True):
                pass
        else:
            client = anthropic.Anthropic(base_url=base_url, api_key="test", max_retries=0)
            client.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=MESSAGES)
            with client.messages.stream(model="claude-haiku-4-5", max_tokens=64, messages=MESSAGES) as stream:
                stream.until_done()
    spans = [
        {
            "trace_id": f"{s.context.trace_id:032x}",
            "span_id": f"{s.context.span_id:016x}",
            "parent_span_id": f"{s.parent.span_id:016x}" if s.parent else None,
            "name": s.name,
            "start_ns": s.start_time,
            "end_ns": s.end_time,
            "kind": s.kind.value + 1,  # the SDK counts from 0 (internal), OTLP from 1
            "scope_name": s.instrumentation_scope.name,
            "attributes": {k: list(v) if isinstance(v, tuple) else v for k, v in s.attributes.items()},
            "resource": dict(s.resource.attributes),
        }
        for s in exporter.get_finished_spans()
    ]
    json.dump(spans, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
