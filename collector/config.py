"""The collector's configuration: a YAML file in the OpenTelemetry Collector's shape.

    data_dir: ./costspan-data
    receivers:
      otlp:                                    # or as the Collector has it: protocols: {grpc, http}
        grpc: {endpoint: 127.0.0.1:4317}        # null turns a protocol off
        http:
          endpoint: 127.0.0.1:4318
          max_body_bytes: 20971520
          tls: {cert_file: server.crt, key_file: server.key, client_ca_file: ca.crt, min_version: "1.3",
                reload_interval: 1h}             # the files are read again for new connections
        bearer_token_env: COSTSPAN_TOKEN         # require "Authorization: Bearer <value of the variable>"
        # or several variables, [COSTSPAN_TOKEN, COSTSPAN_TOKEN_NEXT]; a value may hold "old,new" too
    anomalies:                                 # unusual spend, explained (costspan anomalies)
      dimensions: [team, feature, model, provider, customer_id, prompt_key]
      baseline_weeks: 4                        # the same hour of the week over this many past weeks
      min_impact_usd: 1                        # smaller anomalies are not reported ...
      min_calls: 20                            # ... nor those of fewer calls
      interval: 5m
    processors:
      price: {overrides: prices.yaml}
      attribute: {defaults: {environment: production}}
    exporters:
      prometheus: {label_limits: {feature: 200}}
      parquet: {retention_days: 90, compaction_interval_s: 300}   # default: kept forever; every 5 min
      otlp/tempo:                              # forward the enriched spans (any number, type/name)
        endpoint: http://tempo:4318            # http:// or https://; /v1/traces is added to a bare host
        protocol: http/protobuf                # or grpc
        headers: {x-scope-orgid: acme, authorization: "${env:TEMPO_AUTH}"}
        compression: gzip                      # or none
        timeout: 10s
        max_request_bytes: 4128768             # larger batches go as several requests
        retry_on_failure: {initial_interval: 5s, max_interval: 30s, max_elapsed_time: 300s}
        sending_queue: {max_bytes: 268435456}  # past it the oldest queued spans are dropped, counted
    memory_limiter:
      max_in_flight_bytes: 134217728           # request bytes the receivers hold at once
      max_wal_pending_bytes: 268435456         # unprocessed bytes in the write-ahead log
    admin: {endpoint: 127.0.0.1:9464, tls: {...}, bearer_token_env: COSTSPAN_ADMIN_TOKEN}  # token: /metrics
    service:
      workers: 2                               # pipeline worker processes (default: one per core, max 8)
      shutdown_grace_period: 30s               # SIGTERM/SIGINT: finish the requests in hand and process
                                               # the log within this (1s to 60m); the rest after a restart
      pipelines:
        traces:
          processors: [normalize, dedupe, price, attribute, redact]
          exporters: [parquet, prometheus, otlp/tempo]
    budgets:                                   # or {file: budgets.yaml, interval: 60s}
      - {name: search, scope: {team: search}, amount: 5000, period: month}   # see answers/budgets.py

Every key is optional; what is left out takes the embedded defaults (deploy/costspan.example.yaml has them
all). The receivers may also take the Collector's own form, ``receivers.otlp.protocols.grpc|http`` (there a
protocol left out does not listen, and ``max_request_body_size`` is ``max_body_bytes``), so a Collector's
receiver block is read as it is. Every mistake in a file is reported, each with the file, line and key
(``costspan config check FILE``). Parquet (the primary store) and Prometheus (the admin port's
``/metrics``) always run; an ``otlp`` exporter configured but left out of the pipeline's ``exporters`` list
is an error, as for processors. Forwarded spans
must pass the ``redact`` processor, so prompt content leaves only where ``keep_content`` says it may.
A listener's ``tls`` is the OpenTelemetry Collector's (see :mod:`costspan.collector.tls`); its paths, like
every path in the file, are relative to the file.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from costspan.exporters.otlp_forward import (
    COMPRESSIONS,
    DEFAULT_MAX_REQUEST_BYTES,
    HTTP_PROTOBUF,
    PROTOCOLS,
    ForwardSettings,
)
from costspan.pricing.yamlfile import Located, load_yaml
from costspan.processors import Chain, ConfigError, chain_from_config

from .answers._anomaly_detect import AnomalySettings
from .queued_exporter import DEFAULT_QUEUE_BYTES, RetrySettings
from .receivers._auth import parse_tokens
from .receivers._limiter import DEFAULT_MAX_IN_FLIGHT_BYTES
from .tls import DEFAULT_MIN_VERSION, MIN_VERSIONS, ServerTLS, TLSFileError, describe
from .worker import MAX_WORKERS

DEFAULT_GRPC = "127.0.0.1:4317"
DEFAULT_HTTP = "127.0.0.1:4318"
DEFAULT_ADMIN = "127.0.0.1:9464"
DEFAULT_MAX_BODY_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_WAL_PENDING_BYTES = 256 * 1024 * 1024
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
DEFAULT_COMPACTION_INTERVAL_S = 300.0
# A stop finishes the requests in hand and processes what the log holds within this; the rest of the log is
# processed after the next start. 30 s is Kubernetes' default terminationGracePeriodSeconds: within it the
# collector exits by itself, before the SIGKILL.
DEFAULT_SHUTDOWN_GRACE_S = 30.0
MIN_SHUTDOWN_GRACE_S = 1.0
MAX_SHUTDOWN_GRACE_S = 3600.0


class ConfigFileError(ValueError):
    """A configuration mistake; the message starts with ``file:line:``."""


@dataclass
class ForwardExporterConfig:
    """One ``otlp`` exporter: where to send, how to retry, how much to queue."""

    name: str
    settings: ForwardSettings
    retry: RetrySettings = field(default_factory=RetrySettings)
    max_queue_bytes: int = DEFAULT_QUEUE_BYTES


@dataclass
class CollectorConfig:
    data_dir: str | None = None
    grpc_endpoint: str | None = DEFAULT_GRPC
    http_endpoint: str | None = DEFAULT_HTTP
    admin_endpoint: str = DEFAULT_ADMIN
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    bearer_tokens: tuple[str, ...] = ()  # the receivers accept any one; none: no token is asked for
    grpc_tls: ServerTLS | None = None
    http_tls: ServerTLS | None = None
    admin_tls: ServerTLS | None = None
    admin_bearer_tokens: tuple[str, ...] = ()  # the admin server's, for all but /healthz and /readyz
    processors: Mapping[str, Any] = field(default_factory=dict)
    pipeline: list[str] | None = None
    label_limits: dict[str, int] = field(default_factory=dict)
    forward: list[ForwardExporterConfig] = field(default_factory=list)
    max_in_flight_bytes: int = DEFAULT_MAX_IN_FLIGHT_BYTES
    max_wal_pending_bytes: int = DEFAULT_MAX_WAL_PENDING_BYTES
    retention_days: int | None = None  # None: keep forever
    compaction_interval_s: float = DEFAULT_COMPACTION_INTERVAL_S
    workers: int | None = None  # pipeline worker processes; None: one per core
    shutdown_grace_period_s: float = DEFAULT_SHUTDOWN_GRACE_S
    anomalies: AnomalySettings = field(default_factory=AnomalySettings)
    source: str | None = None
    # costspan.collector.answers.budgets.Budget, each; evaluated every budgets_interval_s seconds
    budgets: list[Any] = field(default_factory=list)
    budgets_interval_s: float = 60.0
    notifications: Any = None  # costspan.collector.answers.notify.NotificationSettings, when configured

    def build_chain(self) -> Chain:
        return chain_from_config(self.processors, self.pipeline)


def load_config(path: str | Path) -> CollectorConfig:
    """Read and check a configuration file, building its processors once to validate them."""
    doc, _ = load_yaml(path, ConfigFileError)
    reader = _Reader(str(path))
    config = reader.read(doc)
    base = Path(path).resolve().parent
    # relative paths in a configuration are relative to the file
    for name, settings in config.processors.items():
        if name.split("/", 1)[0] == "price" and isinstance(settings, Mapping) and settings.get("overrides"):
            overrides = Path(str(settings["overrides"]))
            if not overrides.is_absolute():
                config.processors = {
                    **config.processors,
                    name: {**settings, "overrides": str(base / overrides)},
                }
    with reader.collecting():
        try:
            config.build_chain()
        except ConfigError as exc:
            raise ConfigFileError(f"{path}:{_line_of_path(doc, str(exc))}: {exc}") from exc
    if reader.errors:
        raise ConfigErrors(reader.errors)
    return config


class ConfigErrors(ConfigFileError):
    """Every mistake found in a file, in the order of its lines; ``str()`` gives one per line."""

    def __init__(self, errors: list[ConfigFileError]) -> None:
        self.errors = sorted(errors, key=_line_of_error)
        super().__init__("\n".join(str(e) for e in self.errors))


def _line_of_error(error: ConfigFileError) -> int:
    parts = str(error).split(":")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


# The receivers' keys that mean the same as the OpenTelemetry Collector's `otlp` receiver's
# (receivers.otlp.protocols.grpc|http), which the file may also give in that shape.
_GRPC_KEYS = {"endpoint", "tls"}
_HTTP_KEYS = {"endpoint", "max_body_bytes", "tls"}
_COLLECTOR_HTTP_KEYS = {"max_request_body_size"}  # the Collector's name of max_body_bytes


class _Reader:
    def __init__(self, path: str) -> None:
        self.path = path
        self.errors: list[ConfigFileError] = []

    def error(self, node: Located | None, key: str | None, message: str) -> ConfigFileError:
        line = node.line_of(key) if node is not None and key is not None else (node.line if node else 1)
        return ConfigFileError(f"{self.path}:{line}: {message}")

    @contextmanager
    def collecting(self) -> Iterator[None]:
        """Reads one part of the file: a mistake in it is kept, and the next part is read all the same,
        so that one check names every mistake."""
        try:
            yield
        except ConfigErrors as exc:
            self.errors.extend(exc.errors)
        except ConfigFileError as exc:
            self.errors.append(exc)

    def mapping(
        self, parent: Located, key: str, allowed: set[str], where: str | None = None
    ) -> Located | None:
        """``parent[key]``, a mapping whose keys are all in ``allowed``; each unknown key is a mistake kept
        (the known ones are read on)."""
        value = parent.get(key)
        if value is None:
            return None
        where = where or key
        if not isinstance(value, Located):
            raise self.error(parent, key, f"{where}: a mapping")
        for name in value:
            if name not in allowed:
                self.errors.append(
                    self.error(
                        value,
                        name,
                        f"{where}.{name}: unknown key; expected one of {', '.join(sorted(allowed))}",
                    )
                )
        return value

    def read(self, doc: Any) -> CollectorConfig:
        config = CollectorConfig(source=self.path)
        if doc is None:
            return config
        if not isinstance(doc, Located):
            raise ConfigFileError(f"{self.path}:1: a configuration is a mapping")
        for name in doc:
            if name not in {
                "data_dir",
                "receivers",
                "processors",
                "exporters",
                "memory_limiter",
                "admin",
                "service",
                "budgets",
                "notifications",
                "anomalies",
            }:
                self.errors.append(self.error(doc, name, f"{name}: unknown section"))
        if doc.get("data_dir") is not None:
            config.data_dir = str(doc["data_dir"])
        for section in (
            self.receivers,
            self.admin,
            self.processor_settings,
            self.memory_limiter,
            self.exporters,
            self.service,
            self.answers,
        ):
            with self.collecting():
                section(doc, config)
        if config.forward and "redact" not in (config.pipeline or ("redact",)):
            service = doc.get("service")
            pipelines = service.get("pipelines") if isinstance(service, Located) else None
            traces = pipelines.get("traces") if isinstance(pipelines, Located) else None
            self.errors.append(
                self.error(
                    traces if isinstance(traces, Located) else None,
                    "processors",
                    "service.pipelines.traces.processors: spans forwarded by an otlp exporter must pass the "
                    "redact processor (redact: {keep_content: true} forwards content on purpose)",
                )
            )
        with self.collecting():
            self.notifications(doc, config)
        return config  # with its mistakes in self.errors

    def receivers(self, doc: Located, config: CollectorConfig) -> None:
        """``receivers.otlp``: its ``grpc`` and ``http`` listeners directly under it (a listener set to null
        is off, one left out listens on its default), or under ``protocols`` as in the OpenTelemetry
        Collector's configuration (there, as in the Collector, a listener left out is off, and one given
        without an endpoint listens on its default)."""
        receivers = self.mapping(doc, "receivers", {"otlp"})
        otlp = (
            self.mapping(
                receivers, "otlp", {"grpc", "http", "protocols", "bearer_token_env"}, "receivers.otlp"
            )
            if receivers
            else None
        )
        if otlp is None:
            return
        collector_shape = "protocols" in otlp
        listeners: Located | None = otlp
        where = "receivers.otlp"
        if collector_shape:
            if "grpc" in otlp or "http" in otlp:
                raise self.error(
                    otlp,
                    "protocols",
                    "receivers.otlp.protocols: grpc and http go either under protocols (the OpenTelemetry "
                    "Collector's shape) or directly under otlp, not both",
                )
            where = "receivers.otlp.protocols"
            listeners = self.mapping(otlp, "protocols", {"grpc", "http"}, where)
            if not listeners:
                raise self.error(otlp, "protocols", f"{where}: grpc, http or both")
            config.grpc_endpoint = DEFAULT_GRPC if "grpc" in listeners else None
            config.http_endpoint = DEFAULT_HTTP if "http" in listeners else None
        assert listeners is not None
        with self.collecting():
            if "grpc" in listeners:
                grpc = self.mapping(listeners, "grpc", _GRPC_KEYS, f"{where}.grpc")
                endpoint = self.endpoint(grpc, f"{where}.grpc") if grpc is not None else None
                config.grpc_endpoint = endpoint or (config.grpc_endpoint if collector_shape else None)
                config.grpc_tls = self.tls(grpc, f"{where}.grpc", grpc=True) if grpc is not None else None
        with self.collecting():
            if "http" in listeners:
                extra = _COLLECTOR_HTTP_KEYS if collector_shape else set()
                http = self.mapping(listeners, "http", _HTTP_KEYS | extra, f"{where}.http")
                endpoint = self.endpoint(http, f"{where}.http") if http is not None else None
                config.http_endpoint = endpoint or (config.http_endpoint if collector_shape else None)
                with self.collecting():
                    config.http_tls = self.tls(http, f"{where}.http") if http is not None else None
                if http is not None:
                    config.max_body_bytes = self.body_size(http, where)
        config.bearer_tokens = self.tokens(otlp)

    def body_size(self, http: Located, where: str) -> int:
        """``max_body_bytes``, or the Collector's name for it, ``max_request_body_size``."""
        keys = [k for k in ("max_body_bytes", "max_request_body_size") if k in http]
        if len(keys) > 1:
            raise self.error(
                http, keys[1], f"{where}.http: max_body_bytes or max_request_body_size, not both"
            )
        if not keys:
            return DEFAULT_MAX_BODY_BYTES
        size = http[keys[0]]
        if not isinstance(size, int) or isinstance(size, bool) or size < 1024:
            raise self.error(http, keys[0], f"{where}.http.{keys[0]}: a whole number of bytes, at least 1024")
        return int(size)

    def admin(self, doc: Located, config: CollectorConfig) -> None:
        admin = self.mapping(doc, "admin", {"endpoint", "tls", "bearer_token_env"})
        if admin is not None:
            with self.collecting():
                config.admin_endpoint = self.endpoint(admin, "admin") or DEFAULT_ADMIN
            with self.collecting():
                config.admin_tls = self.tls(admin, "admin")
            config.admin_bearer_tokens = self.tokens(admin)

    def processor_settings(self, doc: Located, config: CollectorConfig) -> None:
        processors = doc.get("processors")
        if processors is not None:
            if not isinstance(processors, Located):
                raise self.error(
                    doc, "processors", "processors: a mapping of processor name to its configuration"
                )
            config.processors = processors

    def memory_limiter(self, doc: Located, config: CollectorConfig) -> None:
        limiter = self.mapping(doc, "memory_limiter", {"max_in_flight_bytes", "max_wal_pending_bytes"})
        if limiter is not None:
            with self.collecting():
                if "max_in_flight_bytes" in limiter:
                    config.max_in_flight_bytes = self.size(
                        limiter, "max_in_flight_bytes", 64 * 1024, "memory_limiter."
                    )
            if "max_wal_pending_bytes" in limiter:
                config.max_wal_pending_bytes = self.size(
                    limiter, "max_wal_pending_bytes", 64 * 1024, "memory_limiter."
                )

    def exporters(self, doc: Located, config: CollectorConfig) -> None:
        exporters = doc.get("exporters")
        if exporters is None:
            return
        if not isinstance(exporters, Located):
            raise self.error(doc, "exporters", "exporters: a mapping")
        for name in exporters:
            if name not in ("parquet", "prometheus") and not re.match(r"^otlp(/[\w.-]+)?$", name):
                self.errors.append(
                    self.error(
                        exporters,
                        name,
                        f"exporters.{name}: unknown exporter; expected parquet, prometheus, otlp",
                    )
                )
            elif name.split("/", 1)[0] == "otlp":
                with self.collecting():
                    config.forward.append(self.forward(exporters, name))
        with self.collecting():
            prometheus = self.mapping(exporters, "prometheus", {"label_limits"}, "exporters.prometheus")
            if prometheus is not None and prometheus.get("label_limits") is not None:
                limits = prometheus["label_limits"]
                if not isinstance(limits, Mapping) or not all(
                    isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in limits.values()
                ):
                    raise self.error(
                        prometheus,
                        "label_limits",
                        "exporters.prometheus.label_limits: label name to a positive whole number",
                    )
                config.label_limits = {str(k): int(v) for k, v in limits.items()}
        parquet = self.mapping(
            exporters, "parquet", {"retention_days", "compaction_interval_s"}, "exporters.parquet"
        )
        if parquet is None:
            return
        with self.collecting():
            days = parquet.get("retention_days")
            if days is not None:
                if not isinstance(days, int) or isinstance(days, bool) or days <= 0:
                    raise self.error(
                        parquet,
                        "retention_days",
                        "exporters.parquet.retention_days: a positive whole number of days",
                    )
                config.retention_days = days
        interval = parquet.get("compaction_interval_s")
        if interval is not None:
            # the YAML loader reads decimals exactly, as Decimal
            if not isinstance(interval, (int, float, Decimal)) or isinstance(interval, bool) or interval <= 0:
                raise self.error(
                    parquet,
                    "compaction_interval_s",
                    "exporters.parquet.compaction_interval_s: a positive number of seconds",
                )
            config.compaction_interval_s = float(interval)

    def service(self, doc: Located, config: CollectorConfig) -> None:
        service = self.mapping(doc, "service", {"pipelines", "workers", "shutdown_grace_period"})
        if service is None:
            return
        with self.collecting():
            if service.get("workers") is not None:
                try:
                    config.workers = worker_count(service["workers"])
                except ValueError as exc:
                    raise self.error(service, "workers", f"service.workers: {exc}") from None
        with self.collecting():
            if service.get("shutdown_grace_period") is not None:
                config.shutdown_grace_period_s = self.grace_period(service)
        pipelines = self.mapping(service, "pipelines", {"traces"}, "service.pipelines")
        traces = (
            self.mapping(
                pipelines, "traces", {"receivers", "processors", "exporters"}, "service.pipelines.traces"
            )
            if pipelines
            else None
        )
        if traces is None:
            return
        with self.collecting():
            # as in the Collector's pipelines; costspan has the one receiver
            listed = traces.get("receivers")
            if listed is not None and listed != ["otlp"]:
                raise self.error(
                    traces, "receivers", f"service.pipelines.traces.receivers: [otlp]; got {listed!r}"
                )
        with self.collecting():
            if traces.get("processors") is not None:
                order = traces["processors"]
                if not isinstance(order, list) or not all(isinstance(p, str) for p in order):
                    raise self.error(
                        traces, "processors", "service.pipelines.traces.processors: a list of processor names"
                    )
                config.pipeline = list(order)
        if traces.get("exporters") is not None:
            exporters = doc.get("exporters")
            self.exporter_list(traces, config, set(exporters) if isinstance(exporters, Located) else set())

    def answers(self, doc: Located, config: CollectorConfig) -> None:
        with self.collecting():
            if doc.get("budgets") is not None:
                config.budgets, config.budgets_interval_s = self.budgets(doc)
        if doc.get("anomalies") is not None:
            config.anomalies = self.anomalies(doc)

    def budgets(self, doc: Located) -> tuple[list[Any], float]:
        """The ``budgets`` section: a list of budgets, or ``{file: ..., interval: ...}`` / ``{items: [...]}``
        (see :mod:`costspan.collector.answers.budgets`)."""
        from costspan.collector.answers.budgets import DEFAULT_INTERVAL_S, read_budgets

        section = doc["budgets"]
        if not isinstance(section, (list, Located)):
            raise self.error(doc, "budgets", "budgets: a list of budgets, or {file: budgets.yaml}")
        if isinstance(section, list):
            return read_budgets(section, "budgets", self.error, self.path, doc, "budgets"), DEFAULT_INTERVAL_S
        node = self.mapping(doc, "budgets", {"file", "items", "interval"})
        assert node is not None
        interval = DEFAULT_INTERVAL_S
        if "interval" in node:
            interval = self.duration(node, "interval", "budgets")
            if interval < 1:
                raise self.error(node, "interval", "budgets.interval: at least 1s")
        if ("file" in node) == ("items" in node):
            raise self.error(doc, "budgets", "budgets: either file (a file of budgets) or items (a list)")
        if "items" in node:
            items = read_budgets(node["items"], "budgets.items", self.error, self.path, node, "items")
            return items, interval
        name = node["file"]
        if not isinstance(name, str) or not name:
            raise self.error(node, "file", "budgets.file: the path of a file of budgets")
        path = Path(name) if Path(name).is_absolute() else Path(self.path).resolve().parent / name
        try:
            items, _ = load_yaml(path, ConfigFileError)
        except ConfigFileError as exc:
            if not path.is_file():
                raise self.error(node, "file", f"budgets.file: {exc}") from None
            raise
        reader = _Reader(str(path))  # the file's mistakes are named by its own lines
        return read_budgets(items, "budgets", reader.error, str(path)), interval

    def anomalies(self, doc: Located) -> AnomalySettings:
        """The ``anomalies:`` section: what the anomaly scan looks at and the smallest anomaly it reports
        (see costspan.collector.answers.anomalies)."""
        from .answers.spend import UnknownDimension, dimension_sql

        keys = {"enabled", "interval", "dimensions", "baseline_weeks", "min_impact_usd", "min_calls"}
        node = self.mapping(doc, "anomalies", keys)
        settings = AnomalySettings()
        if node is None:
            return settings
        changes: dict[str, Any] = {}
        if "enabled" in node:
            if not isinstance(node["enabled"], bool):
                raise self.error(node, "enabled", "anomalies.enabled: true or false")
            changes["enabled"] = node["enabled"]
        if "interval" in node:
            interval = self.duration(node, "interval", "anomalies")
            if interval < 1:
                raise self.error(node, "interval", "anomalies.interval: at least 1s")
            changes["interval_s"] = interval
        if "dimensions" in node:
            dimensions = node["dimensions"]
            if not isinstance(dimensions, list) or not all(isinstance(d, str) for d in dimensions):
                raise self.error(node, "dimensions", "anomalies.dimensions: a list of dimension names")
            for name in dimensions:
                try:
                    dimension_sql(name)
                except UnknownDimension as exc:
                    raise self.error(node, "dimensions", f"anomalies.dimensions: {exc}") from None
            changes["dimensions"] = tuple(dict.fromkeys(dimensions))
        for key, low, high in (("baseline_weeks", 2, 52), ("min_calls", 1, 10**9)):
            if key in node:
                value = node[key]
                if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                    raise self.error(node, key, f"anomalies.{key}: a whole number from {low} to {high}")
                changes[key] = value
        if "min_impact_usd" in node:
            amount = node["min_impact_usd"]
            if not isinstance(amount, (int, Decimal)) or isinstance(amount, bool) or amount < 0:
                raise self.error(
                    node, "min_impact_usd", "anomalies.min_impact_usd: an amount of USD, 0 or more"
                )
            changes["min_impact_usd"] = Decimal(amount)
        return replace(settings, **changes)

    def tokens(self, node: Located) -> tuple[str, ...]:
        """The tokens in the variables ``bearer_token_env`` names (one name or a list); each variable holds
        one token or several separated by commas. The error never shows a token."""
        names = node.get("bearer_token_env")
        if names is None:
            return ()
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
            raise self.error(
                node, "bearer_token_env", "bearer_token_env: an environment variable, or a list of them"
            )
        tokens: list[str] = []
        for variable in names:
            try:
                found = parse_tokens(os.environ.get(variable, ""))
            except ValueError as exc:
                raise self.error(
                    node, "bearer_token_env", f"bearer_token_env: environment variable {variable}: {exc}"
                ) from None
            if not found:
                raise self.error(
                    node, "bearer_token_env", f"bearer_token_env: environment variable {variable} is not set"
                )
            tokens.extend(t for t in found if t not in tokens)
        return tuple(tokens)

    def tls(self, parent: Located, what: str, grpc: bool = False) -> ServerTLS | None:
        """A listener's ``tls`` settings, its files read and checked now (:mod:`costspan.collector.tls`)."""
        node = self.mapping(
            parent, "tls", {"cert_file", "key_file", "client_ca_file", "min_version", "reload_interval"}
        )
        if node is None:
            return None
        where = f"{what}.tls"
        cert, key = node.get("cert_file"), node.get("key_file")
        if cert is None and key is None:
            raise self.error(parent, "tls", f"{where}: cert_file and key_file are required")
        if cert is None:
            raise self.error(node, "key_file", f"{where}.key_file: given without cert_file")
        if key is None:
            raise self.error(node, "cert_file", f"{where}.cert_file: given without key_file")
        version = node.get("min_version", DEFAULT_MIN_VERSION)
        # YAML reads 1.2 unquoted as a number: the same setting
        version = str(version) if not isinstance(version, bool) else ""
        if version not in MIN_VERSIONS:
            raise self.error(
                node,
                "min_version",
                f'{where}.min_version: "1.2" or "1.3" (TLS 1.0 and 1.1 are deprecated); got {version!r}',
            )
        if grpc and version != DEFAULT_MIN_VERSION:
            raise self.error(
                node,
                "min_version",
                f'{where}.min_version: the gRPC receiver takes only "1.2" (grpcio sets no minimum '
                "version on servers; it negotiates TLS 1.2 or 1.3)",
            )
        reload = self.duration(node, "reload_interval", where) if "reload_interval" in node else None
        if reload is not None and reload <= 0:
            raise self.error(node, "reload_interval", f"{where}.reload_interval: a positive duration")
        base = Path(self.path).resolve().parent
        client_ca = node.get("client_ca_file")
        tls = ServerTLS(
            cert_file=str(base / str(cert)),
            key_file=str(base / str(key)),
            client_ca_file=str(base / str(client_ca)) if client_ca is not None else None,
            min_version=version,
            reload_interval_s=reload,
        )
        try:
            tls.check()
        except TLSFileError as exc:
            raise self.error(node, exc.key, f"{where}.{exc.key}: {exc}") from None
        return tls

    def exporter_list(self, traces: Located, config: CollectorConfig, configured: set[str]) -> None:
        listed = traces["exporters"]
        if not isinstance(listed, list) or not all(isinstance(e, str) for e in listed):
            raise self.error(
                traces, "exporters", "service.pipelines.traces.exporters: a list of exporter names"
            )
        for name in listed:
            if name not in configured and name not in ("parquet", "prometheus"):
                raise self.error(
                    traces,
                    "exporters",
                    f"service.pipelines.traces.exporters: {name!r} is not configured under exporters",
                )
        unused = [name for name in configured if name not in listed and name.startswith("otlp")]
        if unused:
            raise self.error(
                traces,
                "exporters",
                f"service.pipelines.traces.exporters: {unused[0]} is configured but not in the pipeline's "
                "exporters",
            )

    def notifications(self, doc: Located, config: CollectorConfig) -> None:
        """The ``notifications`` section: webhooks the collector posts budget and anomaly events to
        (:mod:`costspan.collector.answers.notify`)."""
        from .answers.notify import check_budget_names, read_settings

        config.notifications = read_settings(self, doc)
        check_budget_names(self, doc, config.notifications, [b.name for b in config.budgets])

    def forward(self, exporters: Located, name: str) -> ForwardExporterConfig:
        allowed = {
            "endpoint",
            "protocol",
            "headers",
            "compression",
            "timeout",
            "retry_on_failure",
            "sending_queue",
            "max_request_bytes",
        }
        node = self.mapping(exporters, name, allowed)
        where = f"exporters.{name}"
        if node is None or node.get("endpoint") is None:
            raise self.error(exporters, name, f"{where}.endpoint: required")
        endpoint = str(node["endpoint"])
        parts = re.match(r"^(https?)://([^/:]+)(:\d+)?(/.*)?$", endpoint)
        if parts is None:
            raise self.error(
                node, "endpoint", f"{where}.endpoint: http(s)://host[:port][/path]; got {endpoint!r}"
            )
        protocol = str(node.get("protocol", HTTP_PROTOBUF))
        if protocol not in PROTOCOLS:
            raise self.error(
                node, "protocol", f"{where}.protocol: one of {', '.join(PROTOCOLS)}; got {protocol!r}"
            )
        compression = str(node.get("compression", "gzip"))
        if compression not in COMPRESSIONS:
            raise self.error(
                node,
                "compression",
                f"{where}.compression: one of {', '.join(COMPRESSIONS)}; got {compression!r}",
            )
        headers = node.get("headers") or {}
        if not isinstance(headers, Mapping) or not all(isinstance(v, (str, int)) for v in headers.values()):
            raise self.error(node, "headers", f"{where}.headers: a mapping of header name to value")
        timeout = self.duration(node, "timeout", where) if "timeout" in node else 10.0
        retry = RetrySettings()
        retry_node = self.mapping(
            node, "retry_on_failure", {"enabled", "initial_interval", "max_interval", "max_elapsed_time"}
        )
        if retry_node is not None:
            enabled = retry_node.get("enabled", True)
            if not isinstance(enabled, bool):
                raise self.error(retry_node, "enabled", f"{where}.retry_on_failure.enabled: true or false")
            retry.enabled = enabled
            for key in ("initial_interval", "max_interval", "max_elapsed_time"):
                if key in retry_node:
                    setattr(retry, key, self.duration(retry_node, key, f"{where}.retry_on_failure"))
        queue = self.mapping(node, "sending_queue", {"max_bytes"})
        max_bytes = DEFAULT_QUEUE_BYTES
        if queue is not None and "max_bytes" in queue:
            max_bytes = self.size(queue, "max_bytes", 1024, f"{where}.sending_queue.")
        max_request = DEFAULT_MAX_REQUEST_BYTES
        if "max_request_bytes" in node:
            max_request = self.size(node, "max_request_bytes", 64 * 1024, f"{where}.")
        settings = ForwardSettings(
            max_request_bytes=max_request,
            endpoint=endpoint,
            protocol=protocol,
            headers={str(k): self.expand(node, "headers", str(v), where) for k, v in headers.items()},
            compression=compression,
            timeout_s=timeout,
        )
        return ForwardExporterConfig(name, settings, retry, max_bytes)

    def expand(self, node: Located, key: str, value: str, where: str) -> str:
        """``${env:NAME}`` (the OpenTelemetry Collector's form) is the environment variable's value."""
        match = re.fullmatch(r"\$\{env:(\w+)\}", value)
        if match is None:
            return value
        found = os.environ.get(match.group(1))
        if not found:
            raise self.error(node, key, f"{where}.{key}: environment variable {match.group(1)} is not set")
        return found

    def duration(self, node: Located, key: str, where: str) -> float:
        value = node[key]
        match = _DURATION.match(str(value)) if not isinstance(value, bool) else None
        if match is None:
            raise self.error(node, key, f"{where}.{key}: a duration such as 5s, 500ms or 2m; got {value!r}")
        return float(match.group(1)) * _SECONDS[match.group(2)]

    def grace_period(self, service: Located) -> float:
        """``service.shutdown_grace_period``: how long a stop may take (see costspan.collector.serve)."""
        seconds = self.duration(service, "shutdown_grace_period", "service")
        if not MIN_SHUTDOWN_GRACE_S <= seconds <= MAX_SHUTDOWN_GRACE_S:
            raise self.error(
                service,
                "shutdown_grace_period",
                f"service.shutdown_grace_period: from {MIN_SHUTDOWN_GRACE_S:g}s to "
                f"{MAX_SHUTDOWN_GRACE_S / 60:g}m; got {service['shutdown_grace_period']!r}",
            )
        return seconds

    def size(self, node: Located, key: str, minimum: int, where: str = "") -> int:
        value = node[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise self.error(node, key, f"{where}{key}: a whole number of bytes, at least {minimum}")
        return value

    def endpoint(self, node: Located, what: str) -> str | None:
        value = node.get("endpoint")
        if value is None:
            return None
        try:
            return listen_address(str(value))
        except ValueError as exc:
            raise self.error(node, "endpoint", f"{what}.endpoint: {exc}") from None


def listen_address(value: str) -> str:
    """``host:port`` where a receiver or the admin server listens, as given; ValueError if it is not one (a
    port out of range would otherwise be taken for "any free port")."""
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"host:port, a port from 1 to 65535; got {value!r}")
    return value


