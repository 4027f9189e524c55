"""Live traffic: real openai and anthropic SDK clients, instrumented by costspan, against the local provider.

The demo's application process is this one: an OpenTelemetry tracer provider exporting OTLP/gRPC to the
demo's collector, :class:`~costspan.instrumentation.CostspanInstrumentor` on the SDKs' HTTP transports
(the provider server's base URLs configured as OpenAI and Anthropic endpoints, as one would configure a
gateway), and :func:`~costspan.instrumentation.attribute` scopes saying whose each call is. The calls cover
what the backfill cannot show being captured: streams (Anthropic's, and OpenAI's without
``include_usage``, whose usage costspan asks for), the Responses API, embeddings with a retrieval stage,
prompt-cache reads and one-hour cache writes, async clients, and an agent turn traced as a span tree.
"""

from __future__ import annotations

import asyncio
from typing import Any

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from costspan.instrumentation import CostspanInstrumentor, attribute, record_retrieval
from costspan.semconv import attributes as A

from . import _workload as W
from .provider import ProviderServer

SERVICE = "web-app"


def run_live(collector_endpoint: str) -> int:
    """Make the live calls; returns how many LLM calls were made (each one a row of ``llm_calls``)."""
    import anthropic
    import openai

    tracer_provider = TracerProvider(
        resource=Resource.create({A.SERVICE_NAME: SERVICE, A.DEPLOYMENT_ENVIRONMENT_NAME: "production"})
    )
    tracer_provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=collector_endpoint, insecure=True))
    )
    instrumentor = CostspanInstrumentor()
    with ProviderServer() as server:
        instrumentor.instrument(
            tracer_provider=tracer_provider,
            endpoints={server.openai_base_url: "openai", f"{server.base_url}/v1/messages": "anthropic"},
        )
        try:
            oai = openai.OpenAI(base_url=server.openai_base_url, api_key="demo", max_retries=0)
            claude = anthropic.Anthropic(base_url=server.anthropic_base_url, api_key="demo", max_retries=0)
            calls = _search(oai, claude) + _growth(oai) + _payments(oai)
            tracer = tracer_provider.get_tracer("costspan.demo")
            for turn in range(3):
                with tracer.start_as_current_span(
                    f"invoke_agent {W.AGENT}",
                    attributes={A.GEN_AI_OPERATION_NAME: "invoke_agent", A.GEN_AI_AGENT_NAME: W.AGENT},
                ):
                    calls += _agent_turn(oai, claude, f"cust-{turn + 1:03d}")
            calls += asyncio.run(_async_calls(server))
        finally:
            instrumentor.uninstrument()
            tracer_provider.force_flush(60_000)
            tracer_provider.shutdown()
    return calls


def _search(oai: Any, claude: Any) -> int:
    calls = 0
    for n in range(4):
        with attribute(team="search", feature="query-rewrite", customer_id=f"cust-{n + 1:03d}"):
            oai.chat.completions.create(
                model="gpt-4.1-mini",
                messages=[{"role": "user", "content": "Rewrite for search: cheap flights to Lisbon in May"}],
            )
            calls += 1
        with attribute(
            team="search", feature="rag-answer", customer_id=f"cust-{n + 1:03d}", prompt_key="rag"
        ):
            oai.embeddings.create(model="text-embedding-3-small", input="cheap flights to Lisbon in May")
            record_retrieval(chunks=6, context_tokens=2400, source="travel-kb", duration_s=0.04)
            # "cache" in the prompt: the provider reads a cached prefix, as a repeated system prompt would
            with claude.messages.stream(
                model="claude-haiku-4-5",
                max_tokens=400,
                messages=[
                    {"role": "user", "content": "Answer from the cached context: when is it cheapest?"}
                ],
            ) as stream:
                for _ in stream.text_stream:
                    pass
            calls += 2
    return calls


def _growth(oai: Any) -> int:
    # streams that did not ask for include_usage: costspan asks, and hides the extra chunk from the app
    for n in range(4):
        with attribute(team="growth", feature="product-blurbs", customer_id=f"cust-{n + 10:03d}"):
            stream = oai.chat.completions.create(
                model="gpt-4o-mini",
                stream=True,
                messages=[{"role": "user", "content": "A two-line blurb for a waterproof hiking jacket"}],
            )
            for _ in stream:
                pass
    return 4


def _payments(oai: Any) -> int:
    for n in range(2):
        with attribute(team="payments", feature="fraud-explain", customer_id=f"cust-{n + 1:03d}"):
            oai.responses.create(model="gpt-4o", input="Explain why order 1234 was held for review.")
    return 2


def _agent_turn(oai: Any, claude: Any, customer: str) -> int:
    with attribute(team=W.AGENT_TEAM, feature=W.AGENT_FEATURE, agent=W.AGENT, customer_id=customer):
        with attribute(step="planner", prompt_key="agent-planner"):
            oai.chat.completions.create(
                model="o4-mini",
                messages=[{"role": "user", "content": "Plan a reply: the customer's parcel is late."}],
            )
        with attribute(step="retriever", prompt_key="agent-retriever"):
            oai.embeddings.create(model="text-embedding-3-small", input="late parcel policy")
            record_retrieval(chunks=4, context_tokens=1600, source="support-kb", duration_s=0.03)
        with attribute(step="executor", prompt_key="agent-executor"):
            claude.messages.create(
                model="claude-sonnet-4-5",
                max_tokens=300,
                system=[
                    {
                        "type": "text",
                        "text": "You are the support agent of a parcel company. " * 40,
                        "cache_control": {"type": "ephemeral", "ttl": "1h"},
                    }
                ],
                messages=[{"role": "user", "content": "Draft the reply about the late parcel."}],
            )
    return 3


async def _async_calls(server: ProviderServer) -> int:
    import openai

    async with openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="demo", max_retries=0) as oai:
        with attribute(team="support", feature="ticket-triage", customer_id="cust-002"):
            await asyncio.gather(
                *(
                    oai.chat.completions.create(
                        model="gpt-4.1-mini",
                        messages=[{"role": "user", "content": f"Triage ticket {n}: refund request"}],
                    )
                    for n in range(3)
                )
            )
    return 3
