"""The OpenTelemetry JS SDK's trace exporters (gRPC, HTTP/protobuf, HTTP/JSON) in Node, sending GenAI spans
to a real ``costspan serve``; ``costspan sql`` returns the rows with the ids the JS SDK made and the
exact cost.

The Node modules come from ``make js-clients`` (``npm ci`` on tests/collector/js/package-lock.json).
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests.support.collector import Collector

JS_CLIENTS = Path(__file__).with_name("js")
SCRIPT = JS_CLIENTS / "send_genai_spans.mjs"

# Expected costs from the embedded catalog (genai-prices 0.2.3), as `costspan pricing quote` gives them:
# gpt-4o, $2.50 / 1M input, $1.25 / 1M cached input, $10 / 1M output:
#   800 uncached * 2.50 + 400 cache reads * 1.25 + 300 output * 10 (per 1M) = $0.0055
# claude-sonnet-4-5, $3 / 1M input, $0.30 / 1M cache reads, $15 / 1M output:
#   500 uncached * 3 + 1500 cache reads * 0.30 + 500 output * 15 (per 1M) = $0.00945
EXPECTED = {
    "gpt-4o": "openai,gpt-4o,1200,400,300,0.0055,payments,checkout-assistant",
    "claude-sonnet-4-5": "anthropic,claude-sonnet-4-5,2000,1500,500,0.00945,support,ticket-triage",
}


@pytest.fixture(scope="module")
def collector(tmp_path_factory):
    node = shutil.which("node")
    assert node, "Node.js is needed for the JS SDK exporter tests"
    assert (JS_CLIENTS / "node_modules" / ".installed").exists(), (
        "the JS SDK exporters are not installed: run `make js-clients` (npm ci in tests/collector/js)"
    )
    running = Collector(tmp_path_factory.mktemp("js") / "data").start()
    yield running
    if running.proc and running.proc.poll() is None:
        running.kill(signal.SIGTERM)


def send(protocol: str, endpoint: str, service: str) -> list[dict[str, str]]:
    """Run the JS app; it exits non-zero if its exporter reported a failed export."""
    done = subprocess.run(
        ["node", str(SCRIPT), protocol, endpoint, service],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=JS_CLIENTS,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf", "http/json"])
def test_js_exporter_spans_become_priced_rows_with_the_sdk_ids(collector, protocol):
    port = collector.grpc if protocol == "grpc" else collector.http
    service = f"js-{protocol.replace('/', '-')}"
    sent = send(protocol, f"http://127.0.0.1:{port}", service)
    assert [span["model"] for span in sent] == ["gpt-4o", "claude-sonnet-4-5"]
    # The JSON exporter writes ids as hex (OTLP/JSON's rule, not protobuf JSON's base64): trace, span and
    # parent ids must come out exactly as the SDK made them. The agent span is no LLM call: two rows.
    assert sent[0]["parent_span_id"] == "" and len(sent[1]["parent_span_id"]) == 16  # the agent's span
    expected = sorted(
        f"{EXPECTED[s['model']]},{s['trace_id']},{s['span_id']},{s['parent_span_id']}" for s in sent
    )
    collector.wait_for(
        "SELECT provider, request_model, input_tokens, cache_read_tokens, output_tokens, cost_usd, team, "
        "feature, trace_id, span_id, coalesce(parent_span_id, '') "
        f"FROM llm_calls WHERE service_name = '{service}' ORDER BY provider",
        expected,
    )
    assert collector.sql(
        f"SELECT sum(cost_usd), count(*) FROM llm_calls WHERE service_name = '{service}' "
        "AND pricing_status = 'priced' AND cost_source = 'local'"
    ) == ["0.01495,2"]
