"""`costspan serve` over TLS: mutual TLS on both receivers, two bearer tokens, the admin server over TLS with
its own token. The OpenTelemetry SDK's exporters send; `costspan sql` reads what was stored.

One collector serves the whole module (certificates made for it in tests/support/certs.py).
"""

from __future__ import annotations

import signal
import ssl
import time
from textwrap import dedent

import grpc
import httpx2 as httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from tests.support.certs import Pki, make_pki
from tests.support.collector import Collector
from tests.support.otlp_requests import chat_request
from tests.support.prometheus import PrometheusServer

TOKEN_A, TOKEN_B, ADMIN_TOKEN = "t0ken-a", "t0ken-b", "adm1n-t0ken"


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def collector(tmp_path_factory, pki):
    directory = tmp_path_factory.mktemp("tls")
    config = directory / "costspan.yaml"
    # paths relative to the configuration file, as an operator writes them
    tls = f'{{cert_file: {pki.server_cert.name}, key_file: {pki.server_key.name}, min_version: "1.3"}}'
    mutual = (
        f"{{cert_file: {pki.server_cert.name}, key_file: {pki.server_key.name}, "
        f"client_ca_file: {pki.ca.name}}}"
    )
    config.write_text(
        dedent(
            f"""
            receivers:
              otlp:
                grpc: {{endpoint: 127.0.0.1:4317, tls: {mutual}}}
                http: {{endpoint: 127.0.0.1:4318, tls: {mutual}}}
                bearer_token_env: [COSTSPAN_TEST_TOKEN, COSTSPAN_TEST_TOKEN_NEXT]
            admin:
              endpoint: 127.0.0.1:9464
              tls: {tls}
              bearer_token_env: COSTSPAN_TEST_ADMIN_TOKEN
            """
        )
    )
    for path in (pki.server_cert, pki.server_key, pki.ca):
        (directory / path.name).write_bytes(path.read_bytes())
    with pytest.MonkeyPatch.context() as env:
        env.setenv("COSTSPAN_TEST_TOKEN", TOKEN_A)
        env.setenv("COSTSPAN_TEST_TOKEN_NEXT", TOKEN_B)
        env.setenv("COSTSPAN_TEST_ADMIN_TOKEN", ADMIN_TOKEN)
        env.delenv("COSTSPAN_TOKEN", raising=False)
        running = Collector(directory / "data", admin_ca=pki.ca).start("--config", str(config))
    yield running
    if running.proc and running.proc.poll() is None:
        running.kill(signal.SIGTERM)


def provider_with(exporter) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout-api"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def send_llm_span(exporter, model: str, feature: str) -> None:
    provider = provider_with(exporter)
    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": model,
        "gen_ai.usage.input_tokens": 1000,
        "gen_ai.usage.output_tokens": 100,
        "costspan.feature": feature,
    }
    with provider.get_tracer("costspan.instrumentation").start_as_current_span(
        f"chat {model}", attributes=attrs
    ):
        pass
    provider.shutdown()


def client_context(pki: Pki, cert=None, key=None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca))
    if cert is not None:
        context.load_cert_chain(str(cert), str(key))
    return context


def grpc_stub(collector: Collector, credentials: grpc.ChannelCredentials | None):
    target = f"127.0.0.1:{collector.grpc}"
    channel = grpc.secure_channel(target, credentials) if credentials else grpc.insecure_channel(target)
    return channel, trace_service_pb2_grpc.TraceServiceStub(channel)


def grpc_credentials(pki: Pki, cert=None, key=None) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=pki.ca.read_bytes(),
        private_key=key.read_bytes() if key else None,
        certificate_chain=cert.read_bytes() if cert else None,
    )


def stored_once(collector: Collector, request: trace_service_pb2.ExportTraceServiceRequest) -> None:
    """The request's one call is stored, and once: the refused attempts to send it left nothing."""
    trace_id = request.resource_spans[0].scope_spans[0].spans[0].trace_id.hex()
    collector.wait_for(f"SELECT count(*) FROM llm_calls_all WHERE trace_id = '{trace_id}'", ["1"])


