"""``POST /v1/events``: a simple JSON event becomes the span the rest of the pipeline reads."""

from __future__ import annotations

from costspan.collector.receivers.events import events_to_request
from costspan.semconv import attributes as A


def _attributes(event: dict) -> dict[str, object]:
    (span,) = events_to_request(event).resource_spans[0].scope_spans[0].spans
    return {kv.key: getattr(kv.value, kv.value.WhichOneof("value")) for kv in span.attributes}


def test_an_events_model_is_its_response_model_unless_it_names_another():
    plain = _attributes({"model": "gpt-4o", "input_tokens": 10})
    assert plain[A.GEN_AI_REQUEST_MODEL] == plain[A.GEN_AI_RESPONSE_MODEL] == "gpt-4o"
    dated = _attributes({"model": "gpt-4o", "response_model": "gpt-4o-2024-08-06"})
    assert dated[A.GEN_AI_REQUEST_MODEL] == "gpt-4o"
    assert dated[A.GEN_AI_RESPONSE_MODEL] == "gpt-4o-2024-08-06"
