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


class StartError(Exception):
    """An operator's mistake found at start (the data directory): one line, exit 2."""


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
        for line in str(exc).splitlines():  # one line per mistake (config.ConfigErrors)
            print(f"costspan serve: {line}", file=sys.stderr)
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
    from .listeners import ListenError

    try:
        return asyncio.run(_serve(config))
    except KeyboardInterrupt:
        return 0
    except (ListenError, StartError) as exc:  # before anything was accepted: nothing to stop
        print(f"costspan serve: {exc}", file=sys.stderr)
        return 2


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
        if (
            request.url.path in ("/healthz", "/readyz")
            or _console_path(request.url.path)  # the console asks for the token itself (a browser logs in)
            or authorized(request.headers.get("authorization"), tokens)
        ):
            return await call_next(request)
        return Response(
            "missing or wrong bearer token\n", status_code=401, headers={"WWW-Authenticate": "Bearer"}
        )


def _console_path(path: str) -> bool:
    from .console import PREFIX

    return path == PREFIX or path.startswith(f"{PREFIX}/")


def _mount_console(admin: Any, config: Any, directory: Path, registry: Any) -> None:
    """The web console under /console/ on the admin server (docs/console.md), with the prices the price
    processor's settings give."""
    from costspan.processors.price import engine_from_config

    from .console import mount

    mount(
        admin,
        directory,
        config.admin_endpoint,
        config.admin_bearer_tokens,
        tls=config.admin_tls is not None,
        registry=registry,
        pricing=lambda: engine_from_config(config.processors.get("price") or {}),
    )


def _console_line(config: Any) -> str:
    """Where the console is and who may open it, for the startup log (collector/console/auth.py)."""
    from .console import PREFIX
    from .console.auth import is_loopback

    host, _, port = config.admin_endpoint.rpartition(":")
    if host.strip("[]") in ("", "0.0.0.0", "::"):
        host = "<this host>"  # listening on every address: any of them serves it
    url = f"{'https' if config.admin_tls is not None else 'http'}://{host}:{port}{PREFIX}/"
    if config.admin_bearer_tokens:
        return f"console: {url} (on the admin server; it asks for the admin token)"
    if is_loopback(config.admin_endpoint):
        return f"console: {url} (on the admin server, loopback only; no token asked)"
    return (
        f"console: off at {url}: the admin server listens beyond loopback without a token"
        " (set admin.bearer_token_env)"
    )


async def _serve(config: Any) -> int:
    import uvicorn
    from fastapi import FastAPI, Response
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from costspan.exporters.compaction import Upkeep
    from costspan.pricing import data_dir

    from .answers.jobs import jobs_from_config
    from .answers.runner import AnswerRunner
    from .health import HealthMetrics
    from .receivers._limiter import MemoryLimiter
    from .receivers.otlp_grpc import GrpcSettings, create_server
    from .receivers.otlp_http import ReceiverSettings, create_app
    from .runtime import configure_gc
    from .tls import describe

    directory = data_dir(config.data_dir)
    _claim_data_dir(directory)  # its lock is held while this process runs
    # every listener is bound before the log is opened or a worker started: a mistake ends here, in one line
    sockets = _bind_listeners(config)
    try:
        pipeline = _open_pipeline(config, directory)
    except OSError as exc:
        raise StartError(f"data directory {directory}: {exc.strerror or exc} ({exc.filename})") from None
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
    _mount_console(admin, config, directory, registry)
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

    # budget and anomaly events posted to webhooks, from an outbox, on their own thread
    notifier = _notifier(config, directory)
    if notifier is not None:
        registry.register(notifier)

    # budgets, forecasts and anomalies, kept current from the stored calls, in the background
    answers = AnswerRunner(directory, jobs_from_config(config, notifier))
    registry.register(answers)

    # from here a signal stops what has started in order (during the start too, once it is done)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    grpc_server = None
    if config.grpc_endpoint:  # grpc binds on its own, told not to share the port; it was checked free
        grpc_server, _ = create_server(
            pipeline.submit, config.grpc_endpoint, grpc_settings, tls=config.grpc_tls
        )
    configure_gc()
    pipeline.start()
    upkeep.start()
    if notifier is not None:
        notifier.start()
    answers.start()
    if grpc_server is not None:
        await grpc_server.start()
    apps = [(admin, sockets["admin"], config.admin_tls)]
    if config.http_endpoint:
        apps.append((create_app(pipeline.submit, http_settings), sockets["http"], config.http_tls))
    listening = []
    for app, sock, tls in apps:
        server_config = uvicorn.Config(
            app,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=max(1, int(config.shutdown_grace_period_s)),
            **(tls.uvicorn_options() if tls is not None else {}),
        )
        if tls is not None:
            tls.complete(server_config)
        server = uvicorn.Server(server_config)
        _leave_signals_to_us(server)
        listening.append((server, sock))
    servers = [server for server, _ in listening]
    tasks = [asyncio.create_task(server.serve(sockets=[sock])) for server, sock in listening]
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
    log.info("%s", _console_line(config))
    await stop.wait()
    await _stop_serving(servers, tasks, grpc_server, pipeline, config.shutdown_grace_period_s)
    await asyncio.to_thread(upkeep.stop)
    await asyncio.to_thread(answers.stop)
    if notifier is not None:  # what is not delivered stays in its outbox, for the next start
        await asyncio.to_thread(notifier.stop)
    return 0


