"""An application with no tracing code of its own but costspan's attribution: run under
``opentelemetry-instrument``. It calls the provider server at ``PROVIDER_BASE_URL`` with the real openai and
anthropic SDKs, sync and async, streaming and not, and the Bedrock stand-in at ``BEDROCK_ENDPOINT_URL`` with
boto3, for three teams and features."""

from __future__ import annotations

import asyncio
import os

import anthropic
import boto3
import openai

from costspan.instrumentation import attribute, record

BASE = os.environ["PROVIDER_BASE_URL"]
ASK = [{"role": "user", "content": "Which invoices are overdue? Use the cache."}]


@attribute(team="support", feature="triage")
def triage() -> None:
    client = openai.OpenAI(base_url=f"{BASE}/v1", api_key="test", max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=ASK)
    for _ in client.chat.completions.create(model="gpt-4o-mini", messages=ASK, stream=True):
        pass
    client.embeddings.create(model="text-embedding-3-small", input="overdue invoices")


async def summarise() -> None:
    async with attribute(team="billing", feature="summaries", customer_id="acme"):
        client = anthropic.AsyncAnthropic(base_url=BASE, api_key="test", max_retries=0)
        await client.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=ASK)
        stream = await client.messages.create(
            model="claude-haiku-4-5", max_tokens=64, messages=ASK, stream=True
        )
        async for _ in stream:
            pass


@attribute(team="finance", feature="statements")
def statements() -> None:
    client = boto3.client(
        "bedrock-runtime", region_name="us-east-1", endpoint_url=os.environ["BEDROCK_ENDPOINT_URL"]
    )
    model = "anthropic.claude-3-5-sonnet-20240620-v1:0"
    messages = [{"role": "user", "content": [{"text": ASK[0]["content"]}]}]
    client.converse(modelId=model, messages=messages)
    for _ in client.converse_stream(modelId=model, messages=messages)["stream"]:
        pass


def main() -> None:
    triage()
    asyncio.run(summarise())
    statements()
    with attribute(team="voice", feature="readout"):
        record(provider="openai", model="tts-1", operation="speech", usage={"input_characters": 1000})


if __name__ == "__main__":
    main()
