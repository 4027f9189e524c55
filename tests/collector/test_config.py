"""The collector configuration: valid files, and mistakes named by file, line and key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from textwrap import dedent

import pytest

from costspan.collector.config import CollectorConfig, ConfigFileError, load_config

COSTSPAN = Path(sys.executable).with_name("costspan")


def write(tmp_path, text):
    path = tmp_path / "costspan.yaml"
    path.write_text(dedent(text).lstrip())
    return path


def test_a_full_configuration(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_TOKEN", "t0k")
    (tmp_path / "prices.yaml").write_text("discounts:\n  - {provider: openai, percent: 10}\n")
    path = write(
        tmp_path,
        """
        data_dir: /var/lib/costspan
        receivers:
          otlp:
            grpc: null
            http: {endpoint: "0.0.0.0:14318", max_body_bytes: 1048576}
            bearer_token_env: MY_TOKEN
        processors:
          price: {overrides: prices.yaml}
          attribute: {defaults: {environment: production}}
        exporters:
          prometheus: {label_limits: {feature: 100}}
        admin: {endpoint: "127.0.0.1:19464"}
        service:
          pipelines:
            traces:
              processors: [normalize, dedupe, price, attribute, redact]
        """,
    )
    config = load_config(path)
    assert config.grpc_endpoint is None and config.http_endpoint == "0.0.0.0:14318"
    assert config.max_body_bytes == 1048576 and config.bearer_tokens == ("t0k",)
    assert config.processors["price"]["overrides"] == str(tmp_path / "prices.yaml")
    assert config.label_limits == {"feature": 100} and config.data_dir == "/var/lib/costspan"
    assert [p.name for p in config.build_chain().processors] == [
        "normalize",
        "dedupe",
        "price",
        "attribute",
        "redact",
    ]
    checked = subprocess.run([str(COSTSPAN), "config", "check", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0 and "valid" in checked.stdout


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("recievers: {}\n", 1, "recievers: unknown section"),
        ("receivers:\n  otlp:\n    grpc: {endpoint: nowhere}\n", 3, "grpc.endpoint: host:port"),
        ("receivers:\n  otlp:\n    gprc: {}\n", 3, "otlp.gprc: unknown key"),
        ("processors:\n  attribute:\n    defaults:\n      colour: red\n", 4, "defaults.colour: not a field"),
        ("processors:\n  price:\n    overrides: missing.yaml\n", 2, "cannot read"),
        (
            "processors:\n  dedupe: {}\nservice:\n  pipelines:\n    traces:\n      processors: [normalize]\n",
            2,
            "configured but not in the pipeline",
        ),
        ("exporters:\n  prometheus:\n    label_limits: {feature: -1}\n", 3, "label_limits"),
        ("receivers:\n  otlp:\n    bearer_token_env: COSTSPAN_TEST_NO_SUCH_VARIABLE\n", 3, "is not set"),
        ("a: [1\n", 2, "not valid YAML"),
        ("data_dir: x\ndata_dir: y\n", 2, "duplicate key"),
        ("service:\n  workers: 2\n  shutdown_grace_period: soon\n", 3, "shutdown_grace_period: a duration"),
        ("service:\n  shutdown_grace_period: 0s\n", 2, "shutdown_grace_period: from 1s to 60m"),
        ("service:\n  shutdown_grace_period: 2h\n", 2, "shutdown_grace_period: from 1s to 60m"),
        ("service:\n  shutdown_grace: 10s\n", 2, "service.shutdown_grace: unknown key"),
    ],
)
def test_mistakes_name_file_and_line(tmp_path, text, line, fragment):
    path = write(tmp_path, text)
    with pytest.raises(ConfigFileError) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}:{line}:"), str(err.value)
    assert fragment in str(err.value)
    checked = subprocess.run([str(COSTSPAN), "config", "check", str(path)], capture_output=True, text=True)
    assert checked.returncode == 1 and f"{path}:{line}:" in checked.stderr


def test_an_empty_file_is_the_defaults(tmp_path):
    config = load_config(write(tmp_path, ""))
    assert config.grpc_endpoint == "127.0.0.1:4317" and config.http_endpoint == "127.0.0.1:4318"
    assert config.shutdown_grace_period_s == 30.0


@pytest.mark.parametrize(("value", "seconds"), [("45s", 45.0), ("2m", 120.0), ("1500ms", 1.5), (10, 10.0)])
def test_the_shutdown_grace_period(tmp_path, value, seconds):
    config = load_config(write(tmp_path, f"service:\n  shutdown_grace_period: {value}\n"))
    assert config.shutdown_grace_period_s == seconds


def test_forward_exporters_and_the_memory_limiter(tmp_path, monkeypatch):
    monkeypatch.setenv("COSTSPAN_TEST_DD_KEY", "k3y")
    path = write(
        tmp_path,
        """
        exporters:
          otlp/tempo:
            endpoint: http://tempo.internal:4318
            headers: {x-scope-orgid: acme}
            timeout: 2500ms
            retry_on_failure: {initial_interval: 1s, max_interval: 1m, max_elapsed_time: 0s}
            sending_queue: {max_bytes: 1048576}
          otlp/datadog:
            endpoint: https://agent.internal:4317
            protocol: grpc
            compression: none
            headers: {dd-api-key: "${env:COSTSPAN_TEST_DD_KEY}"}
        memory_limiter: {max_in_flight_bytes: 1048576, max_wal_pending_bytes: 2097152}
        service:
          pipelines:
            traces:
              exporters: [parquet, prometheus, otlp/tempo, otlp/datadog]
        """,
    )
    config = load_config(path)
    tempo, datadog = config.forward
    assert (tempo.name, tempo.settings.endpoint, tempo.settings.protocol) == (
        "otlp/tempo",
        "http://tempo.internal:4318",
        "http/protobuf",
    )
    assert tempo.settings.headers == {"x-scope-orgid": "acme"} and tempo.settings.timeout_s == 2.5
    assert (tempo.retry.initial_interval, tempo.retry.max_interval, tempo.retry.max_elapsed_time) == (
        1,
        60,
        0,
    )
    assert tempo.max_queue_bytes == 1048576 and tempo.settings.compression == "gzip"
    assert (datadog.settings.protocol, datadog.settings.compression) == ("grpc", "none")
    assert datadog.settings.headers == {"dd-api-key": "k3y"}
    assert (config.max_in_flight_bytes, config.max_wal_pending_bytes) == (1048576, 2097152)
    checked = subprocess.run([str(COSTSPAN), "config", "check", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0 and "otlp/tempo -> http://tempo.internal:4318" in checked.stdout


FORWARD = "exporters:\n  otlp:\n    endpoint: http://127.0.0.1:4318\n"


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("exporters:\n  otlp:\n    headers: {a: b}\n", 2, "exporters.otlp.endpoint: required"),
        ("exporters:\n  otlp:\n    endpoint: tempo:4318\n", 3, "endpoint: http(s)://host"),
        (FORWARD + "    protocol: thrift\n", 4, "protocol: one of http/protobuf, grpc"),
        (FORWARD + "    compression: zstd\n", 4, "compression: one of gzip, none"),
        (FORWARD + "    timeout: soon\n", 4, "timeout: a duration"),
        (FORWARD + "    retry_on_failure: {max_interval: -1s}\n", 4, "max_interval: a duration"),
        (FORWARD + "    sending_queue: {max_bytes: 10}\n", 4, "max_bytes: a whole number of bytes"),
        (FORWARD + "    batch: {}\n", 4, "otlp.batch: unknown key"),
        (FORWARD + "    headers: {k: '${env:COSTSPAN_TEST_NO_SUCH_VARIABLE}'}\n", 4, "is not set"),
        ("exporters:\n  jaeger: {}\n", 2, "exporters.jaeger: unknown exporter"),
        (
            FORWARD + "service:\n  pipelines:\n    traces:\n      exporters: [parquet]\n",
            7,
            "otlp is configured but not in the pipeline's exporters",
        ),
        (
            FORWARD + "service:\n  pipelines:\n    traces:\n      exporters: [parquet, otlp/x]\n",
            7,
            "'otlp/x' is not configured",
        ),
        (
            FORWARD + "service:\n  pipelines:\n    traces:\n      processors: [normalize, price]\n",
            7,
            "must pass the redact processor",
        ),
        ("memory_limiter: {max_in_flight_bytes: 100}\n", 1, "max_in_flight_bytes: a whole number"),
        ("memory_limiter: {max_heap: 100}\n", 1, "memory_limiter.max_heap: unknown key"),
    ],
)
def test_forward_mistakes_name_file_and_line(tmp_path, text, line, fragment):
    test_mistakes_name_file_and_line(tmp_path, text, line, fragment)


EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "costspan.example.yaml"


def test_the_opentelemetry_collector_shape_of_the_receivers(tmp_path):
    # as an OpenTelemetry Collector configuration gives it (otelcol's otlp receiver README)
    path = write(
        tmp_path,
        """
        receivers:
          otlp:
            protocols:
              grpc:
                endpoint: 0.0.0.0:14317
              http:
                endpoint: 0.0.0.0:14318
                max_request_body_size: 4194304
        service:
          pipelines:
            traces:
              receivers: [otlp]
              processors: [normalize, dedupe, price, attribute, redact]
              exporters: [parquet]
        """,
    )
    config = load_config(path)
    assert (config.grpc_endpoint, config.http_endpoint) == ("0.0.0.0:14317", "0.0.0.0:14318")
    assert config.max_body_bytes == 4194304
    # there, a protocol left out does not listen, and one without settings listens on its default
    only_grpc = load_config(write(tmp_path, "receivers:\n  otlp:\n    protocols:\n      grpc:\n"))
    assert (only_grpc.grpc_endpoint, only_grpc.http_endpoint) == ("127.0.0.1:4317", None)
    # costspan's own shape is read as before: a listener left out takes its default, null turns it off
    own = load_config(write(tmp_path, "receivers:\n  otlp:\n    grpc: null\n"))
    assert (own.grpc_endpoint, own.http_endpoint) == (None, "127.0.0.1:4318")


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        (
            "receivers:\n  otlp:\n    grpc: {endpoint: 127.0.0.1:1}\n    protocols:\n      http: {}\n",
            4,
            "either under protocols",
        ),
        ("receivers:\n  otlp:\n    protocols: {}\n", 3, "receivers.otlp.protocols: grpc, http or both"),
        (
            "receivers:\n  otlp:\n    protocols:\n      thrift_http: {}\n",
            4,
            "receivers.otlp.protocols.thrift_http: unknown key",
        ),
        (
            "receivers:\n  otlp:\n    protocols:\n      grpc: {endpoint: nowhere}\n",
            4,
            "grpc.endpoint: host:port",
        ),
        ("service:\n  pipelines:\n    traces:\n      receivers: [jaeger]\n", 4, "traces.receivers: [otlp]"),
    ],
)
def test_collector_shape_mistakes_name_file_and_line(tmp_path, text, line, fragment):
    test_mistakes_name_file_and_line(tmp_path, text, line, fragment)


def test_config_check_reports_every_mistake_in_a_file(tmp_path):
    path = write(
        tmp_path,
        """
        recievers: {}
        receivers:
          otlp:
            protocols:
              grpc: {endpoint: nowhere}
              http: {endpoint: 127.0.0.1:4318, max_request_body_size: 10}
        admin: {endpoint: "127.0.0.1:99999", colour: blue}
        exporters:
          parquet: {retention_days: -1}
        memory_limiter: {max_in_flight_bytes: 100}
        service:
          workers: 0
          shutdown_grace_period: soon
        processors:
          attribute:
            defaults:
              colour: red
        anomalies: {baseline_weeks: 1}
        """,
    )
    expected = [
        (1, "recievers: unknown section"),
        (5, "receivers.otlp.protocols.grpc.endpoint: host:port"),
        (6, "receivers.otlp.protocols.http.max_request_body_size: a whole number of bytes"),
        (7, "admin.colour: unknown key"),
        (7, "admin.endpoint: host:port"),
        (9, "exporters.parquet.retention_days: a positive whole number"),
        (10, "memory_limiter.max_in_flight_bytes: a whole number of bytes"),
        (12, "service.workers: a whole number of worker processes"),
        (13, "service.shutdown_grace_period: a duration"),
        (17, "attribute.defaults.colour: not a field"),
        (18, "anomalies.baseline_weeks: a whole number from 2 to 52"),
    ]
    with pytest.raises(ConfigFileError) as err:
        load_config(path)
    mistakes = str(err.value).splitlines()
    assert len(mistakes) == len(expected), mistakes
    for (line, fragment), mistake in zip(expected, mistakes, strict=True):
        assert mistake.startswith(f"{path}:{line}: ") and fragment in mistake, (line, fragment, mistake)
    checked = subprocess.run([str(COSTSPAN), "config", "check", str(path)], capture_output=True, text=True)
    assert checked.returncode == 1
    assert checked.stderr.splitlines() == [f"costspan config: {m}" for m in mistakes]
    served = subprocess.run(
        [str(COSTSPAN), "serve", "--config", str(path), "--data-dir", str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert served.returncode == 2
    assert served.stderr.splitlines() == [f"costspan serve: {m}" for m in mistakes]


def test_the_example_configuration_is_valid_and_holds_the_defaults():
    checked = subprocess.run([str(COSTSPAN), "config", "check", str(EXAMPLE)], capture_output=True, text=True)
    assert checked.returncode == 0 and "valid" in checked.stdout, checked.stderr
    example, defaults = load_config(EXAMPLE), CollectorConfig()
    for name in (
        "grpc_endpoint",
        "http_endpoint",
        "admin_endpoint",
        "max_body_bytes",
        "max_in_flight_bytes",
        "max_wal_pending_bytes",
        "retention_days",
        "compaction_interval_s",
        "workers",
        "shutdown_grace_period_s",
        "anomalies",
        "budgets",
        "forward",
    ):
        assert getattr(example, name) == getattr(defaults, name), name
    assert [p.name for p in example.build_chain().processors] == [
        p.name for p in defaults.build_chain().processors
    ]