def worker_count(value: Any) -> int:
    """A number of pipeline worker processes; ValueError if it is not 1 to MAX_WORKERS."""
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_WORKERS:
        raise ValueError(f"a whole number of worker processes, 1 to {MAX_WORKERS}; got {value!r}")
    return value


def _line_of_path(doc: Any, message: str) -> int:
    """The line of the deepest key a processor error names (``processors.attribute.rules[0].when: ...``)."""
    path = message.split(":", 1)[0]
    node, line = doc, getattr(doc, "line", 1)
    for part in path.replace("]", "").replace("[", ".").split("."):
        if isinstance(node, Located) and part in node:
            line = node.line_of(part)
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
            line = getattr(node, "line", line)
        else:
            break
    return line


def register(subparsers: Any) -> None:
    config = subparsers.add_parser("config", help="check a collector configuration file")
    commands = config.add_subparsers(dest="config_command", required=True, metavar="COMMAND")
    check = commands.add_parser(
        "check", help="validate a configuration file (file, line and key of each mistake)"
    )
    check.add_argument("file")
    check.set_defaults(handler=_check)


def _check(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.file)
    except ConfigFileError as exc:
        for line in str(exc).splitlines():  # one line per mistake (ConfigErrors)
            print(f"costspan config: {line}", file=sys.stderr)
        return 1
    _budget_warnings(config)
    chain = ", ".join(p.name for p in config.build_chain().processors)
    exporters = ", ".join(
        ["parquet", "prometheus", *(f"{f.name} -> {f.settings.endpoint}" for f in config.forward)]
    )
    print(
        f"{args.file}: valid (receivers: gRPC {describe(config.grpc_endpoint, config.grpc_tls)}, "
        f"HTTP {describe(config.http_endpoint, config.http_tls)}{_tokens(config.bearer_tokens)}; "
        f"admin {describe(config.admin_endpoint, config.admin_tls)}{_tokens(config.admin_bearer_tokens)}; "
        f"processors: {chain}; exporters: {exporters})"
    )
    return 0


def _budget_warnings(config: CollectorConfig) -> None:
    """Budgets that are valid but probably not meant: children who may spend more than their parent."""
    if config.budgets:
        from costspan.collector.answers.budgets import hierarchy_warnings

        for warning in hierarchy_warnings(config.budgets):
            print(f"costspan config: {warning}", file=sys.stderr)


def _tokens(tokens: tuple[str, ...]) -> str:
    return f", {len(tokens)} bearer token{'s' if len(tokens) > 1 else ''}" if tokens else ""
