"""The GenAI client metrics: ``gen_ai.client.token.usage`` and ``gen_ai.client.operation.duration``.

Bucket boundaries are the ones the OpenTelemetry GenAI semantic conventions advise
(https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-metrics/), passed as the instruments'
explicit bucket boundaries advisory, so an SDK with no view of its own uses them.
"""

from __future__ import annotations

from opentelemetry.metrics import Histogram, Meter

TOKEN_USAGE = "gen_ai.client.token.usage"
OPERATION_DURATION = "gen_ai.client.operation.duration"
TOKEN_TYPE = "gen_ai.token.type"  # input | output

# "This metric SHOULD be specified with ExplicitBucketBoundaries of [1, 4, 16, ... 67108864]" (GenAI metrics)
TOKEN_USAGE_BUCKETS = (
    1,
    4,
    16,
    64,
    256,
    1024,
    4096,
    16384,
    65536,
    262144,
    1048576,
    4194304,
    16777216,
    67108864,
)
# "... ExplicitBucketBoundaries of [0.01, 0.02, 0.04, ... 81.92]" (GenAI metrics), in seconds
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)


class ClientMetrics:
    """The two histograms, created once per meter."""

    def __init__(self, meter: Meter) -> None:
        self.token_usage: Histogram = meter.create_histogram(
            TOKEN_USAGE,
            unit="{token}",
            description="Measures number of input and output tokens used",
            explicit_bucket_boundaries_advisory=list(TOKEN_USAGE_BUCKETS),
        )
        self.duration: Histogram = meter.create_histogram(
            OPERATION_DURATION,
            unit="s",
            description="GenAI operation duration",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
        )
