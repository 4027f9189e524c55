"""dedupe: one real call counted once.

Two ways a call is seen twice:

- the same span delivered again (an exporter's retry, a replayed file): same trace and span id;
- two instrumentations of one call (the anthropic SDK's own span and an HTTP span under it; OpenLLMetry and
  OpenInference both installed): LLM records in one trace whose intervals nest, with compatible provider,
  model and usage.

The richest record (most usage figures, then the most specific dialect) is kept; the others get
``duplicate_of`` set to its span id and stay in the batch, so storage keeps them visibly and sums skip them.
Missing fields of the kept record (server address, response id, service tier) are filled from its
duplicates. A bounded window of recent records catches duplicates that arrive in a later batch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from itertools import islice
from typing import Any, Final

from costspan.semconv import LLM, GenAICall
from costspan.semconv import dialects as D

from ._base import ConfigError, Processor, check_keys, register
from ._batch import SpanBatch

# Most specific first: a dialect that reports more of the call beats a wrapper that reports less.
_DIALECT_RANK: Final = {
    D.ANTHROPIC_SDK: 6,
    D.OTEL_GENAI: 5,
    D.OPENLLMETRY: 4,
    D.OPENINFERENCE: 4,
    D.OPENLIT: 3,
    D.LOGFIRE: 3,
    D.LANGFUSE: 2,
    D.HTTP: 0,
}
_MERGED_FIELDS: Final = ("provider", "server_address", "response_id", "response_model", "service_tier",
                  "time_to_first_chunk_s", "streaming", "request_model")  # fmt: skip
# remembered per trace; an agent loop beyond that is compared within its batches
_CALLS_PER_TRACE: Final = 1_000
_SLACK_NS: Final = 5_000_000  # instrumentations wrap each other within a few milliseconds


class _Window:
    """Recent records, to recognise re-sends and duplicates across batches; bounded in size."""

    def __init__(self, max_spans: int, max_traces: int) -> None:
        self.max_spans = max_spans
        self.max_traces = max_traces
        # Span id -> trace id of the spans seen, in two generations. A batch adds to the newest; once it holds
        # more than max_spans, it becomes the older one and the one before is let go whole. So the newest
        # max_spans are always remembered, at most about twice that, and nothing is ever copied. Keyed by the
        # span id alone (its hash is cached on the string, where a tuple's is computed on every lookup); the
        # trace id is compared on a hit.
        self.spans: dict[str, str] = {}
        self.older_spans: dict[str, str] = {}
        self.traces: dict[str, list[GenAICall]] = {}

    def add_all(self, fresh: list[GenAICall]) -> None:
        """Remembers the batch's new LLM records by trace (their span ids are in already), then trims."""
        traces = self.traces
        for call in fresh:
            if call.kind == LLM and call.duplicate_of is None:
                calls = traces.get(call.trace_id)
                if calls is None:
                    calls = traces[call.trace_id] = []
                if len(calls) < _CALLS_PER_TRACE:
                    calls.append(call)
        if len(self.spans) > self.max_spans:
            self.older_spans = self.spans
            self.spans = {}
        # Plain dicts keep insertion order, so the oldest traces are the first. They are let go in chunks,
        # by copying the newest: deleting one by one from the front leaves holes that each later lookup of
        # the first entry walks over.
        if len(traces) > self.max_traces + self.max_traces // 2:
            self.traces = dict(islice(traces.items(), len(traces) - self.max_traces, None))

    def calls_of(self, trace_id: str) -> list[GenAICall]:
        return self.traces.get(trace_id, [])


def dedupe(batch: SpanBatch, counts: Counter[str], window: _Window) -> SpanBatch:
    by_trace: dict[str, list[GenAICall]] = {}
    seen, seen_before = window.spans, window.older_spans  # this batch's spans join as they are read
    fresh: list[GenAICall] = []
    for call in batch.calls:
        if call is None:
            continue
        trace_id = call.trace_id
        span_id = call.span_id
        known = seen.get(span_id)
        if known is None:
            known = seen_before.get(span_id)
        if known == trace_id:
            call.duplicate_of = span_id
            call.flag("the same span was delivered again")
            counts["resent"] += 1
            continue
        seen[span_id] = trace_id
        fresh.append(call)
        if call.kind == LLM:
            calls = by_trace.get(trace_id)
            if calls is None:
                by_trace[trace_id] = [call]
            else:
                calls.append(call)
    traces = window.traces
    for trace_id, calls in by_trace.items():
        if len(calls) > 1 or trace_id in traces:
            _merge_overlapping(calls, window.calls_of(trace_id), counts)
    if len(by_trace) > 1:
        _merge_across_traces(by_trace, counts)
    window.add_all(fresh)
    return batch


def _merge_overlapping(calls: list[GenAICall], earlier: list[GenAICall], counts: Counter[str]) -> None:
    """Group the records that describe one call; mark all but the richest of each group."""
    calls.sort(key=lambda c: (c.start_time_ns, -c.end_time_ns))
    pool = [c for c in earlier if c.duplicate_of is None] + calls
    for call in calls:
        if call.duplicate_of is not None:
            continue
        start, end = call.start_time_ns - _SLACK_NS, call.end_time_ns + _SLACK_NS
        for other in pool:
            # most pairs in a trace are sequential calls: reject disjoint intervals before anything else
            if other.start_time_ns > end or other.end_time_ns < start or other is call:
                continue
            if other.duplicate_of is not None or not _same_call(call, other):
                continue
            keep, drop = (call, other) if _richness(call) > _richness(other) else (other, call)
            if _among(drop, earlier) and not _among(keep, earlier):
                # the duplicate was already passed on in an earlier batch: keep that one, and count it
                keep, drop = drop, keep
                counts["late_richer"] += 1
            _absorb(keep, drop)
            counts[f"duplicate.{drop.dialect}"] += 1
            if drop is call:
                break


