"""dedupe: one real call counted once, and two real calls never counted as one.

Two records are the same call only on proof (docs/processing.md, "dedupe"):

- the same span delivered again (an exporter's retry, a replayed file): the same trace and span id;
- two instrumentations' records of one request: one is the nearest LLM-record ancestor of the other in the
  span tree (the anthropic SDK's own span and an HTTP span under it; OpenLLMetry's span and OpenInference's
  inside it), and nothing they both report tells them apart: provider, model, operation, response id,
  output tokens and outcome (an SDK span of a call that succeeded is the twin of the attempt that
  succeeded, not of a failed attempt before it).

Never evidence on their own: timing, model, usage or a response id. Concurrent siblings, calls in sequence,
and records in different traces are separate calls, however alike (servers with short or recycled response
ids exist, and fan-out makes identical calls at the same instant). The one exception is by name:
instrumentations known never to make their span current (:data:`_UNLINKED_WRAPPERS`), whose record is
paired with the record beside it that it was open around (:func:`_pair_unlinked`).

Of the records of one call, the richest (most usage figures, then the most specific dialect) is kept, the
others get ``duplicate_of`` set to its span id and stay, so storage keeps them visibly and sums skip them.
The choice depends on the records only, never on the batches they came in: when a richer record arrives
after the one already passed on as the call, the earlier one becomes the duplicate and is listed in the
batch's ``superseded``, so the exporters move its stored row (:mod:`costspan.exporters.parquet`).

A bounded window remembers the recent spans (ids, parents, LLM records by trace) so that twins and re-sends
arriving in later batches are recognised.
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
    D.VERCEL_AI: 4,
    D.OPENLIT: 3,
    D.LOGFIRE: 3,
    D.LANGFUSE: 2,
    D.HTTP: 0,
}
_MERGED_FIELDS: Final = ("provider", "server_address", "response_id", "response_model", "service_tier",
                  "time_to_first_chunk_s", "streaming", "request_model")  # fmt: skip
# remembered per trace; an agent loop beyond that is compared within its batches
_CALLS_PER_TRACE: Final = 1_000
# Instrumentations that never make their span of a call current while the request is made: scope -> the span
# names concerned (None: every span of the scope). Their records and another instrumentation's record of the
# same request are not nested. Checked with the real libraries (tests/fixtures/genai,
# tests/collector/test_dedupe_workload_e2e.py, tests/instrumentation/test_end_to_end.py):
# opentelemetry-instrumentation-anthropic 0.62.4 for every call; opentelemetry-instrumentation-openai 0.62.4
# for the Responses API; openinference-instrumentation-anthropic 3.1.0 for messages.stream, whose request is
# made when the stream is entered, after its span was current; opentelemetry-instrumentation-bedrock 0.62.4
# for converse_stream (its spans are all named "chat <model>": one that has a record beneath it is linked,
# and not taken for a wrapper).
_UNLINKED_WRAPPERS: Final[dict[str, frozenset[str] | None]] = {
    "opentelemetry.instrumentation.anthropic": frozenset({"anthropic.chat", "anthropic.completion"}),
    "opentelemetry.instrumentation.openai.v1": frozenset({"openai.response"}),
    "openinference.instrumentation.anthropic": frozenset({"messages.stream", "beta.messages.stream"}),
    "opentelemetry.instrumentation.bedrock": None,
}
_WRAPPER_DIALECTS: Final = frozenset({D.OPENLLMETRY, D.OPENINFERENCE})  # a cheap test before the one above
_SUMS_CALLS: Final = "wraps "  # the flag of a record over several calls
_RECENT_CALLS: Final = 20_000  # LLM records remembered for the wrappers above, across traces
# Bedrock model ids: an inference profile's region, then the model's vendor (us.anthropic.claude-...)
_BEDROCK_REGIONS: Final = frozenset({"us", "eu", "apac", "jp", "au", "ca", "us-gov", "global"})
_BEDROCK_VENDORS: Final = frozenset(
    {"anthropic", "amazon", "meta", "mistral", "cohere", "ai21", "deepseek", "openai", "qwen", "writer"}
)
# How far up the span tree a record looks for the instrumentation that wraps it. Wrappers nest directly or
# with a framework span or two between; a corrupt parent chain must not loop.
_MAX_HOPS: Final = 8


class _Window:
    """Recent spans, to recognise re-sends and twins across batches; bounded in size."""

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
        # Span id -> parent span id of the spans of traces with LLM records, in the same two generations: the
        # links between a call's records when a framework span lies between them.
        self.parents: dict[str, str | None] = {}
        self.older_parents: dict[str, str | None] = {}
        self.traces: dict[str, list[GenAICall]] = {}
        # recent LLM records of every trace, by (service, output tokens): see _pair_unlinked
        self.recent: dict[tuple[Any, ...], list[GenAICall]] = {}
        self.older_recent: dict[tuple[Any, ...], list[GenAICall]] = {}
        self.recent_count = 0
        # the wrappers of _UNLINKED_WRAPPERS among them that are not paired yet, by span id; the records
        # paired with one, and its span id (one wrapper a record)
        self.wrappers: dict[str, GenAICall] = {}
        self.paired: dict[str, str] = {}
        self.paired_wrappers: dict[str, str] = {}  # the other way: wrapper span id -> record span id

    def add_all(self, fresh: list[GenAICall]) -> None:
        """Remembers the batch's new LLM records by trace (their span ids are in already), then trims."""
        traces = self.traces
        for call in fresh:
            if call.kind == LLM:
                calls = traces.get(call.trace_id)
                if calls is None:
                    calls = traces[call.trace_id] = []
                if len(calls) < _CALLS_PER_TRACE:
                    calls.append(call)
        if len(self.spans) > self.max_spans:
            self.older_spans = self.spans
            self.spans = {}
        if len(self.parents) > self.max_spans:
            self.older_parents = self.parents
            self.parents = {}
        # Plain dicts keep insertion order, so the oldest traces are the first. They are let go in chunks,
        # by copying the newest: deleting one by one from the front leaves holes that each later lookup of
        # the first entry walks over.
        if len(traces) > self.max_traces + self.max_traces // 2:
            self.traces = dict(islice(traces.items(), len(traces) - self.max_traces, None))

    def remember_recent(self, fresh: list[GenAICall]) -> None:
        """The batch's LLM records, by service and output tokens, for :func:`_pair_unlinked`, in two
        generations as the span ids are: the newest :data:`_RECENT_CALLS` are always remembered."""
        recent = self.recent
        added = 0
        for call in fresh:
            if call.kind == LLM and type(call.output_tokens) is int:
                key = (call.service_name, call.output_tokens)
                calls = recent.get(key)
                if calls is None:
                    recent[key] = [call]
                else:
                    calls.append(call)
                added += 1
        self.recent_count += added
        if self.recent_count > _RECENT_CALLS:
            self.older_recent = recent
            self.recent = {}
            self.recent_count = 0
            if len(self.wrappers) > _RECENT_CALLS:  # never paired (their twin was not traced): let go
                self.wrappers = dict(islice(self.wrappers.items(), len(self.wrappers) // 2, None))
            if len(self.paired) > _RECENT_CALLS:
                self.paired = dict(islice(self.paired.items(), len(self.paired) // 2, None))
                self.paired_wrappers = dict(
                    islice(self.paired_wrappers.items(), len(self.paired_wrappers) // 2, None)
                )

    def recent_under(self, key: tuple[Any, ...]) -> list[GenAICall]:
        newer, older = self.recent.get(key), self.older_recent.get(key)
        if older is None:
            return newer or []
        return older if newer is None else [*newer, *older]

    def parent_of(self, span_id: str) -> tuple[bool, str | None]:
        """(known, parent span id) of a remembered span."""
        parents = self.parents
        if span_id in parents:
            return True, parents[span_id]
        if span_id in self.older_parents:
            return True, self.older_parents[span_id]
        return False, None


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
    if by_trace or traces:
        _remember_parents(batch, by_trace, window)
    superseded: list[GenAICall] = []
    # the wrappers that break context first: a record they enclose is then one of a pair when the tree
    # shows both beneath a third instrumentation's record
    window.remember_recent(fresh)
    _pair_unlinked(batch, window, counts, superseded, fresh)
    for trace_id, calls in by_trace.items():
        if len(calls) > 1 or trace_id in traces:
            _merge_nested(calls, traces.get(trace_id, []), window, counts, superseded)
    window.add_all(fresh)
    if superseded:
        return batch.with_columns(superseded=[*batch.superseded, *superseded])
    return batch


def _pair_unlinked(
    batch: SpanBatch,
    window: _Window,
    counts: Counter[str],
    superseded: list[GenAICall],
    fresh: list[GenAICall],
) -> None:
    """Records of instrumentations known never to make their span current (:data:`_UNLINKED_WRAPPERS`): the
    record of the same request by another instrumentation beneath them is not their child but a sibling, or
    the root of a trace of its own. Such a wrapper is paired with the record, of another dialect and the
    same service, whose interval it encloses and that reports the same provider, model, usage and response
    id (where both report one), and that started while the wrapper was open; among several, the closest in
    time. Concurrent calls alike in all that may
    pair crosswise, which leaves the count and the cost right. Either may come first: a wrapper looks among
    the recent records, and a record among the recent wrappers not yet paired."""
    wrappers, paired = window.wrappers, window.paired
    new: set[str] | None = None
    parents: set[str] | None = None
    for i, call in enumerate(batch.calls):
        if call is None or call.kind != LLM or call.duplicate_of is not None:
            continue
        if call.span_id in paired:
            continue
        is_wrapper = False
        if call.dialect in _WRAPPER_DIALECTS and batch.scope_name[i] in _UNLINKED_WRAPPERS:
            if parents is None:
                parents = {c.parent_span_id for c in fresh if c.kind == LLM and c.parent_span_id}
            is_wrapper = _breaks_context(batch.scope_name[i], batch.name[i], call, parents, window)
        if is_wrapper:
            wrappers[call.span_id] = call
        elif not wrappers:
            continue
        best: GenAICall | None = None
        for key in _nearby_keys(call):
            for other in window.recent_under(key):
                if other is call or (other.span_id in wrappers) == is_wrapper or other.span_id in paired:
                    continue
                wrapper, inner = (call, other) if is_wrapper else (other, call)
                if _encloses(wrapper, inner) and (best is None or _closer(call, other, best)):
                    best = other
        if best is None:
            continue
        wrapper, inner = (call, best) if is_wrapper else (best, call)
        del wrappers[wrapper.span_id]
        paired[inner.span_id] = wrapper.span_id
        window.paired_wrappers[wrapper.span_id] = inner.span_id
        if new is None:
            new = {c.span_id for c in fresh}
        # The wrapper's record is always the duplicate: the other record's call, whatever the tree beneath it
        # holds, is decided where that record is, so that two workers (each seeing the other's root) agree.
        keeper = _kept(inner, {c.span_id: c for c in window.traces.get(inner.trace_id, ())}).span_id
        if wrapper.span_id in new:
            wrapper.duplicate_of = keeper
            counts[f"duplicate.{wrapper.dialect}"] += 1
        elif wrapper.duplicate_of is None:
            wrapper.duplicate_of = keeper
            wrapper.flag(f"superseded by span {keeper}, the record it wraps, which arrived later")
            superseded.append(wrapper)
            counts["superseded"] += 1
        counts["unlinked_twins"] += 1


def _encloses(wrapper: GenAICall, inner: GenAICall) -> bool:
    # Both must report usage: without it (an HTTP-level record) nothing ties the pair to one request. The
    # wrapper's span is not current, so the other record hangs where the wrapper hangs: beside it under
    # the same parent, or, where the wrapper is a root, as the root of a trace of its own.
    parent = wrapper.parent_span_id
    return (
        inner.parent_span_id == parent
        and (parent is None or inner.trace_id == wrapper.trace_id)
        and type(inner.output_tokens) is int
        and type(wrapper.output_tokens) is int
        and inner.dialect != wrapper.dialect
        and inner.service_name == wrapper.service_name
        # the wrapper calls what it wraps, so that starts while the wrapper is open; a stream's records may
        # end in either order, each instrumentation closing its own when it sees the stream end
        and wrapper.start_time_ns <= inner.start_time_ns <= wrapper.end_time_ns
        and _same_request(wrapper, inner)
    )


def _breaks_context(
    scope: str | None, name: str, call: GenAICall, parents: set[str], window: _Window
) -> bool:
    """Whether ``call`` is the record of a wrapper that breaks context: of a scope and span name listed in
    :data:`_UNLINKED_WRAPPERS`, and with no record beneath it (one there shows this span was current;
    ``parents``: the parent span ids of the batch's LLM records)."""
    if scope not in _UNLINKED_WRAPPERS:
        return False
    names = _UNLINKED_WRAPPERS[scope]
    if names is not None and name not in names:
        return False
    span_id = call.span_id
    return span_id not in parents and all(
        c.parent_span_id != span_id for c in window.traces.get(call.trace_id, ())
    )


def _nearby_keys(call: GenAICall) -> tuple[tuple[Any, ...], ...]:
    """The keys of :attr:`_Window.recent` under which a twin of ``call`` may be: its output tokens may
    differ by one between dialects (OpenLLMetry's Anthropic streams); a record without them has none."""
    output = call.output_tokens
    if type(output) is not int:
        return ()
    return ((call.service_name, output), (call.service_name, output - 1), (call.service_name, output + 1))


def _closer(call: GenAICall, a: GenAICall, b: GenAICall) -> bool:
    return (abs(a.start_time_ns - call.start_time_ns), a.span_id) < (
        abs(b.start_time_ns - call.start_time_ns),
        b.span_id,
    )


def _remember_parents(batch: SpanBatch, by_trace: dict[str, list[GenAICall]], window: _Window) -> None:
    """The parent of every span that is no LLM record, of a trace that has LLM records here or in the window:
    a plain span between two records of one call may come in another batch than either (a record carries
    its own parent)."""
    parents, traces = window.parents, window.traces
    for trace_id, span_id, parent, call in zip(
        batch.trace_id, batch.span_id, batch.parent_span_id, batch.calls, strict=True
    ):
        if (call is None or call.kind != LLM) and (trace_id in by_trace or trace_id in traces):
            parents[span_id] = parent


def _merge_nested(
    calls: list[GenAICall],
    earlier: list[GenAICall],
    window: _Window,
    counts: Counter[str],
    superseded: list[GenAICall],
) -> None:
    """Pair each LLM record of a trace with the instrumentation record that wraps it, group the pairs, and
    keep the richest record of each group. Only pairs with a record of this batch are new: the others were
    settled when their last record came."""
    new = {c.span_id for c in calls}
    records = {c.span_id: c for c in calls}
    if earlier:
        records.update((c.span_id, c) for c in earlier)
    # each record's nearest LLM-record ancestor, and the records directly wrapped by each
    wrapped: dict[str, list[GenAICall]] = {}
    for call in records.values():
        parent = call.parent_span_id
        if parent is None:
            continue
        outer = records.get(parent)
        if outer is None:
            outer = _nearest_llm_ancestor(call, records, window)
        if outer is not None:
            wrapped.setdefault(outer.span_id, []).append(call)
    if not wrapped:
        return
    # union-find over twin pairs: an SDK span, the framework span around it and the HTTP span beneath it
    # are one call
    group_of: dict[str, str] = {}

    def root(span_id: str) -> str:
        while (up := group_of.get(span_id, span_id)) != span_id:
            span_id = up
        return span_id

    for outer_id, inner in wrapped.items():
        if outer_id not in new and all(c.span_id not in new for c in inner):
            continue
        outer = records[outer_id]
        twin, calls_beneath = _twin_among(outer, inner)
        if calls_beneath:
            _count_beneath(outer, calls_beneath, new, counts, superseded)
        elif twin is not None:
            # a record already marked as another's duplicate stands for that one's call
            a, b = root(_kept(outer, records).span_id), root(_kept(twin, records).span_id)
            if a != b:
                group_of[max(a, b)] = min(a, b)
    if not group_of:
        return
    # records already marked as duplicates of one of these records join its group (not a wrapper of
    # several calls, which is none of them)
    involved = set(group_of) | set(group_of.values())
    for call in records.values():
        keeper = call.duplicate_of
        if (
            keeper is not None
            and keeper in involved
            and call.span_id not in involved
            and not any(f.startswith(_SUMS_CALLS) for f in call.flags)
        ):
            a, b = root(keeper), call.span_id
            group_of[max(a, b)] = min(a, b)
    groups: dict[str, list[GenAICall]] = {}
    for span_id in list(group_of):
        groups.setdefault(root(span_id), []).append(records[span_id])
    for head, members in groups.items():
        if all(m.span_id != head for m in members):
            members.append(records[head])
        _keep_richest(members, new, counts, superseded, window.paired_wrappers)


def _kept(record: GenAICall, records: Mapping[str, GenAICall]) -> GenAICall:
    """The record kept for the call ``record`` is a duplicate of, among ``records`` (itself when it is none,
    or its keeper is not among them)."""
    for _ in range(4):
        keeper = record.duplicate_of
        if keeper is None or keeper not in records:
            break
        record = records[keeper]
    return record


def _nearest_llm_ancestor(
    call: GenAICall, records: dict[str, GenAICall], window: _Window
) -> GenAICall | None:
    parent = call.parent_span_id
    for _ in range(_MAX_HOPS):
        if parent is None:
            return None
        found = records.get(parent)
        if found is not None:
            return found
        known, parent = window.parent_of(parent)
        if not known:
            return None  # the chain is not (yet) known: a later batch may hold it
    return None


def _twin_among(outer: GenAICall, inner: list[GenAICall]) -> tuple[GenAICall | None, list[GenAICall]]:
    """Which of the records directly wrapped by ``outer`` is the same request: (the twin, or None; and the
    calls ``outer`` merely sums, when it wraps several).

    An SDK call that retried wraps every attempt; its span reports the outcome of the last, so a call that
    succeeded is the twin of the attempt that succeeded, and one that failed of the last attempt that
    failed. The other attempts are records of their own. A record over several successful requests (a
    framework's step that called twice) is not one request: the calls beneath it are counted, and it is
    not, unless exactly one of them reports its usage (then that one is its twin and the others calls of
    their own)."""
    # one record per call: two records beneath it may already be one call (a wrapper that breaks context
    # and the record it encloses); the one kept, where it is among them, stands for it
    calls: dict[str, GenAICall] = {}
    for c in sorted(inner, key=lambda c: c.duplicate_of is not None):
        calls.setdefault(c.duplicate_of or c.span_id, c)
    inner = list(calls.values())
    failed = outer.error_type is not None
    if not failed:
        alike = [c for c in inner if c.error_type is None and _same_target(outer, c)]
        if len(alike) > 1:
            exact = [c for c in alike if _same_request(outer, c) and c.output_tokens == outer.output_tokens]
            return (exact[0], []) if len(exact) == 1 else (None, alike)
    matching = [c for c in inner if _same_request(outer, c)]
    same_outcome = [c for c in matching if (c.error_type is not None) == failed]
    if not same_outcome:
        # an HTTP-level record knows no error of the SDK's (a response it could not parse, say)
        same_outcome = [c for c in matching if c.error_type is None]
    if not same_outcome:
        return None, []
    return max(same_outcome, key=lambda c: (c.end_time_ns, c.span_id)), []


def _count_beneath(
    outer: GenAICall,
    beneath: list[GenAICall],
    new: set[str],
    counts: Counter[str],
    superseded: list[GenAICall],
) -> None:
    """``outer`` sums the calls beneath it: they are counted, it is not."""
    if outer.duplicate_of is not None:
        return
    last = max(beneath, key=lambda c: (c.end_time_ns, c.span_id))
    outer.duplicate_of = last.span_id
    outer.flag(f"{_SUMS_CALLS}{len(beneath)} calls, each counted by its own record")
    if outer.span_id in new:
        counts["wrapper"] += 1
    else:
        superseded.append(outer)
        counts["superseded"] += 1


def _same_target(a: GenAICall, b: GenAICall) -> bool:
    """Whether the records name the same provider, model and operation, where both name them."""
    if a.provider and b.provider and a.provider != b.provider:
        return False
    if not _models_match(a.model, b.model):
        return False
    return not (a.operation and b.operation and a.operation != b.operation)


def _same_request(a: GenAICall, b: GenAICall) -> bool:
    """Whether nothing that both records report tells them apart."""
    if not _same_target(a, b):
        return False
    if a.response_id and b.response_id and a.response_id != b.response_id:
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
    a, b = _model_name(a), _model_name(b)
    # a response model is often the dated snapshot of the requested alias (gpt-4o -> gpt-4o-2024-08-06)
    return a == b or a.startswith(b) or b.startswith(a)


def _model_name(model: str) -> str:
    """A model id without what instrumentations of one call disagree on: a gateway's ``provider/`` prefix,
    and Bedrock's inference-profile region and vendor (``us.anthropic.claude-...``; OpenLLMetry drops
    the vendor, the others keep it)."""
    name = model.lower().rsplit("/", 1)[-1]
    head, _, rest = name.partition(".")
    if rest and head in _BEDROCK_REGIONS:
        name = rest
        head, _, rest = name.partition(".")
    if rest and head in _BEDROCK_VENDORS:
        name = rest
    return name


def _keep_richest(
    members: list[GenAICall],
    new: set[str],
    counts: Counter[str],
    superseded: list[GenAICall],
    wrappers: Mapping[str, str] | frozenset[str] = frozenset(),
) -> None:
    """Mark all records of one call but the richest as its duplicates (``new``: the span ids of this batch's
    records; ``wrappers``: those of context-breaking wrappers paired with the record they wrap, never kept).
    A record of an earlier batch that was passed on as the call, and is not the richest, is superseded; one
    stored as a duplicate stays one."""
    candidates = [
        m for m in members if (m.span_id in new or m.duplicate_of is None) and m.span_id not in wrappers
    ]
    if not candidates:
        return
    keep = candidates[0] if len(candidates) == 1 else max(candidates, key=_richness)
    keep.duplicate_of = None  # a record of this batch that an earlier pairing had marked
    for member in members:
        if member is keep:
            continue
        if member.span_id not in new:
            if member.duplicate_of is None:
                member.duplicate_of = keep.span_id
                member.flag(f"superseded by span {keep.span_id}, a richer record of the same call")
                superseded.append(member)
                counts["superseded"] += 1
            continue
        if member.duplicate_of is None:
            counts[f"duplicate.{member.dialect}"] += 1
        member.duplicate_of = keep.span_id
        if keep.span_id in new:
            # the kept record is priced after this: what only the duplicate reported counts (server address,
            # response id ...). One passed on in an earlier batch is left as it was stored.
            _absorb(keep, member)


def _richness(call: GenAICall) -> tuple[int, int, int, str]:
    # The span id settles a tie, so that the choice never depends on the order records arrive in.
    return (call.usage_count(), _DIALECT_RANK.get(call.dialect, 1), -call.start_time_ns, call.span_id)


def _absorb(keep: GenAICall, drop: GenAICall) -> None:
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
