"""``costspan serve``: the collector on its embedded defaults, no external service needed.

OTLP/gRPC on 127.0.0.1:4317, OTLP/HTTP on 127.0.0.1:4318, the admin HTTP server on 127.0.0.1:9464
(``/metrics`` for Prometheus, ``/healthz``, ``/readyz``), data in ``./costspan-data``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("costspan")


def register(subparsers: Any) -> None:
    serve = subparsers.add_parser(
        "serve", help="run the collector (OTLP gRPC :4317, HTTP :4318, admin :9464)"
    )
    serve.add_argument("--config", help="collector configuration (YAML; see 'costspan config check')")
    serve.add_argument(
        "--data-dir", help="where data is kept (default: $COSTSPAN_DATA_DIR or ./costspan-data)"
    )
    serve.add_argument("--grpc-address", help="OTLP/gRPC host:port (default 127.0.0.1:4317)")
    serve.add_argument("--http-address", help="OTLP/HTTP host:port (default 127.0.0.1:4318)")
    serve.add_argument("--admin-address", help="admin HTTP host:port (default 127.0.0.1:9464)")
    serve.add_argument("--token", help="require this bearer token on every receiver ($COSTSPAN_TOKEN)")
    serve.add_argument(
        "--workers", type=int, help="pipeline worker processes (default: one per core, at most 8)"
    )
    serve.set_defaults(handler=run)


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host or "127.0.0.1", int(port)


def _flag_mistake(args: argparse.Namespace) -> str | None:
    """The first flag whose value the configuration file would refuse, and why."""
    from .config import listen_address, worker_count

    checks: list[tuple[str, Callable[[Any], Any], Any]] = [
        (flag, listen_address, value)
        for flag, value in (
            ("--grpc-address", args.grpc_address),
            ("--http-address", args.http_address),
            ("--admin-address", args.admin_address),
        )
        if value is not None
    ]
    if args.workers is not None:
        checks.append(("--workers", worker_count, args.workers))
    for flag, check, value in checks:
        try:
            check(value)
        except ValueError as exc:
            return f"{flag}: {exc}"
    return None


def run(args: argparse.Namespace) -> int:
    import os
    import sys

    from .config import CollectorConfig, ConfigFileError, load_config

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.config) if args.config else CollectorConfig()
    except ConfigFileError as exc:
        print(f"costspan serve: {exc}", file=sys.stderr)
        return 2
    # flags win over the file, the file over the defaults; each flag is checked as the file's key is
    mistake = _flag_mistake(args)
    if mistake is not None:
        print(f"costspan serve: {mistake}", file=sys.stderr)
        return 2
    config.data_dir = args.data_dir or config.data_dir
    config.grpc_endpoint = args.grpc_address or config.grpc_endpoint
    config.http_endpoint = args.http_address or config.http_endpoint
    config.admin_endpoint = args.admin_address or config.admin_endpoint
    config.bearer_token = args.token or os.environ.get("COSTSPAN_TOKEN") or config.bearer_token
    config.workers = args.workers if args.workers is not None else config.workers
    try:
        return asyncio.run(_serve(config))
    except KeyboardInterrupt:
        return 0


async def _serve(config: Any) -> int:
    import uvicorn
    from fastapi import FastAPI, Response
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from costspan.exporters.compaction import Upkeep
    from costspan.exporters.otlp_forward import OTLPForwarder
    from costspan.exporters.prometheus import CostMetrics
    from costspan.pricing import data_dir

    from .health import HealthMetrics
    from .pipeline import Pipeline
    from .queued_exporter import QueuedExporter
    from .receivers._limiter import MemoryLimiter
    from .receivers.otlp_grpc import GrpcSettings, create_server
    from .receivers.otlp_http import ReceiverSettings, create_app
    from .runtime import configure_gc

    directory = data_dir(config.data_dir)
    forwarders = [
        QueuedExporter(
            f.name,
            OTLPForwarder(f.settings),
            Path(directory) / "queues" / f.name.replace("/", "-"),
            retry=f.retry,
            max_bytes=f.max_queue_bytes,
        )
        for f in config.forward
    ]
    pipeline = Pipeline(
        directory,
        config.processors,
        config.pipeline,
        workers=config.workers,
        metrics=CostMetrics(limits=config.label_limits),
        max_pending_bytes=config.max_wal_pending_bytes,
        exporters=forwarders,
    )
    limiter = MemoryLimiter(config.max_in_flight_bytes)
    registry = pipeline.metrics.registry
    token = config.bearer_token
    http_settings = ReceiverSettings(
        bearer_token=token, max_body_bytes=config.max_body_bytes, limiter=limiter
    )
    grpc_settings = GrpcSettings(bearer_token=token, max_message_bytes=config.max_body_bytes, limiter=limiter)
    registry.register(HealthMetrics(pipeline, limiter, (http_settings.counts, grpc_settings.counts)))

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
        if pipeline.disk_failing:  # its log cannot be written: requests are refused (retryably)
            return Response('{"status": "disk_failing"}', status_code=503, media_type="application/json")
        if ready.is_set():
            return Response('{"status": "ready"}', media_type="application/json")
        return Response('{"status": "starting"}', status_code=503, media_type="application/json")

    # compaction of small files and retention, in the background
    upkeep = Upkeep(
        directory,
        interval_s=config.compaction_interval_s,
        retention_days=config.retention_days,
        settled=pipeline.settled,
    )

    configure_gc()
    pipeline.start()
    upkeep.start()
    grpc_server = None
    if config.grpc_endpoint:
        grpc_server, _ = create_server(pipeline.submit, config.grpc_endpoint, grpc_settings)
        await grpc_server.start()
    apps = [(admin, config.admin_endpoint)]
    if config.http_endpoint:
        apps.append((create_app(pipeline.submit, http_settings), config.http_endpoint))
    servers = []
    for app, address in apps:
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
        "serving: OTLP/gRPC %s, OTLP/HTTP %s, admin %s, data %s, %d pipeline workers%s",
        config.grpc_endpoint or "off",
        config.http_endpoint or "off",
        config.admin_endpoint,
        directory,
        pipeline.workers,
        "".join(f", forwarding to {f.settings.endpoint} ({f.name})" for f in config.forward),
    )
    await stop.wait()
    log.info("stopping")
    for s in servers:
        s.should_exit = True
    if grpc_server is not None:
        await grpc_server.stop(5)
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.to_thread(pipeline.stop)
    await asyncio.to_thread(upkeep.stop)
    return 0
