"""Which plain spans ``genai_spans`` keeps: those on the path from a GenAI span up to its GenAI ancestors.

An LLM call is often not the direct child of its agent: a framework's own span, an HTTP server span or a
function span from another instrumentation may lie between them. The rollups walk parent ids, so every span
on that path has to be stored. Storing every span of every trace would store all of an application's
tracing; the collector keeps only the ancestors of GenAI spans, as rows of kind ``other`` ("bridge" spans,
named by their span name). The root span of a trace with GenAI spans in it is one of them, so the trace's
root service is known too.

A child span ends, and so is exported, before its parent: in the same export or an earlier one (the SDK's
batch span processor exports finished spans in order). The parent ids that a batch's GenAI spans point to,
and that the batch does not hold, are remembered in a bounded window; a later span with one of those ids is
kept, and its own parent wanted in turn. Within a batch the same walk runs until nothing is added.

What this cannot see: a parent exported before its child (asynchronous code that ends a parent early), or
one that arrives after the window has forgotten it or after a collector restart. Such a call then rolls up
to the ancestors that were stored; ``cost_by_trace`` and every sum over ``llm_calls`` still count it.
"""

from __future__ import annotations

from costspan.processors import SpanBatch
from costspan.semconv import OTHER, GenAICall

DEFAULT_WINDOW = 200_000  # wanted parent ids remembered across batches
NO_DIALECT = "none"  # a bridge span speaks no GenAI dialect
_SERVICE_NAME = "service.name"
_STATUS_ERROR = 2  # OTLP StatusCode ERROR


class AncestryWindow:
    """Remembers the parents that stored GenAI spans point to, and picks them out of later batches."""

    def __init__(self, max_wanted: int = DEFAULT_WINDOW) -> None:
        self.max_wanted = max_wanted
        # (trace id, span id) wanted; a plain dict keeps insertion order, so the oldest entry is the first
        self._wanted: dict[tuple[str, str], None] = {}

    def __len__(self) -> int:
        return len(self._wanted)

    def bridge_spans(self, batch: SpanBatch) -> list[GenAICall]:
        """Records (kind ``other``) for the batch's plain spans that are ancestors of GenAI spans."""
        calls = batch.calls
        index = {(t, s): i for i, (t, s) in enumerate(zip(batch.trace_id, batch.span_id, strict=True))}
        wanted = self._wanted
        queue = [(c.trace_id, c.parent_span_id) for c in calls if c is not None and c.parent_span_id]
        if wanted:
            queue.extend(key for key in index if key in wanted)
        bridges: list[GenAICall] = []
        kept: set[int] = set()
        while queue:
            key = queue.pop()
            i = index.get(key)
            if i is None:
                self._want(key)
                continue
            wanted.pop(key, None)
            if calls[i] is not None or i in kept:
                continue  # a GenAI span is stored anyway, and its parent is already wanted
            kept.add(i)
            bridges.append(self._record(batch, i))
            parent = batch.parent_span_id[i]
            if parent:
                queue.append((key[0], parent))
        return bridges

    def _want(self, key: tuple[str, str]) -> None:
        wanted = self._wanted
        if key in wanted:
            return
        if len(wanted) >= self.max_wanted:
            del wanted[next(iter(wanted))]
        wanted[key] = None

    @staticmethod
    def _record(batch: SpanBatch, i: int) -> GenAICall:
        service = batch.resource[i].get(_SERVICE_NAME)
        record = GenAICall(
            batch.trace_id[i],
            batch.span_id[i],
            batch.parent_span_id[i],
            batch.start_ns[i],
            batch.end_ns[i],
            service if isinstance(service, str) else None,
            OTHER,
            NO_DIALECT,
        )
        record.name = batch.name[i]
        if batch.status_code[i] == _STATUS_ERROR:
            record.error_type = "error"
        return record
