"""Which plain spans genai_spans keeps: the ancestors of GenAI spans, across batches, in a bounded window."""

from __future__ import annotations

from costspan.exporters.ancestry import AncestryWindow
from costspan.processors import SpanBatch, build_chain
from tests.exporters.test_rollups import call, span


def bridges(window, chain, spans):
    return [(r.span_id[:2], r.kind, r.name) for r in window.bridge_spans(chain(SpanBatch.from_spans(spans)))]


def test_only_ancestors_are_kept_and_the_window_is_bounded():
    chain, window = build_chain(), AncestryWindow(max_wanted=2)
    # three calls whose parents have not arrived yet, in three exports
    for n in (1, 2, 3):
        assert bridges(window, chain, [call(f"c{n}", f"b{n}", n, "gpt-4o", 1, 1)]) == []
    assert len(window) == 2  # b1, the oldest, is forgotten
    # the parents arrive, with a sibling that has no GenAI span beneath it and a grandparent of b3
    later = [
        span("b1", None, "forgotten", 3),
        span("b2", None, "request 2", 4),
        span("b3", "r3", "step", 5),
        span("d1", None, "unrelated", 6),
        span("r3", None, "request 3", 7),
    ]
    assert sorted(bridges(window, chain, later)) == [
        ("b2", "other", "request 2"),
        ("b3", "other", "step"),
        ("r3", "other", "request 3"),
    ]
    assert len(window) == 0


def test_a_cycle_in_parent_ids_ends():
    chain, window = build_chain(), AncestryWindow()
    looped = [call("c1", "b1", 0, "gpt-4o", 1, 1), span("b1", "b2", "one", 1), span("b2", "b1", "two", 2)]
    assert sorted(bridges(window, chain, looped)) == [("b1", "other", "one"), ("b2", "other", "two")]
