"""The collector's configuration: a YAML file in the OpenTelemetry Collector's shape.

    data_dir: ./costspan-data
    receivers:
      otlp:
        grpc: {endpoint: 127.0.0.1:4317}        # null turns a protocol off
        http: {endpoint: 127.0.0.1:4318, max_body_bytes: 20971520}
        bearer_token_env: COSTSPAN_TOKEN         # require "Authorization: Bearer <value of the variable>"
    processors:
      price: {overrides: prices.yaml}
      attribute: {defaults: {environment: production}}
    exporters:
      prometheus: {label_limits: {feature: 200}}
      parquet: {retention_days: 90, compaction_interval_s: 300}   # default: kept forever; every 5 min
    admin: {endpoint: 127.0.0.1:9464}
    service:
      pipelines:
        traces:
          processors: [normalize, dedupe, price, attribute, redact]

Every key is optional; what is left out takes the embedded defaults. Mistakes are reported with the file,
line and key (``costspan config check FILE``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from costspan.pricing.yamlfile import Located, load_yaml
from costspan.processors import Chain, ConfigError, chain_from_config

DEFAULT_GRPC = "127.0.0.1:4317"
DEFAULT_HTTP = "127.0.0.1:4318"
DEFAULT_ADMIN = "127.0.0.1:9464"
DEFAULT_MAX_BODY_BYTES = 20 * 1024 * 1024
DEFAULT_COMPACTION_INTERVAL_S = 300.0


class ConfigFileError(ValueError):
    """A configuration mistake; the message starts with ``file:line:``."""


@dataclass
class CollectorConfig:
    data_dir: str | None = None
    grpc_endpoint: str | None = DEFAULT_GRPC
    http_endpoint: str | None = DEFAULT_HTTP
    admin_endpoint: str = DEFAULT_ADMIN
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    bearer_token: str | None = None
    processors: Mapping[str, Any] = field(default_factory=dict)
    pipeline: list[str] | None = None
    label_limits: dict[str, int] = field(default_factory=dict)
    retention_days: int | None = None  # None: keep forever
    compaction_interval_s: float = DEFAULT_COMPACTION_INTERVAL_S
    source: str | None = None

    def build_chain(self) -> Chain:
        return chain_from_config(self.processors, self.pipeline)


def load_config(path: str | Path) -> CollectorConfig:
    """Read and check a configuration file, building its processors once to validate them."""
    doc, _ = load_yaml(path, ConfigFileError)
    config = _Reader(str(path)).read(doc)
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
    try:
        config.build_chain()
    except ConfigError as exc:
        raise ConfigFileError(f"{path}:{_line_of_path(doc, str(exc))}: {exc}") from exc
    return config


class _Reader:
    def __init__(self, path: str) -> None:
        self.path = path

    def error(self, node: Located | None, key: str | None, message: str) -> ConfigFileError:
        line = node.line_of(key) if node is not None and key is not None else (node.line if node else 1)
        return ConfigFileError(f"{self.path}:{line}: {message}")

    def mapping(self, parent: Located, key: str, allowed: set[str]) -> Located | None:
        value = parent.get(key)
        if value is None:
            return None
        if not isinstance(value, Located):
            raise self.error(parent, key, f"{key}: a mapping")
        for name in value:
            if name not in allowed:
                raise self.error(
                    value, name, f"{key}.{name}: unknown key; expected one of {', '.join(sorted(allowed))}"
                )
        return value

    def read(self, doc: Any) -> CollectorConfig:
        config = CollectorConfig(source=self.path)
        if doc is None:
            return config
        if not isinstance(doc, Located):
            raise ConfigFileError(f"{self.path}:1: a configuration is a mapping")
        for name in doc:
            if name not in {"data_dir", "receivers", "processors", "exporters", "admin", "service"}:
                raise self.error(doc, name, f"{name}: unknown section")
        if doc.get("data_dir") is not None:
            config.data_dir = str(doc["data_dir"])
        receivers = self.mapping(doc, "receivers", {"otlp"})
        otlp = self.mapping(receivers, "otlp", {"grpc", "http", "bearer_token_env"}) if receivers else None
        if otlp is not None:
            if "grpc" in otlp:
                grpc = self.mapping(otlp, "grpc", {"endpoint"})
                config.grpc_endpoint = self.endpoint(grpc, "grpc") if grpc is not None else None
            if "http" in otlp:
                http = self.mapping(otlp, "http", {"endpoint", "max_body_bytes"})
                config.http_endpoint = self.endpoint(http, "http") if http is not None else None
                if http is not None and "max_body_bytes" in http:
                    size = http["max_body_bytes"]
                    if not isinstance(size, int) or isinstance(size, bool) or size < 1024:
                        raise self.error(
                            http, "max_body_bytes", "max_body_bytes: a whole number of bytes, at least 1024"
                        )
                    config.max_body_bytes = size
            if otlp.get("bearer_token_env") is not None:
                variable = str(otlp["bearer_token_env"])
                token = os.environ.get(variable)
                if not token:
                    raise self.error(
                        otlp,
                        "bearer_token_env",
                        f"bearer_token_env: environment variable {variable} is not set",
                    )
                config.bearer_token = token
        admin = self.mapping(doc, "admin", {"endpoint"})
        if admin is not None:
            config.admin_endpoint = self.endpoint(admin, "admin") or DEFAULT_ADMIN
        processors = doc.get("processors")
        if processors is not None:
            if not isinstance(processors, Located):
                raise self.error(
                    doc, "processors", "processors: a mapping of processor name to its configuration"
                )
            config.processors = processors
        exporters = self.mapping(doc, "exporters", {"prometheus", "parquet"})
        if exporters is not None:
            prometheus = self.mapping(exporters, "prometheus", {"label_limits"})
            if prometheus is not None and prometheus.get("label_limits") is not None:
                limits = prometheus["label_limits"]
                if not isinstance(limits, Mapping) or not all(
                    isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in limits.values()
                ):
                    raise self.error(
                        prometheus, "label_limits", "label_limits: label name to a positive whole number"
                    )
                config.label_limits = {str(k): int(v) for k, v in limits.items()}
            parquet = self.mapping(exporters, "parquet", {"retention_days", "compaction_interval_s"})
            if parquet is not None:
                days = parquet.get("retention_days")
                if days is not None:
                    if not isinstance(days, int) or isinstance(days, bool) or days <= 0:
                        raise self.error(
                            parquet, "retention_days", "retention_days: a positive whole number of days"
                        )
                    config.retention_days = days
                interval = parquet.get("compaction_interval_s")
                if interval is not None:
                    # the YAML loader reads decimals exactly, as Decimal
                    if (
                        not isinstance(interval, (int, float, Decimal))
                        or isinstance(interval, bool)
                        or interval <= 0
                    ):
                        raise self.error(
                            parquet,
                            "compaction_interval_s",
                            "compaction_interval_s: a positive number of seconds",
                        )
                    config.compaction_interval_s = float(interval)
        service = self.mapping(doc, "service", {"pipelines"})
        pipelines = self.mapping(service, "pipelines", {"traces"}) if service else None
        traces = self.mapping(pipelines, "traces", {"processors"}) if pipelines else None
        if traces is not None and traces.get("processors") is not None:
            order = traces["processors"]
            if not isinstance(order, list) or not all(isinstance(p, str) for p in order):
                raise self.error(traces, "processors", "processors: a list of processor names")
            config.pipeline = list(order)
        return config

    def endpoint(self, node: Located, what: str) -> str | None:
        value = node.get("endpoint")
        if value is None:
            return None
        host, _, port = str(value).rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise self.error(node, "endpoint", f"{what}.endpoint: host:port; got {value!r}")
        return str(value)


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
        print(f"costspan config: {exc}", file=sys.stderr)
        return 1
    chain = ", ".join(p.name for p in config.build_chain().processors)
    print(
        f"{args.file}: valid (receivers: gRPC {config.grpc_endpoint or 'off'}, "
        f"HTTP {config.http_endpoint or 'off'}; processors: {chain})"
    )
    return 0
