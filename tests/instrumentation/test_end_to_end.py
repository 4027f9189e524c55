"""End to end, in processes: an application run by the real ``opentelemetry-instrument`` (with
opentelemetry-distro's defaults: OTLP over gRPC for traces, metrics and logs) exports to a real
``costspan serve``; ``costspan sql`` then shows every call priced and attributed, streaming and boto3's
Bedrock calls included."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.bedrock_server import BedrockServer
from tests.support.collector import Collector
from tests.support.provider_server import ProviderServer

ROOT = Path(__file__).resolve().parents[2]
INSTRUMENT = Path(sys.executable).with_name("opentelemetry-instrument")
# the catalog model each call was priced as: instrumentations of one call name its model each their own way
# (OpenLLMetry's Bedrock spans drop the model id's vendor), and dedupe keeps whichever record is richest
QUERY = (
    "SELECT provider, operation, pricing_model, input_tokens, output_tokens, team, feature, customer_id,"
    " pricing_status, cost_usd > 0 AS costs FROM llm_calls ORDER BY team, pricing_model, input_tokens"
)
EXPECTED = [
    "anthropic,chat,claude-haiku-4-5,1039,13,billing,summaries,acme,priced,True",
    "anthropic,chat,claude-haiku-4-5,1039,13,billing,summaries,acme,priced,True",
    "aws.bedrock,chat,regional.anthropic.claude-3-5-sonnet-20240620-v1:0,7,11,finance,statements,,priced,True",
    "aws.bedrock,chat,regional.anthropic.claude-3-5-sonnet-20240620-v1:0,7,11,finance,statements,,priced,True",
    "openai,chat,gpt-4o-mini,1039,13,support,triage,,priced,True",
    "openai,chat,gpt-4o-mini,1039,13,support,triage,,priced,True",
    "openai,embeddings,text-embedding-3-small,2,,support,triage,,priced,True",
    "openai,audio,tts-1,,,voice,readout,,priced,True",
]


def _run_app(collector: Collector, server: ProviderServer, bedrock: BedrockServer, **env: str) -> None:
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT),
        "PROVIDER_BASE_URL": server.base_url,
        "BEDROCK_ENDPOINT_URL": bedrock.endpoint_url,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_CONFIG_FILE": "/nonexistent/aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
        "AWS_EC2_METADATA_DISABLED": "true",
        "OTEL_SERVICE_NAME": "invoices-app",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.grpc}",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=test",
        "COSTSPAN_LLM_ENDPOINTS": f"openai={server.base_url}/v1,anthropic={server.base_url}/v1/messages",
        **env,
    }
    out = subprocess.run(
        [str(INSTRUMENT), sys.executable, "-m", "tests.instrumentation.apps.llm_app"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr and "Failed to export" not in out.stderr, out.stderr


@pytest.mark.parametrize(
    "env",
    [
        pytest.param(
            {
                "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": (
                    "openai,anthropic,httpx,httpx2,botocore,aiobotocore,boto3,bedrock"
                ),
                "ANTHROPIC_OPEN_TELEMETRY": "false",
            },
            id="costspan-alone",
        ),
        # every other installed instrumentation too: OpenLLMetry's anthropic streams count one output token
        # more than the call had (it adds message_start's count to message_delta's cumulative one), which the
        # collector's dedupe allows between two instrumentations of one call. The three Bedrock
        # instrumentations (opentelemetry-instrumentation-botocore's extension, OpenLLMetry's and
        # OpenInference's) trace each boto3 call three times, naming provider and model each their own way
        pytest.param({"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": ""}, id="beside-other-instrumentations"),
    ],
)
def test_every_call_priced_and_attributed(tmp_path, env):
    collector = Collector(tmp_path / "data").start()
    try:
        with ProviderServer() as server, BedrockServer() as bedrock:
            _run_app(collector, server, bedrock, **env)
            assert len(server.requests) == 5
            assert len(bedrock.requests) == 2
        collector.wait_for(QUERY, EXPECTED, timeout=60)
        services = collector.sql("SELECT DISTINCT service_name, environment FROM llm_calls")
        assert services == ["invoices-app,test"]
    finally:
        collector.kill()
