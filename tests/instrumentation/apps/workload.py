"""A generated agent workload traced by two GenAI instrumentations at once, exported over OTLP.

    python -m tests.instrumentation.apps.workload COMBO SEED TRACES PROVIDER_URL OTLP_ENDPOINT grpc|http

TRACES 0 runs one fixed agent turn instead: 8 embeddings and 8 chat completions at once, then two identical
chat completions back to back (18 calls).

Traces of an agent that fans out concurrent calls (``asyncio.gather`` of identical requests), makes
identical calls in sequence, hands work to nested sub-agents, and retries calls the provider refuses once
(429); some calls have no enclosing span at all, so each is the root of a trace of its own. Every call is
traced by both instrumentations of COMBO (the anthropic SDK's own spans are always on for anthropic calls,
as they are once a tracer provider exists). The spans go to a collector through the real OTLP exporter.
The provider stand-in's request log is the truth the test compares ``llm_calls`` with.

Run in its own process: instrumentations patch SDK classes for the life of a process.
"""

from __future__ import annotations

import asyncio
import importlib
import random
import sys
from dataclasses import dataclass
from typing import Any

MESSAGES = [{"role": "user", "content": "Route ticket T-1042 to the right queue."}]


@dataclass(frozen=True)
class Combo:
    sdk: str  # openai or anthropic
    instrumentors: tuple[str, ...]  # "costspan", or module:Class of a BaseInstrumentor
    native: bool = False  # the anthropic SDK's own spans


OPENLLMETRY = "opentelemetry.instrumentation.openai:OpenAIInstrumentor"
OPENINFERENCE = "openinference.instrumentation.openai:OpenAIInstrumentor"
OTEL_GENAI = "opentelemetry.instrumentation.genai.openai:OpenAIInstrumentor"
HTTPX = "opentelemetry.instrumentation.httpx:HTTPX2ClientInstrumentor"
COMBOS = {
    "costspan": Combo("openai", ("costspan",)),
    "costspan+openllmetry": Combo("openai", ("costspan", OPENLLMETRY)),
    "costspan+openinference": Combo("openai", ("costspan", OPENINFERENCE)),
    "costspan+otel_genai": Combo("openai", ("costspan", OTEL_GENAI)),
    "openllmetry+openinference": Combo("openai", (OPENLLMETRY, OPENINFERENCE)),
    "openllmetry+otel_genai": Combo("openai", (OPENLLMETRY, OTEL_GENAI)),
    "openinference+otel_genai": Combo("openai", (OPENINFERENCE, OTEL_GENAI)),
    "anthropic_native+costspan": Combo("anthropic", ("costspan",), native=True),
    "anthropic_native+openllmetry": Combo(
        "anthropic", ("opentelemetry.instrumentation.anthropic:AnthropicInstrumentor",), native=True
    ),
    "anthropic_native+openinference": Combo(
        "anthropic", ("openinference.instrumentation.anthropic:AnthropicInstrumentor",), native=True
    ),
    "anthropic_native+otel_genai": Combo(
        "anthropic", ("opentelemetry.instrumentation.genai.anthropic:AnthropicInstrumentor",), native=True
    ),
    "anthropic_native+httpx": Combo("anthropic", (HTTPX,), native=True),
}


