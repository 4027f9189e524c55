"""The batch the processor chain works on: decoded spans as parallel columns.

Receivers decode OTLP into a :class:`SpanBatch`; each processor reads columns and returns a batch with
columns added or replaced; exporters read the ``calls`` column. Resource attributes are stored once per
resource and shared by its spans.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from costspan.semconv import GenAICall

# Equal shapes get equal numbers, in every batch and chain of the process. A number is never given to
# another shape, even after the table is let go (it is bounded), so a plan cached under it stays right.
_SHAPE_IDS: dict[tuple[str, ...], int] = {}
_SHAPE_ID_LIMIT = 50_000
_next_shape_id = itertools.count()


def shape_ids(shapes: list[tuple[str, ...]]) -> list[int]:
    """The number of each attribute shape."""
    known = _SHAPE_IDS
    if len(known) > _SHAPE_ID_LIMIT:
        known.clear()
    out: list[int] = []
    append = out.append
    for shape in shapes:
        number = known.get(shape)
        if number is None:
            number = known[shape] = next(_next_shape_id)
        append(number)
    return out


@dataclass(slots=True)
class Span:
    """One span, for building a batch from rows (tests, the events endpoint, replays)."""

    trace_id: str
    span_id: str
    name: str
    start_ns: int
    end_ns: int
    attributes: Mapping[str, Any] = field(default_factory=dict)
    resource: Mapping[str, Any] = field(default_factory=dict)
    parent_span_id: str | None = None
    kind: int = 0  # OTLP SpanKind: 0 unspecified, 1 internal, 2 server, 3 client ...
    status_code: int = 0  # OTLP StatusCode: 0 unset, 1 ok, 2 error
    scope_name: str | None = None
    scope_version: str | None = None
    events: tuple[tuple[str, Mapping[str, Any]], ...] = ()


# The columns that hold span data, as receivers decode them (the others are added by processors).
SPAN_COLUMNS = (
    "trace_id",
    "span_id",
    "parent_span_id",
    "name",
    "kind",
    "start_ns",
    "end_ns",
    "status_code",
    "scope_name",
    "scope_version",
    "attributes",
    "resource",
    "events",
)


@dataclass(slots=True)
class SpanBatch:
    trace_id: list[str]
    span_id: list[str]
    parent_span_id: list[str | None]
    name: list[str]
    kind: list[int]
    start_ns: list[int]
    end_ns: list[int]
    status_code: list[int]
    scope_name: list[str | None]
    scope_version: list[str | None]
    attributes: list[Mapping[str, Any]]
    resource: list[Mapping[str, Any]]
    events: list[tuple[tuple[str, Mapping[str, Any]], ...]]
    # the canonical GenAI record of each span (None: not a GenAI span); filled by the normalize processor
    calls: list[GenAICall | None] = field(default_factory=list)
    # tuple(attributes) of each span, once computed, and its number (:func:`shape_ids`): processors cache
    # per-shape plans under the number, which is cheaper to look up than the tuple of keys
    shapes: list[tuple[str, ...]] | None = None
    shape_ids: list[int] | None = None
    # calls stored as calls in an earlier batch, now with duplicate_of set: a richer record of the same call
    # is in this batch (filled by dedupe); storage moves their rows to the duplicates and puts it in place
    superseded: list[GenAICall] = field(default_factory=list)

    def shape(self, i: int) -> tuple[str, ...]:
        return self.shapes[i] if self.shapes is not None else tuple(self.attributes[i])

    def shape_key(self, i: int) -> int | tuple[str, ...]:
        """What a processor caches span ``i``'s per-shape plan under."""
        return self.shape_ids[i] if self.shape_ids is not None else self.shape(i)

    def __len__(self) -> int:
        return len(self.span_id)

    @classmethod
    def from_spans(cls, spans: Iterable[Span]) -> SpanBatch:
        rows = list(spans)
        return cls(
            trace_id=[s.trace_id for s in rows],
            span_id=[s.span_id for s in rows],
            parent_span_id=[s.parent_span_id for s in rows],
            name=[s.name for s in rows],
            kind=[s.kind for s in rows],
            start_ns=[s.start_ns for s in rows],
            end_ns=[s.end_ns for s in rows],
            status_code=[s.status_code for s in rows],
            scope_name=[s.scope_name for s in rows],
            scope_version=[s.scope_version for s in rows],
            attributes=[s.attributes for s in rows],
            resource=[s.resource for s in rows],
            events=[s.events for s in rows],
            calls=[None] * len(rows),
        )

    def take(self, rows: list[int]) -> SpanBatch:
        """The spans at these positions, as a new batch (before normalize: calls are reset)."""
        columns = {name: [getattr(self, name)[i] for i in rows] for name in SPAN_COLUMNS}
        return SpanBatch(**columns, calls=[None] * len(rows))

    def head(self, n: int) -> SpanBatch:
        """The first ``n`` spans, as they are (after processing too: their records kept)."""
        columns = {name: getattr(self, name)[:n] for name in SPAN_COLUMNS}
        return SpanBatch(
            **columns,
            calls=self.calls[:n],
            shapes=None if self.shapes is None else self.shapes[:n],
            shape_ids=None if self.shape_ids is None else self.shape_ids[:n],
            superseded=self.superseded,
        )

    @classmethod
    def concat(cls, batches: list[SpanBatch]) -> SpanBatch:
        """The spans of several batches as one (before normalize: calls are reset)."""
        if len(batches) == 1:
            return batches[0]
        columns = {name: [v for b in batches for v in getattr(b, name)] for name in SPAN_COLUMNS}
        return cls(**columns, calls=[None] * len(columns["span_id"]))

    def with_columns(self, **columns: Any) -> SpanBatch:
        """A batch sharing this one's columns but for those given (a processor's output)."""
        return replace(self, **columns)

    def llm_calls(self) -> list[GenAICall]:
        return [c for c in self.calls if c is not None and c.kind == "llm"]
