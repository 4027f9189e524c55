"""The GenAI client metrics: ``gen_ai.client.token.usage`` and ``gen_ai.client.operation.duration``.

Bucket boundaries are the ones the OpenTelemetry GenAI semantic conventions advise
(https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-metrics/), passed as the instruments'
explicit bucket boundaries advisory, so an SDK with no view of its own uses them. The same meter reports
``costspan.instrumentation.failures``, the failures costspan swallowed (see _failures).

Recording is deferred to collection. The SDK's path for one measurement (attributes copied, sorted and
hashed, a lock, a bucket search) costs about 10 µs, and a call makes three. So a call only appends itself
to a queue (its metric attributes are built later too), and the queue is recorded into the histograms when
a metric reader collects: an observable instrument's callback runs at the start of every collection, before
the histograms are read, so every measurement queued before a collection is in it (periodic export,
``force_flush`` and shutdown alike). The context of the call is kept with its figures, so exemplars link
the span the call was made in, as a recording made in the call would. The queue is bounded: past
:data:`MAX_QUEUED` calls (a meter that is never collected), a call records its own figures at once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from opentelemetry.context import Context
from opentelemetry.metrics import CallbackOptions, Histogram, Meter, Observation

from . import _failures

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


MAX_QUEUED = 10_000  # calls; a few MB at most
# the observable instrument whose callback records the queue; it observes nothing itself
_DRAIN = "costspan.instrumentation.queued_measurements"


class Measured(Protocol):
    """One call, as the metrics read it (:class:`~costspan.instrumentation._call.Call`)."""

    input_tokens: int | None
    output_tokens: int | None
    context: Context | None

    def metric_attributes(self, error_type: str | None) -> Mapping[str, Any]: ...


# one call, its duration in seconds and its error.type
_Queued = tuple[Measured, float, "str | None"]


class ClientMetrics:
    """The two histograms of one meter, and the calls waiting to be recorded in them."""

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
        self.queue: deque[_Queued] = deque()  # append and popleft are atomic: no lock needed
        meter.create_observable_gauge(
            _DRAIN,
            callbacks=[self._drain],
            description="Records the GenAI client measurements queued since the last collection",
        )
        meter.create_observable_counter(
            _failures.FAILURES,
            callbacks=[_observe_failures],
            unit="{failure}",
            description="Failures inside costspan's instrumentation, swallowed so that the calls went on",
        )

    def add(self, call: Measured, duration_s: float, error_type: str | None) -> None:
        """One call's measurements, recorded at the next collection."""
        if len(self.queue) < MAX_QUEUED:
            self.queue.append((call, duration_s, error_type))
        else:
            self._record(call, duration_s, error_type)

    def flush(self) -> None:
        """Records every queued call now."""
        self._drain(CallbackOptions())

    def _drain(self, options: CallbackOptions) -> Iterable[Observation]:
        queue, record = self.queue, self._record
        while True:
            try:
                queued = queue.popleft()
            except IndexError:
                return ()
            record(*queued)

    def _record(self, call: Measured, duration_s: float, error_type: str | None) -> None:
        attributes, context = call.metric_attributes(error_type), call.context
        self.duration.record(duration_s, attributes, context)
        if call.input_tokens is not None:
            self.token_usage.record(call.input_tokens, {**attributes, TOKEN_TYPE: "input"}, context)
        if call.output_tokens is not None:
            self.token_usage.record(call.output_tokens, {**attributes, TOKEN_TYPE: "output"}, context)


def _observe_failures(options: CallbackOptions) -> Iterable[Observation]:
    return [Observation(count, {_failures.STAGE: stage}) for stage, count in _failures.counts().items()]