class Workload:
    def __init__(self, combo: Combo, rng: random.Random, base_url: str, tracer: Any, service: str) -> None:
        self.combo = combo
        self.rng = rng
        self.tracer = tracer
        # the test tells each combination's requests apart in the stand-in's log by this header
        headers = {"x-workload": service}
        if combo.sdk == "openai":
            import openai

            self.client: Any = openai.AsyncOpenAI(
                base_url=f"{base_url}/v1", api_key="test", max_retries=2, default_headers=headers
            )
        else:
            import anthropic

            self.client = anthropic.AsyncAnthropic(
                base_url=base_url, api_key="test", max_retries=2, default_headers=headers
            )

    async def call(self, kind: str) -> None:
        headers = {"x-fail-attempts": "1"} if self.rng.random() < 0.12 else {}
        client = self.client
        if kind == "chat":
            await client.chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, extra_headers=headers
            )
        elif kind == "chat_stream":
            # Usage on a stream: asked for, unless costspan is there to ask for it (the other instrumentation
            # alone could not see it, and the provider's bill could not be known)
            asked = "costspan" not in self.combo.instrumentors or self.rng.random() < 0.5
            options = {"include_usage": True} if asked else None
            stream = await client.chat.completions.create(
                model="gpt-4o-mini",
                messages=MESSAGES,
                stream=True,
                stream_options=options,
                extra_headers=headers,
            )
            async for _ in stream:
                pass
        elif kind == "embeddings":
            await client.embeddings.create(
                model="text-embedding-3-small", input="ticket T-1042", extra_headers=headers
            )
        elif kind == "responses":
            await client.responses.create(
                model="gpt-4o-mini", input="Route ticket T-1042.", extra_headers=headers
            )
        elif kind == "messages":
            await client.messages.create(
                model="claude-haiku-4-5", max_tokens=64, messages=MESSAGES, extra_headers=headers
            )
        else:  # messages_stream
            async with client.messages.stream(
                model="claude-haiku-4-5", max_tokens=64, messages=MESSAGES, extra_headers=headers
            ) as stream:
                await stream.until_done()

    def kind(self) -> str:
        if self.combo.sdk == "openai":
            return self.rng.choice(["chat", "chat", "chat_stream", "embeddings", "responses"])
        return self.rng.choice(["messages", "messages", "messages_stream"])

    async def fan_out(self) -> None:
        # identical requests at one instant, as an agent's asyncio.gather makes them
        kind = self.kind()
        await asyncio.gather(*(self.call(kind) for _ in range(self.rng.randint(2, 6))))

    async def sequence(self) -> None:
        kind = self.kind()  # identical calls back to back
        for _ in range(self.rng.randint(1, 3)):
            await self.call(kind)

    async def agent(self, name: str, depth: int) -> None:
        attributes = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": name}
        with self.tracer.start_as_current_span(f"invoke_agent {name}", attributes=attributes):
            for _ in range(self.rng.randint(1, 3)):
                step = self.rng.random()
                if step < 0.4:
                    await self.fan_out()
                elif step < 0.8 or depth >= 2:
                    await self.sequence()
                else:
                    await self.agent(f"{name}.sub", depth + 1)

    async def fixed_turn(self) -> None:
        attributes = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "researcher"}
        with self.tracer.start_as_current_span("invoke_agent researcher", attributes=attributes):
            client = self.client
            await asyncio.gather(
                *(client.embeddings.create(model="text-embedding-3-small", input="T-1042") for _ in range(8)),
                *(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES) for _ in range(8)),
            )
            for _ in range(2):
                await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    async def run(self, traces: int) -> None:
        if traces == 0:
            await self.fixed_turn()
        for i in range(traces):
            if self.rng.random() < 0.15:
                await self.sequence()  # calls with no span around them: each the root of its own trace
            else:
                await self.agent(f"agent{i % 3}", 0)


def main(name: str, seed: int, traces: int, base_url: str, endpoint: str, protocol: str) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=endpoint, insecure=True)
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")
    combo = COMBOS[name]
    service = f"workload-{name}"
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(
        BatchSpanProcessor(exporter, max_export_batch_size=256, schedule_delay_millis=200)
    )
    trace.set_tracer_provider(provider)
    for spec in combo.instrumentors:
        if spec == "costspan":
            from costspan.instrumentation import CostspanInstrumentor

            CostspanInstrumentor().instrument(
                tracer_provider=provider,
                endpoints={f"{base_url}/v1": "openai", f"{base_url}/v1/messages": "anthropic"},
            )
        else:
            module_name, class_name = spec.split(":")
            getattr(importlib.import_module(module_name), class_name)().instrument(tracer_provider=provider)
    workload = Workload(combo, random.Random(seed), base_url, trace.get_tracer("workload"), service)
    asyncio.run(workload.run(traces))
    provider.shutdown()  # flushes every span to the collector


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6])
