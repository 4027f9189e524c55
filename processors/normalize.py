"""normalize: every span of every GenAI dialect to one canonical record (``SpanBatch.calls``).

Spans that are not about GenAI get ``None``. A span that cannot be read (it should not happen: the
conversion only reads) is counted under ``errors`` and left out; it never stops the batch.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from typing import Any

from costspan.semconv import LLM, GenAICall, to_call

from ._base import Processor, check_keys, register
from ._batch import SpanBatch, shape_ids

log = logging.getLogger(__name__)


def normalize(batch: SpanBatch, counts: Counter[str]) -> SpanBatch:
    calls: list[GenAICall | None] = []
    append = calls.append
    shapes = [tuple(attrs) for attrs in batch.attributes]
    ids = shape_ids(shapes)
    kinds: Counter[tuple[str, str]] = Counter()
    status_code = batch.status_code
    for i, attrs in enumerate(batch.attributes):
        try:
            call = to_call(
                batch.trace_id[i],
                batch.span_id[i],
                batch.parent_span_id[i],
                batch.start_ns[i],
                batch.end_ns[i],
                batch.scope_name[i],
                attrs,
                batch.resource[i],
                shapes[i],
                ids[i],
            )
        except Exception:  # a conversion bug must not lose the batch
            log.debug("normalize: span %s could not be read", batch.span_id[i], exc_info=True)
            counts["errors"] += 1
            call = None
        if call is not None:
            kinds[call.kind, call.dialect] += 1
            if call.error_type is None and status_code[i] == 2:
                call.error_type = "error"
            if call.name is None and call.kind != LLM:
                # an agent, tool or workflow without a name attribute (OpenInference's agents and chains)
                # is named by its span
                call.name = batch.name[i]
            if call.flags:
                counts["flagged"] += 1
        append(call)
    for (kind, dialect), n in kinds.items():
        counts["kind." + kind] += n
        counts["dialect." + dialect] += n
    counts["spans"] += len(calls)
    return batch.with_columns(calls=calls, shapes=shapes, shape_ids=ids)


@register("normalize")
def _factory(config: Mapping[str, Any], path: str) -> Processor:
    check_keys(config, set(), path)
    return Processor("normalize", normalize)