def test_sdk_exporters_over_mutual_tls_with_either_token(collector, pki, monkeypatch):
    """Both configured tokens work, over gRPC and HTTP; the four calls are stored and priced."""
    # requests prefers these to the CA the exporter sets on its session (psf/requests issue 5209)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    for token, feature in ((TOKEN_A, "grpc-a"), (TOKEN_B, "grpc-b")):
        send_llm_span(
            GrpcExporter(
                endpoint=f"https://127.0.0.1:{collector.grpc}",
                credentials=grpc_credentials(pki, pki.client_cert, pki.client_key),
                headers={"authorization": f"Bearer {token}"},
            ),
            "gpt-4o",
            feature,
        )
    for token, feature in ((TOKEN_A, "http-a"), (TOKEN_B, "http-b")):
        send_llm_span(
            HttpExporter(
                endpoint=f"https://127.0.0.1:{collector.http}/v1/traces",
                certificate_file=str(pki.ca),
                client_certificate_file=str(pki.client_cert),
                client_key_file=str(pki.client_key),
                headers={"authorization": f"Bearer {token}"},
            ),
            "gpt-4o",
            feature,
        )
    collector.wait_for(
        "SELECT feature, cost_usd FROM llm_calls WHERE feature IS NOT NULL ORDER BY feature",
        [f"{feature},0.0035" for feature in ("grpc-a", "grpc-b", "http-a", "http-b")],
    )


def test_grpc_refuses_plaintext_a_missing_or_foreign_client_certificate_and_a_wrong_token(collector, pki):
    request = chat_request(1)
    auth = (("authorization", f"Bearer {TOKEN_A}"),)
    refused = {
        "plaintext": None,
        "no client certificate": grpc_credentials(pki),
        "client certificate of another CA": grpc_credentials(
            pki, pki.other_client_cert, pki.other_client_key
        ),
    }
    for what, credentials in refused.items():
        channel, stub = grpc_stub(collector, credentials)
        with channel, pytest.raises(grpc.RpcError) as denied:
            stub.Export(request, metadata=auth, timeout=10)
        assert denied.value.code() == grpc.StatusCode.UNAVAILABLE, what  # no connection was made
    channel, stub = grpc_stub(collector, grpc_credentials(pki, pki.client_cert, pki.client_key))
    with channel:
        for metadata in ((("authorization", "Bearer wrong"),), ()):
            with pytest.raises(grpc.RpcError) as denied:
                stub.Export(request, metadata=metadata, timeout=10)
            assert denied.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # the same channel with a token: the refusals above were the token's, not the connection's
        assert stub.Export(request, metadata=(("authorization", f"Bearer {TOKEN_B}"),), timeout=10) == (
            trace_service_pb2.ExportTraceServiceResponse()
        )
    stored_once(collector, request)


def test_http_refuses_plaintext_a_missing_or_foreign_client_certificate_and_a_wrong_token(collector, pki):
    request = chat_request(1)
    body = request.SerializeToString()
    headers = {"content-type": "application/x-protobuf", "authorization": f"Bearer {TOKEN_A}"}
    url = f"https://127.0.0.1:{collector.http}/v1/traces"
    with pytest.raises(httpx.TransportError):
        httpx.post(f"http://127.0.0.1:{collector.http}/v1/traces", content=body, headers=headers)
    for context in (
        client_context(pki),
        client_context(pki, pki.other_client_cert, pki.other_client_key),
    ):
        with pytest.raises(httpx.TransportError):
            httpx.post(url, content=body, headers=headers, verify=context)
    mutual = client_context(pki, pki.client_cert, pki.client_key)
    for sent in (
        {**headers, "authorization": "Bearer wrong"},
        {**headers, "authorization": f"Bearer {TOKEN_A},{TOKEN_B}"},
        {"content-type": "application/x-protobuf"},
    ):
        answer = httpx.post(url, content=body, headers=sent, verify=mutual)
        assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
    assert httpx.post(url, content=body, headers=headers, verify=mutual).status_code == 200
    stored_once(collector, request)


def unauthenticated(metrics: str) -> float:
    """costspan_collector_requests_refused_total{reason="unauthenticated"} in a /metrics page."""
    line = next(
        m
        for m in metrics.splitlines()
        if m.startswith('costspan_collector_requests_refused_total{reason="unauth')
    )
    return float(line.rsplit(" ", 1)[1])


