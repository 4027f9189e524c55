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
    serve.add_argument(
        "--token",
        help="require this bearer token on every receiver, or any of several: old,new ($COSTSPAN_TOKEN)",
    )
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
    from .receivers._auth import parse_tokens

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
    if args.token is not None:
        checks.append(("--token", parse_tokens, args.token))
    for flag, check, value in checks:
        try:
            check(value)
        except ValueError as exc:
            return f"{flag}: {exc}"
    return None


def run(args: argparse.Namespace) -> int:
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
    try:
        config.bearer_tokens = _tokens(args.token, config.bearer_tokens)
    except ValueError as exc:
        print(f"costspan serve: $COSTSPAN_TOKEN: {exc}", file=sys.stderr)
        return 2
    config.workers = args.workers if args.workers is not None else config.workers
    try:
        return asyncio.run(_serve(config))
    except KeyboardInterrupt:
        return 0


def _tokens(flag: str | None, configured: tuple[str, ...]) -> tuple[str, ...]:
    """The receivers' bearer tokens: the flag's, else $COSTSPAN_TOKEN's, else the file's."""
    import os

    from .receivers._auth import parse_tokens

    return parse_tokens(flag or os.environ.get("COSTSPAN_TOKEN") or "") or configured


def _guard_admin(admin: Any, tokens: tuple[str, ...]) -> None:
    """Every admin route but the probes asks for one of ``tokens`` (when there are any). The probes stay
    open: they tell only whether the collector is up and ready, and a kubelet or load balancer should not
    have to hold the secret that guards the metrics."""
    from fastapi import Request, Response

    from .receivers._auth import authorized

    if not tokens:
        return

    @admin.middleware("http")
    async def bearer_token(request: Request, call_next: Callable[[Request], Any]) -> Any:
        if request.url.path in ("/healthz", "/readyz") or authorized(
            request.headers.get("authorization"), tokens
        ):
            return await call_next(request)
        return Response(
            "missing or wrong bearer token\n", status_code=401, headers={"WWW-Authenticate": "Bearer"}
        )


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
    from .tls import describe

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
    tokens = config.bearer_tokens
    http_settings = ReceiverSettings(
        bearer_tokens=tokens, max_body_bytes=config.max_body_bytes, limiter=limiter
    )
    grpc_settings = GrpcSettings(
        bearer_tokens=tokens, max_message_bytes=config.max_body_bytes, limiter=limiter
    )
    registry.register(HealthMetrics(pipeline, limiter, (http_settings.counts, grpc_settings.counts)))

    admin = FastAPI(title="costspan admin", docs_url=None, redoc_url=None, openapi_url=None)
    _guard_admin(admin, config.admin_bearer_tokens)
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
        grpc_server, _ = create_server(
            pipeline.submit, config.grpc_endpoint, grpc_settings, tls=config.grpc_tls
        )
        await grpc_server.start()
    apps = [(admin, config.admin_endpoint, config.admin_tls)]
    if config.http_endpoint:
        apps.append((create_app(pipeline.submit, http_settings), config.http_endpoint, config.http_tls))
    servers = []
    for app, address, tls in apps:
        host, port = _split(address)
        options = tls.uvicorn_options() if tls is not None else {}
        server_config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", lifespan="off", **options
        )
        if tls is not None:
            tls.complete(server_config)
        server = uvicorn.Server(server_config)
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
        describe(config.grpc_endpoint, config.grpc_tls),
        describe(config.http_endpoint, config.http_tls),
        describe(config.admin_endpoint, config.admin_tls),
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
