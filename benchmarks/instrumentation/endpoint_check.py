"""What costspan's transport hook costs a request that is no LLM call: a few seconds of ``timeit``.

    .venv/bin/python benchmarks/instrumentation/endpoint_check.py

Prints nanoseconds per request (the best of seven rounds) of the endpoint lookup (a cache hit, and a miss:
a path with an id in it, never seen before) and of ``Hook.start`` on whole requests: a GET, a POST to an
application's API, and POSTs to an application's own ``.../v1/messages`` that only the body tells apart
from Anthropic's API. On a shared machine, run it twice.
"""

from __future__ import annotations

import itertools
import timeit
from typing import Any

import httpx
from opentelemetry import trace

from costspan.instrumentation._endpoints import EndpointTable
from costspan.instrumentation._transport import Hook

ROUNDS = 7


def per_call_ns(stmt: str, number: int, **names: Any) -> float:
    return min(timeit.repeat(stmt, number=number, repeat=ROUNDS, globals=names)) / number * 1e9


def main() -> None:
    table = EndpointTable()
    ids = itertools.count()
    print("endpoint lookup (ns per request)")
    hit = per_call_ns("match('api.github.com', None, '/repos/x/y')", 200_000, match=table.match)
    public = per_call_ns(
        "match('api.github.com', None, f'/repos/x/{next(ids)}')", 50_000, match=table.match, ids=ids
    )
    private = per_call_ns(
        "match('10.0.0.7', 8080, f'/api/orders/{next(ids)}')", 50_000, match=table.match, ids=ids
    )
    print(f"  cache hit {hit:6.0f}   miss, public host {public:6.0f}   miss, private host {private:6.0f}")

    hook = Hook(trace.get_tracer("endpoint-check"), None, table, True)
    requests = {
        "GET https://api.github.com/repos/x/y": httpx.Request("GET", "https://api.github.com/repos/x/y"),
        "POST http://10.0.0.7:8080/api/orders": httpx.Request(
            "POST", "http://10.0.0.7:8080/api/orders", json={"sku": "a", "qty": 2}
        ),
        "POST .../app/v1/messages, no model": httpx.Request(
            "POST", "https://chat.example/app/v1/messages", json={"channel": "general", "messages": ["hi"]}
        ),
        "POST .../app/v1/messages, a model, no max_tokens": httpx.Request(
            "POST", "https://chat.example/app/v1/messages", json={"model": "x", "messages": ["hi"]}
        ),
    }
    print("Hook.start on requests that are no LLM calls (ns per request)")
    for name, request in requests.items():
        assert hook.start(request) is None, name
        print(
            f"  {name:52s} {per_call_ns('start(request)', 100_000, start=hook.start, request=request):6.0f}"
        )


if __name__ == "__main__":
    main()
