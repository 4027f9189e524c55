"""``costspan serve``: the collector on its embedded defaults, no external service needed.

OTLP/gRPC on 127.0.0.1:4317, OTLP/HTTP on 127.0.0.1:4318, the admin HTTP server on 127.0.0.1:9464
(``/metrics`` for Prometheus, ``/healthz``, ``/readyz``), data in ``./costspan-data``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from typing import Any

log = logging.getLogger("costspan")

DEFAULT_GRPC = "127.0.0.1:4317"
DEFAULT_HTTP = "127.0.0.1:4318"
DEFAULT_ADMIN = "127.0.0.1:9464"


def register(subparsers: Any) -> None:
    serve = subparsers.add_parser(
        "serve", help="run the collector (OTLP gRPC :4317, HTTP :4318, admin :9464)"
    )
    serve.add_argument(
        "--data-dir", help="where data is kept (default: $COSTSPAN_DATA_DIR or ./costspan-data)"
    )
    serve.add_argument("--grpc-address", default=DEFAULT_GRPC, help=f"OTLP/gRPC (default {DEFAULT_GRPC})")
    serve.add_argument("--http-address", default=DEFAULT_HTTP, help=f"OTLP/HTTP (default {DEFAULT_HTTP})")
    serve.add_argument("--admin-address", default=DEFAULT_ADMIN, help=f"admin HTTP (default {DEFAULT_ADMIN})")
    serve.add_argument("--token", help="require this bearer token on every receiver ($COSTSPAN_TOKEN)")
    serve.set_defaults(handler=run)


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host or "127.0.0.1", int(port)


def run(args: argparse.Namespace) -> int:
    import os

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(_serve(args, args.token or os.environ.get("COSTSPAN_TOKEN")))
    except KeyboardInterrupt:
        return 0


async def _serve(args: argparse.Namespace, token: str | None) -> int:
    import uvicorn
    from fastapi import FastAPI, Response
    from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest

    from costspan.pricing import data_dir

    from .pipeline import Pipeline
    from .receivers.otlp_grpc import GrpcSettings, create_server
    from .receivers.otlp_http import ReceiverSettings, create_app
    from .runtime import configure_gc

    directory = data_dir(args.data_dir)
    pipeline = Pipeline(directory)
    registry = pipeline.metrics.registry
    http_settings = ReceiverSettings(bearer_token=token)
    grpc_settings = GrpcSettings(bearer_token=token)
    Gauge(
        "costspan_collector_wal_bytes", "Unprocessed bytes in the write-ahead log.", registry=registry
    ).set_function(lambda: pipeline.wal.pending_bytes)
    Gauge(
        "costspan_collector_spans_processed", "Spans processed since start.", registry=registry
    ).set_function(lambda: pipeline.counts["spans_processed"])
    Gauge(
        "costspan_collector_requests_refused",
        "Requests refused for backpressure since start.",
        registry=registry,
    ).set_function(lambda: pipeline.counts["refused_backpressure"])

    admin = FastAPI(title="costspan admin", docs_url=None, redoc_url=None, openapi_url=None)
    ready = asyncio.Event()

    @admin.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @admin.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @admin.get("/readyz")
    def readyz() -> Response:
        if ready.is_set():
            return Response('{"status": "ready"}', media_type="application/json")
        return Response('{"status": "starting"}', status_code=503, media_type="application/json")

    configure_gc()
    pipeline.start()
    grpc_server, _ = create_server(pipeline.submit, args.grpc_address, grpc_settings)
    await grpc_server.start()
    servers = []
    for app, address in (
        (create_app(pipeline.submit, http_settings), args.http_address),
        (admin, args.admin_address),
    ):
        host, port = _split(address)
        server = uvicorn.Server(
            uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
        )
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # ours stop everything
        servers.append(server)
    tasks = [asyncio.create_task(s.serve()) for s in servers]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    while not all(s.started for s in servers):
        if any(t.done() for t in tasks):
            break
        await asyncio.sleep(0.05)
    ready.set()
    log.info(
        "serving: OTLP/gRPC %s, OTLP/HTTP %s, admin %s, data %s",
        args.grpc_address,
        args.http_address,
        args.admin_address,
        directory,
    )
    await stop.wait()
    log.info("stopping")
    for s in servers:
        s.should_exit = True
    await grpc_server.stop(5)
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.to_thread(pipeline.stop)
    return 0
