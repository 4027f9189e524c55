"""The collector configuration: valid files, and mistakes named by file, line and key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from textwrap import dedent

import pytest

from costspan.collector.config import ConfigFileError, load_config

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
