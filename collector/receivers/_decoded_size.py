"""How much memory a decoded trace request takes, and the bound on it.

A protobuf request's decoded size is not a small multiple of its wire size when it is hostile: an empty
message is two bytes on the wire and a whole message once decoded. Measured with the upb runtime
(protobuf 7): about 177 bytes for a ``Span``, 87 for a ``Link``, 65 for a ``ResourceSpans`` or
``ScopeSpans``, 63 for an ``Event``, 55 for a ``KeyValue`` and 45 for an ``AnyValue``. A 20 MiB body of
empty spans decodes to 1.8 GB; counted at its wire size by the memory limiter, a few such bodies at once
took the process past 3 GB.

So the receivers decode one request at a time per process (:data:`DECODE_LOCK`: decoding holds the GIL
anyway, so nothing runs slower), and :func:`inspect` then prices the request at the sizes above, its
strings and numbers at their wire size. A request over :func:`limit` (:data:`MAX_EXPANSION` times its wire
size, plus :data:`SLACK_BYTES`) is refused and freed at once: real requests take 1.3 to 4 times their wire
size (tests/collector/test_decoded_size.py measures it), the smallest valid span (a trace id and a span id,
28 bytes) 7 times. A request that passes holds its
estimate, not its wire size, in the memory limiter until it is in the log; and nothing refused here reaches
the log, where each worker would decode it again.

The peak is therefore the memory limiter's bound plus one request being decoded (at worst about 90 times
the body-size limit, for a body of nothing but empty spans). Nesting below an attribute's value (arrays and
maps of values) is priced as one value plus its bytes, which such an attribute can exceed up to 20 times.
"""

from __future__ import annotations

import threading
from typing import NamedTuple

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from ._sink import INVALID_IDS

# bytes a decoded message takes, besides the strings and numbers it holds
RESOURCE_SPANS_BYTES = 65 + 65  # with its Resource
SCOPE_SPANS_BYTES = 65 + 65  # with its InstrumentationScope
SPAN_BYTES = 177
ATTRIBUTE_BYTES = 55 + 45  # a KeyValue and its AnyValue
EVENT_BYTES = 63
LINK_BYTES = 87

MAX_EXPANSION = 16
SLACK_BYTES = 1 << 20

# held while a request is decoded and inspected, by every receiver in the process
DECODE_LOCK = threading.Lock()


class Inspection(NamedTuple):
    decoded_bytes: int  # the estimate
    invalid_spans: int  # without a 16-byte trace id and an 8-byte span id: not stored (partial success)

    @property
    def reason(self) -> str:
        return INVALID_IDS.format(self.invalid_spans) if self.invalid_spans else ""


def limit(wire_bytes: int) -> int:
    """The most a request of ``wire_bytes`` may take decoded."""
    return MAX_EXPANSION * wire_bytes + SLACK_BYTES


def too_large(inspection: Inspection, wire_bytes: int) -> str | None:
    """Why a request of ``wire_bytes`` that inspected so is refused, or None."""
    if inspection.decoded_bytes <= limit(wire_bytes):
        return None
    return (
        f"the request would take about {inspection.decoded_bytes >> 20} MiB decoded, over {MAX_EXPANSION} "
        f"times its {wire_bytes} bytes: it is mostly empty messages"
    )


def inspect(request: ExportTraceServiceRequest, wire_bytes: int) -> Inspection:
    """Price ``request`` (which came as ``wire_bytes``) decoded, and count its spans without valid ids.

    Containers are counted before what they hold, so a flood of empty messages is told from its counts
    without a Python object made for each; the estimate stops growing once it is over :func:`limit`."""
    stop = limit(wire_bytes)
    total = wire_bytes + RESOURCE_SPANS_BYTES * len(request.resource_spans)
    invalid = 0
    for rs in request.resource_spans:
        if total > stop:
            break
        scope_spans = rs.scope_spans
        total += ATTRIBUTE_BYTES * len(rs.resource.attributes) + SCOPE_SPANS_BYTES * len(scope_spans)
        for ss in scope_spans:
            if total > stop:
                break
            spans = ss.spans
            total += ATTRIBUTE_BYTES * len(ss.scope.attributes) + SPAN_BYTES * len(spans)
            for span in spans:
                if total > stop:
                    break
                total += ATTRIBUTE_BYTES * len(span.attributes)
                if span.events:
                    total += sum(EVENT_BYTES + ATTRIBUTE_BYTES * len(e.attributes) for e in span.events)
                if span.links:
                    total += sum(LINK_BYTES + ATTRIBUTE_BYTES * len(k.attributes) for k in span.links)
                if len(span.trace_id) != 16 or len(span.span_id) != 8:
                    invalid += 1
    return Inspection(total, invalid)
