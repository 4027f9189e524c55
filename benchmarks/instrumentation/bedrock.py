"""What costspan adds to a boto3 call: Bedrock Runtime calls, and an application's other AWS calls.

    python benchmarks/instrumentation/bedrock.py [--pairs 15] [--calls 40]

The Bedrock stand-in (tests/support/bedrock_server.py) runs in a process of its own; this process sets up
the OpenTelemetry SDK as an application does (a ``BatchSpanProcessor`` whose exporter only counts, a
``MeterProvider`` with one reader) and makes calls with one real boto3 client: ``converse``,
``converse_stream`` (read to its end), ``invoke_model`` (body read) and ``invoke_model_with_response_stream``.
A last row is an AWS call of another service (S3 ``list_buckets``) answered by a ``before-call`` handler
without any network, so that its figure is the hook's cost on the calls it lets through.

Blocks of calls alternate with costspan switched on and off; "added" is the median over pairs of the
difference per call, wall time of the calls and CPU time of the process over the calls and then a span
flush and a metrics collection (as benchmarks/instrumentation/run.py measures the httpx path). Speed is
reported, not asserted.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SERVER = (
    "import sys, time\n"
    "from tests.support.bedrock_server import BedrockServer\n"
    "with BedrockServer() as server:\n"
    "    print(server.endpoint_url, flush=True)\n"
    "    sys.stdin.read()\n"
)
MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
MESSAGES = [{"role": "user", "content": [{"text": "Was invoice INV-0042 paid, and when?"}]}]
BODY = json.dumps(
    {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "Hi"}],
    }
)


def _operations(endpoint_url: str) -> dict[str, Callable[[], Any]]:
    import boto3
    from botocore.awsrequest import AWSResponse

    bedrock = boto3.client("bedrock-runtime", region_name="us-east-1", endpoint_url=endpoint_url)
    s3 = boto3.client("s3", region_name="us-east-1")

    def answer(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        return AWSResponse("https://s3.amazonaws.com/", 200, {}, None), {"Buckets": []}

    s3.meta.events.register("before-call.s3.ListBuckets", answer)

    def converse_stream() -> None:
        for _ in bedrock.converse_stream(modelId=MODEL, messages=MESSAGES)["stream"]:
            pass

    def invoke_stream() -> None:
        for _ in bedrock.invoke_model_with_response_stream(modelId=MODEL, body=BODY)["body"]:
            pass

    return {
        "converse": lambda: bedrock.converse(modelId=MODEL, messages=MESSAGES),
        "converse_stream": converse_stream,
        "invoke_model": lambda: bedrock.invoke_model(modelId=MODEL, body=BODY)["body"].read(),
        "invoke_model_with_response_stream": invoke_stream,
        "other AWS call (s3)": s3.list_buckets,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--pairs", type=int, default=15)
    parser.add_argument("--calls", type=int, default=40, help="calls per block")
    args = parser.parse_args()
    os.environ.update(
        AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_EC2_METADATA_DISABLED="true"
    )
    os.environ.update(AWS_CONFIG_FILE="/nonexistent", AWS_SHARED_CREDENTIALS_FILE="/nonexistent")
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        endpoint_url = server.stdout.readline().strip()
        _run(endpoint_url, args.pairs, args.calls)
    finally:
        server.kill()
        server.wait()


def _run(endpoint_url: str, pairs: int, calls: int) -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    from costspan.instrumentation import CostspanInstrumentor

    class Counting(SpanExporter):
        spans = 0

        def export(self, spans: Any) -> SpanExportResult:
            Counting.spans += len(spans)
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider()
    processor = BatchSpanProcessor(Counting())
    tracer_provider.add_span_processor(processor)
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    instrumentor = CostspanInstrumentor()
    operations = _operations(endpoint_url)

    def block(operation: Callable[[], Any], on: bool) -> tuple[float, float]:
        if on:
            instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
        gc.collect()
        gc.freeze()
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(calls):
            operation()
        wall = time.perf_counter() - wall
        processor.force_flush()
        reader.collect()
        cpu = time.process_time() - cpu
        if on:
            instrumentor.uninstrument()
        gc.unfreeze()
        return wall / calls, cpu / calls

    columns = ("plain wall ms", "plain cpu ms", "added wall us", "added cpu us")
    print(f"{'operation':36}", *(f"{column:>14}" for column in columns))
    for name, operation in operations.items():
        for _ in range(3):  # warm-up: connections, botocore's loaders, the instrumentor's first run
            block(operation, True)
            block(operation, False)
        walls, cpus, plains, plain_cpus = [], [], [], []
        for index in range(pairs):
            first_on = index % 2 == 0
            a = block(operation, first_on)
            b = block(operation, not first_on)
            on, off = (a, b) if first_on else (b, a)
            walls.append(on[0] - off[0])
            cpus.append(on[1] - off[1])
            plains.append(off[0])
            plain_cpus.append(off[1])
        print(
            f"{name:36} {statistics.median(plains) * 1e3:14.3f} {statistics.median(plain_cpus) * 1e3:14.3f} "
            f"{statistics.median(walls) * 1e6:14.1f} {statistics.median(cpus) * 1e6:14.1f}"
        )
    print(f"spans exported: {Counting.spans}")


if __name__ == "__main__":
    main()
