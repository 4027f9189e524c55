"""Beside another GenAI instrumentation, each call is counted once: costspan steps aside for calls another
instrumentation already traces, and the collector's real processor chain counts every call once, priced
and attributed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from costspan.processors import SpanBatch, build_chain
from costspan.processors._batch import Span
from tests.support.provider_server import ProviderServer

ROOT = Path(__file__).resolve().parents[2]


def _run(name: str, server: ProviderServer) -> list[dict]:
    out = subprocess.run(
        [sys.executable, "-m", "tests.instrumentation.apps.beside_other", name, server.base_url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental"},
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


OTHERS = [
    "openllmetry_openai",
    "openinference_openai",
    "otel_genai_openai",
    "openllmetry_anthropic",
    "anthropic_native",
]


@pytest.mark.parametrize("name", OTHERS)
def test_each_call_counted_once(name):
    with ProviderServer() as server:
        spans = _run(name, server)
        calls = len(server.requests)
    assert calls == 2
    others = [s for s in spans if s["scope_name"] != "costspan.instrumentation"]
    assert others, "the other instrumentation traced nothing"
    batch = build_chain()(SpanBatch.from_spans(Span(**s) for s in spans))
    counted = [c for c in batch.llm_calls() if c.duplicate_of is None]
    assert len(counted) == calls, [(c.dialect, c.span_id, c.duplicate_of) for c in batch.llm_calls()]
    for call in counted:
        assert (call.team, call.feature) == ("billing", "invoices")
        assert call.pricing_status in ("priced", "no_usage"), call.pricing_status
    assert all(c.input_tokens and c.output_tokens for c in counted)  # streams included
    # costspan traced no call the other instrumentation traced with its usage
    ours = [s for s in spans if s["scope_name"] == "costspan.instrumentation"]
    assert all(s["attributes"]["gen_ai.request.stream"] for s in ours)
    assert len(ours) <= 1