def _merge_across_traces(by_trace: dict[str, list[GenAICall]], counts: Counter[str]) -> None:
    """Two instrumentations that do not share context (OpenLLMetry's Responses API spans, for one) trace
    one call in two traces when no application span is around them. Such root records are matched by the
    response id when both have one, and otherwise only when two dialects of the same service report the
    same model and the same input and output tokens in intervals that mostly overlap. Concurrent calls
    alike in all that may pair up crosswise, which leaves the count and the cost right."""
    by_response: dict[str, GenAICall] = {}
    by_usage: dict[tuple[Any, ...], list[GenAICall]] = {}
    for calls in by_trace.values():
        for call in calls:
            # Only a root span can be another instrumentation's twin in a trace of its own: below any
            # application span, both instrumentations share the application's trace.
            if call.duplicate_of is not None or call.parent_span_id is not None:
                continue
            if call.response_id:
                other = by_response.get(call.response_id)
                if other is not None and other.trace_id != call.trace_id:
                    _keep_richer(call, other, counts, "response id")
                    continue
                by_response[call.response_id] = call
            if type(call.input_tokens) is int and type(call.output_tokens) is int:
                key = (call.service_name, call.input_tokens, call.output_tokens, call.operation)
                by_usage.setdefault(key, []).append(call)
    for group in by_usage.values():
        for i, call in enumerate(group):
            for other in group[i + 1 :]:
                if (
                    call.duplicate_of is None
                    and other.duplicate_of is None
                    and other.trace_id != call.trace_id
                    and other.dialect != call.dialect
                    and _mostly_overlap(call, other)
                    and (not call.provider or not other.provider or call.provider == other.provider)
                    and _models_match(call.model, other.model)
                ):
                    _keep_richer(call, other, counts, "timing and usage")


def _mostly_overlap(a: GenAICall, b: GenAICall) -> bool:
    """The intervals share at least half of the shorter one (wrappers add their own few milliseconds)."""
    shared = min(a.end_time_ns, b.end_time_ns) - max(a.start_time_ns, b.start_time_ns)
    shorter = min(a.end_time_ns - a.start_time_ns, b.end_time_ns - b.start_time_ns)
    return shared >= 0 and shared * 2 >= shorter


def _keep_richer(a: GenAICall, b: GenAICall, counts: Counter[str], how: str) -> None:
    # The span id settles a tie, so that the choice does not depend on the order the twins were read in:
    # the collector's pipeline workers each see both twins of a pair, and store only their own.
    keep, drop = (a, b) if (_richness(a), a.span_id) > (_richness(b), b.span_id) else (b, a)
    _absorb(keep, drop)
    drop.flag(f"the same call as span {keep.span_id} of trace {keep.trace_id}, matched by {how}")
    counts[f"duplicate.{drop.dialect}"] += 1
    counts["across_traces"] += 1


def _among(call: GenAICall, calls: list[GenAICall]) -> bool:
    return any(c is call for c in calls)


def _same_call(a: GenAICall, b: GenAICall) -> bool:
    if a.trace_id != b.trace_id:
        return False
    # one interval inside the other: one instrumentation wraps the other, or both wrap the same call
    a_in_b = a.start_time_ns + _SLACK_NS >= b.start_time_ns and a.end_time_ns <= b.end_time_ns + _SLACK_NS
    b_in_a = b.start_time_ns + _SLACK_NS >= a.start_time_ns and b.end_time_ns <= a.end_time_ns + _SLACK_NS
    if not (a_in_b or b_in_a):
        return False
    if a.provider and b.provider and a.provider != b.provider:
        return False
    if not _models_match(a.model, b.model):
        return False
    if a.operation and b.operation and a.operation != b.operation:
        return False
    # Usage, where both report it, must agree: output never depends on the dialect's arithmetic. Two
    # instrumentations of one stream may differ by one token (OpenLLMetry's Anthropic streams count one
    # more than the API reports), so records of different dialects may differ by one; one dialect's own
    # records must agree exactly.
    if type(a.output_tokens) is not int or type(b.output_tokens) is not int:
        return True
    tolerance = 1 if a.dialect != b.dialect else 0
    return abs(a.output_tokens - b.output_tokens) <= tolerance


def _models_match(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return True
    a, b = a.lower(), b.lower()
    # a response model is often the dated snapshot of the requested alias (gpt-4o -> gpt-4o-2024-08-06)
    return a == b or a.startswith(b) or b.startswith(a) or a.rsplit("/", 1)[-1] == b.rsplit("/", 1)[-1]


def _richness(call: GenAICall) -> tuple[int, int, int]:
    return (call.usage_count(), _DIALECT_RANK.get(call.dialect, 1), -call.start_time_ns)


def _absorb(keep: GenAICall, drop: GenAICall) -> None:
    drop.duplicate_of = keep.span_id
    for name in _MERGED_FIELDS:
        if getattr(keep, name) is None and getattr(drop, name) is not None:
            setattr(keep, name, getattr(drop, name))


@register("dedupe")
def _factory(config: Mapping[str, Any], path: str) -> Processor:
    check_keys(config, {"window_spans", "window_traces"}, path)
    sizes = {}
    for key, default in (("window_spans", 200_000), ("window_traces", 20_000)):
        value = config.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ConfigError(f"{path}.{key}: a whole number of entries, 0 or more; got {value!r}")
        sizes[key] = value
    window = _Window(sizes["window_spans"], sizes["window_traces"])
    return Processor("dedupe", lambda batch, counts: dedupe(batch, counts, window))