def test_admin_metrics_over_tls_need_the_admin_token_and_the_probes_do_not(collector, pki):
    url = f"https://127.0.0.1:{collector.admin}"
    server_only = client_context(pki)
    metrics = httpx.get(
        f"{url}/metrics", headers={"authorization": f"Bearer {ADMIN_TOKEN}"}, verify=server_only
    )
    assert metrics.status_code == 200 and "costspan_collector_spans_received_total" in metrics.text
    for header in (None, "Bearer wrong", f"Bearer {TOKEN_A}"):  # a receiver token is not the admin's
        answer = httpx.get(
            f"{url}/metrics", headers={"authorization": header} if header else {}, verify=server_only
        )
        assert answer.status_code == 401 and "costspan" not in answer.text
    # a receiver's refusal of a wrong token is counted
    before = unauthenticated(metrics.text)
    mutual = client_context(pki, pki.client_cert, pki.client_key)
    wrong = {"content-type": "application/x-protobuf", "authorization": "Bearer wrong"}
    traces = f"https://127.0.0.1:{collector.http}/v1/traces"
    assert httpx.post(traces, content=b"", headers=wrong, verify=mutual).status_code == 401
    again = httpx.get(
        f"{url}/metrics", headers={"authorization": f"Bearer {ADMIN_TOKEN}"}, verify=server_only
    )
    assert unauthenticated(again.text) == before + 1
    for probe in ("/healthz", "/readyz"):
        assert httpx.get(f"{url}{probe}", verify=server_only).status_code == 200
    # min_version "1.3": a client that goes no higher than TLS 1.2 is refused
    tls_1_2 = client_context(pki)
    tls_1_2.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/healthz", verify=tls_1_2)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{collector.admin}/healthz")


def test_prometheus_scrapes_the_admin_server_over_tls_with_the_token(collector, pki, tmp_path):
    """The scrape configuration deploy/README.md gives, run by a real Prometheus."""
    token_file = tmp_path / "costspan-admin-token"
    token_file.write_text(ADMIN_TOKEN + "\n")
    scrape = {
        "scheme": "https",
        "tls_config": {"ca_file": str(pki.ca)},
        "authorization": {"credentials_file": str(token_file)},
    }
    prometheus = PrometheusServer(tmp_path / "prometheus", [f"127.0.0.1:{collector.admin}"], scrape=scrape)
    prometheus.start()
    try:
        prometheus.wait_for(
            'up{job="costspan"}', lambda result: bool(result) and result[0]["value"][1] == "1"
        )
        assert prometheus.query("costspan_collector_pipeline_workers")
    finally:
        prometheus.stop()


def test_renewed_certificates_are_taken_up_without_a_restart(tmp_path):
    """reload_interval: new server certificate, key and client CA files are used for new connections; a key
    that does not match its certificate yet (written first) is not taken, the previous files stay in use."""
    old, new = make_pki(tmp_path / "old"), make_pki(tmp_path / "new")
    directory = tmp_path / "collector"
    directory.mkdir()
    files = {"server.crt": "server_cert", "server.key": "server_key", "ca.crt": "ca"}

    def install(pki: Pki, *names: str) -> None:
        for name in names or files:
            (directory / name).write_bytes(getattr(pki, files[name]).read_bytes())

    install(old)
    tls = "{cert_file: server.crt, key_file: server.key, client_ca_file: ca.crt, reload_interval: 200ms}"
    config = directory / "costspan.yaml"
    config.write_text(
        f"receivers:\n  otlp:\n    grpc: {{endpoint: 127.0.0.1:4317, tls: {tls}}}\n"
        f"    http: {{endpoint: 127.0.0.1:4318, tls: {tls}}}\n"
    )
    collector = Collector(directory / "data").start("--config", str(config))
    try:

        def accepted(pki: Pki) -> tuple[bool, bool]:
            """Whether a client of ``pki`` (trusting its CA, with its client certificate) is served."""
            request = chat_request(1)
            channel, stub = grpc_stub(collector, grpc_credentials(pki, pki.client_cert, pki.client_key))
            with channel:
                try:
                    stub.Export(request, timeout=5)
                    over_grpc = True
                except grpc.RpcError as error:
                    if error.code() != grpc.StatusCode.UNAVAILABLE:  # not a refused connection
                        raise
                    over_grpc = False
            try:
                answer = httpx.post(
                    f"https://127.0.0.1:{collector.http}/v1/traces",
                    content=request.SerializeToString(),
                    headers={"content-type": "application/x-protobuf"},
                    verify=client_context(pki, pki.client_cert, pki.client_key),
                )
                over_http = answer.status_code == 200
            except httpx.TransportError:
                over_http = False
            return over_grpc, over_http

        def wait_until(expected: tuple[bool, bool], pki: Pki) -> None:
            deadline = time.monotonic() + 15
            while (found := accepted(pki)) != expected and time.monotonic() < deadline:
                time.sleep(0.1)
            assert found == expected

        assert accepted(old) == (True, True)
        assert accepted(new) == (False, False)
        install(new, "server.key")  # the new key beside the old certificate: not a pair, not taken
        time.sleep(0.5)
        assert accepted(old) == (True, True)
        install(new, "server.crt", "ca.crt")
        wait_until((True, True), new)
        assert accepted(old) == (False, False)  # the old server certificate and client CA are gone
    finally:
        collector.kill(signal.SIGTERM)
    assert b"TLS files not reloaded" in collector.proc.stderr.read()
