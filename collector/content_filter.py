"""Prompt and response content comes out of a request before the write-ahead log holds it.

The log keeps what a receiver acknowledged until the workers have processed it, and its segments stay on
disk until they rotate away, long after. Content the ``redact`` processor would remove later is therefore
removed here, before the request is logged, by the same rule (:mod:`costspan.processors.redact`: the
content attributes and the content events, whose attributes are emptied). So it never rests on disk.

When the pipeline keeps content (a ``redact`` processor with ``keep_content: true``), nothing is removed:
the processors and the forward exporters read the spans from the log, so the content stays in the log
until its segment is removed. Without any ``redact`` processor, content reaches no store (Parquet has no
content column, and spans are forwarded only through ``redact``), so it is removed here as well.

With ``input_hash_key_env``, the keyed hash of a span's input is computed here, while the text is still at
hand, and logged as the span's ``costspan.input.hash``, which the ``redact`` processor takes for the call.

Most requests carry no content (costspan's own instrumentation records none, and many SDKs record it only
when asked), and a request that came as protobuf is logged as the bytes it came as. So the bytes are first
searched for the names of content attributes and events; only a request that holds one of them is walked,
changed and encoded again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from costspan.processors import DEFAULT_CHAIN
from costspan.processors.redact import (
    CONTENT_EVENTS,
    CONTENT_KEYS,
    CONTENT_PREFIXES,
    input_hash,
    is_content_key,
    settings_of,
)
from costspan.semconv import attributes as A

from .otlp import attributes_of


def _trie(names: Iterable[str]) -> bytes:
    """A regular expression matching any of ``names`` (and whatever follows), as a trie: at each byte the
    engine tries the few branches that start with it, not every name."""
    tree: dict[int, Any] = {}
    for name in names:
        node = tree
        for byte in name.encode():
            node = node.setdefault(byte, {})
        node[-1] = {}  # a name ends here

    def pattern(node: dict[int, Any]) -> bytes:
        if -1 in node:
            return b""  # a name ends here: what follows does not matter
        branches = [re.escape(bytes([byte])) + pattern(child) for byte, child in sorted(node.items())]
        return branches[0] if len(branches) == 1 else b"(?:" + b"|".join(branches) + b")"

    return pattern(tree)


# A field's length is a varint: one byte up to 127, more for longer values.
_LENGTH = rb"[\x80-\xff]{0,2}[\x00-\x7f]"
# In OTLP's protobuf encoding an attribute key is field 1 of a KeyValue (tag byte 0x0a, then its length), a
# span event's name field 2 of an Event (tag 0x12). A request none of whose keys starts with a content
# attribute's name or prefix and none of whose events has a content event's name carries no content.
# The names are the redact processor's, so one added there is looked for here.
_CONTENT_KEY = re.compile(rb"\n" + _LENGTH + _trie((*CONTENT_KEYS, *CONTENT_PREFIXES)))
_CONTENT_EVENT = re.compile(rb"\x12" + _LENGTH + _trie(CONTENT_EVENTS))


class ContentFilter:
    """Applied to each request before it is logged (:meth:`costspan.collector.pipeline.Pipeline.submit`)."""

    def __init__(self, *, remove: bool, hash_key: bytes | None = None) -> None:
        self.remove = remove
        self.hash_key = hash_key

    @classmethod
    def for_chain(
        cls, processors: Mapping[str, Any] | None, order: Sequence[str] | None = None
    ) -> ContentFilter:
        """The filter for a processor chain in the configuration's shape (as ``chain_from_config`` takes
        it): content is removed unless one of its ``redact`` processors keeps it."""
        configs = processors or {}
        keep, hash_key = False, None
        names = list(order) if order is not None else list(DEFAULT_CHAIN)
        for name in names:
            if name.split("/", 1)[0] != "redact":
                continue
            settings = settings_of(configs.get(name) or {}, f"processors.{name}")
            keep = keep or settings.keep_content
            hash_key = hash_key or settings.hash_key
        return cls(remove=not keep, hash_key=hash_key)

    def before_log(
        self, request: ExportTraceServiceRequest, encoded: bytes | None
    ) -> tuple[ExportTraceServiceRequest, bytes | None]:
        """The request as it is to be logged, and its encoding (None: encode the request)."""
        if not self.remove:
            return request, encoded
        if encoded is not None and not may_carry_content(encoded):
            return request, encoded
        if remove_content(request, self.hash_key):
            return request, None  # changed: encoded again
        return request, encoded


def may_carry_content(encoded: bytes) -> bool:
    """Whether a request's protobuf encoding may hold content (False: it certainly holds none). A key that
    starts like a content key but is none (``gen_ai.prompt_x``) only costs the walk."""
    return _CONTENT_KEY.search(encoded) is not None or _CONTENT_EVENT.search(encoded) is not None


def remove_content(request: ExportTraceServiceRequest, hash_key: bytes | None = None) -> bool:
    """Remove content attributes from each span, and empty content events' attributes, in place (what the
    redact processor removes). With ``hash_key``, a span with input text gets its keyed hash as
    ``costspan.input.hash`` (replacing one the client sent). Returns whether anything changed."""
    changed = False
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                attributes = span.attributes
                drop = [i for i, kv in enumerate(attributes) if is_content_key(kv.key)]
                if drop:
                    # hashed while the text is still there
                    digest = input_hash(attributes_of(attributes), hash_key) if hash_key is not None else None
                    if digest is not None:
                        drop += [i for i, kv in enumerate(attributes) if kv.key == A.COSTSPAN_INPUT_HASH]
                    for i in sorted(drop, reverse=True):
                        del attributes[i]
                    if digest is not None:
                        attributes.add(key=A.COSTSPAN_INPUT_HASH).value.string_value = digest
                    changed = True
                for event in span.events:
                    if event.name in CONTENT_EVENTS and len(event.attributes):
                        del event.attributes[:]
                        changed = True
    return changed