def _notifier(config: Any, directory: Path) -> Any:
    """The notifier of the ``notifications`` section, or None when it has no targets."""
    if config.notifications is None or not config.notifications.targets:
        return None
    from .answers.notify import Notifier

    return Notifier(directory, config.notifications)


def _claim_data_dir(directory: Path) -> int:
    """Create the data directory when needed and hold it (an exclusive lock, for the life of the process):
    an unwritable directory, or one that another collector is using (its log would be written by two), is a
    StartError. Returns the lock's descriptor."""
    import fcntl
    import os

    from costspan.exporters.layout import INTERNAL

    try:
        (directory / INTERNAL).mkdir(parents=True, exist_ok=True)
        fd = os.open(directory / INTERNAL / "serve.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StartError(f"data directory {directory}: cannot create or write it: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StartError(f"data directory {directory} is in use by another costspan serve") from None
    try:  # a directory that can be created but not written (a full or read-only disk) says so here
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
    except OSError as exc:
        os.close(fd)
        raise StartError(f"data directory {directory}: cannot write it: {exc.strerror}") from None
    return fd


def _bind_listeners(config: Any) -> dict[str, Any]:
    """Each HTTP listener's socket (``admin``, ``http``), bound; the gRPC address checked free (grpc binds it
    itself). A port in use is a ListenError naming it."""
    from .listeners import bind, check_free

    sockets = {"admin": bind(config.admin_endpoint, "admin")}
    if config.http_endpoint:
        sockets["http"] = bind(config.http_endpoint, "OTLP/HTTP")
    if config.grpc_endpoint:
        check_free(config.grpc_endpoint, "OTLP/gRPC")
    return sockets


def _open_pipeline(config: Any, directory: Path) -> Any:
    """The pipeline over ``directory`` (its log opened, no worker started) and its forward exporters."""
    from costspan.exporters.otlp_forward import OTLPForwarder
    from costspan.exporters.prometheus import CostMetrics

    from .pipeline import Pipeline
    from .queued_exporter import QueuedExporter

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
    return Pipeline(
        directory,
        config.processors,
        config.pipeline,
        workers=config.workers,
        metrics=CostMetrics(limits=config.label_limits),
        max_pending_bytes=config.max_wal_pending_bytes,
        exporters=forwarders,
    )


def _leave_signals_to_us(server: Any) -> None:
    """uvicorn takes SIGINT/SIGTERM over while it serves (and raises them again when done); the collector's
    own handler stops everything in order instead."""
    import contextlib

    server.capture_signals = contextlib.nullcontext
    server.install_signal_handlers = lambda: None  # uvicorn before 0.29


async def _stop_serving(
    servers: list[Any], tasks: list[asyncio.Task[Any]], grpc_server: Any, pipeline: Any, grace: float
) -> None:
    """SIGTERM/SIGINT, within ``grace`` seconds: the listeners close (new connections are refused and gRPC
    clients are told to go away, both of which exporters retry), the requests in hand are answered, then
    the pipeline refuses whatever still comes (retryably), processes what the log holds and closes it. What
    is not processed by the end stays in the log, for the next start."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    log.info("stopping (grace period %gs)", grace)
    for server in servers:
        server.should_exit = True
    waits: list[asyncio.Future[Any]] = list(tasks)
    if grpc_server is not None:
        # grpc refuses new calls at once and cancels the calls still running at the end of its grace; a
        # cancelled call's request may still be logged (the pipeline waits for it), it is not acknowledged
        waits.append(asyncio.ensure_future(grpc_server.stop(max(0.0, deadline - loop.time() - 1))))
    await asyncio.wait(waits, timeout=max(0.0, deadline - loop.time()))
    drained = await asyncio.to_thread(pipeline.stop, max(0.0, deadline - loop.time()))
    log.info("stopped%s", "" if drained else "; the write-ahead log keeps what is not yet processed")
