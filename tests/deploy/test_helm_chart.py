"""deploy/helm/costspan: `helm lint` finds nothing above INFO; `helm template` renders manifests that pass
Kubernetes' API schemas (strict: no unknown field) for the oldest and newest Kubernetes the chart supports,
with the defaults and with every option on; values.schema.json refuses mistakes; the pieces refer to each
other correctly (Service, ServiceMonitor, Secret, probes, volumes, the image's user and paths); and the
configuration the chart renders runs a real collector whose probes answer without the admin token.

Helm here is Helm's own Go SDK (v4) through helm-python-sdk, pinned in the test extra (tests/support/helm.py):
no helm binary installs from the package registries this project uses. The schemas are kubernetes-validate's,
also pinned."""

from __future__ import annotations

import base64
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import httpx2 as httpx
import kubernetes_validate
import pytest
import yaml

from tests.support.collector import COSTSPAN, Collector
from tests.support.dockerfile import DOCKERFILE, stages
from tests.support.helm import HelmRefused, lint, template

CHART = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "costspan"
# the chart's kubeVersion (>=1.25) and the newest Kubernetes kubernetes-validate knows
KUBERNETES = ("1.25.0", "1.37.0")
INFO = 1  # helm lint's severities: 1 INFO, 2 WARNING, 3 ERROR

EVERYTHING_ON: dict[str, Any] = {
    "auth": {
        "otlp": {"enabled": True, "tokens": "sender-old,sender-new"},
        "admin": {"enabled": True, "token": "admin-s3cret"},
    },
    "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
    "persistence": {"enabled": False},
    "config": {
        "processors": {"attribute": {"defaults": {"environment": "production"}}},
        "exporters": {"parquet": {"retention_days": 90}},
        # the chart's listeners win over these; what it does not set (max_body_bytes) stays
        "receivers": {"otlp": {"http": {"endpoint": "127.0.0.1:1", "max_body_bytes": 4194304}}},
    },
    "podAnnotations": {"example.com/team": "platform"},
    "extraEnv": [{"name": "TZ", "value": "UTC"}],
}


def render(values: dict[str, Any], name: str = "costspan") -> dict[str, dict[str, Any]]:
    """``helm template``: the manifests by kind (each kind once in this chart)."""
    files = template(CHART, values, name=name, namespace="observability")
    manifests: dict[str, dict[str, Any]] = {}
    for path, text in files.items():
        if path.endswith(".yaml"):
            for document in yaml.safe_load_all(text):
                if document:
                    assert document["kind"] not in manifests
                    manifests[document["kind"]] = document
    return manifests


@pytest.fixture(scope="module")
def defaults() -> dict[str, dict[str, Any]]:
    return render({})


@pytest.fixture(scope="module")
def everything() -> dict[str, dict[str, Any]]:
    return render(EVERYTHING_ON)


def container(manifests: dict[str, dict[str, Any]]) -> dict[str, Any]:
    [only] = manifests["StatefulSet"]["spec"]["template"]["spec"]["containers"]
    return only


def test_helm_lint_finds_nothing_above_info():
    for values in ({}, EVERYTHING_ON):
        linted = lint(CHART, values)
        assert linted["errors"] == []
        above = [m for m in linted["messages"] if m["severity"] > INFO]
        assert above == [], above


def test_the_image_tag_defaults_to_costspans_version(defaults):
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    version = tomllib.loads((CHART.parents[2] / "pyproject.toml").read_text())["project"]["version"]
    assert chart["appVersion"] == version
    assert container(defaults)["image"] == f"costspan:{version}"


def test_the_defaults_render_a_statefulset_its_service_and_configuration(defaults):
    assert set(defaults) == {"StatefulSet", "Service", "ConfigMap"}


def test_every_option_renders_a_secret_and_a_service_monitor(everything):
    assert set(everything) == {"StatefulSet", "Service", "ConfigMap", "Secret", "ServiceMonitor"}


@pytest.mark.parametrize("version", KUBERNETES)
def test_manifests_pass_the_kubernetes_api_schemas(defaults, everything, version):
    for manifests in (defaults, everything):
        for kind, manifest in manifests.items():
            if kind == "ServiceMonitor":
                continue  # the Prometheus Operator's resource: checked against the Service below
            kubernetes_validate.validate(manifest, version, strict=True)


def test_the_schema_check_finds_a_mistake(defaults):
    # an unknown field in a pod spec is refused: the check above can fail
    wrong = yaml.safe_load(yaml.safe_dump(defaults["StatefulSet"]))
    container({"StatefulSet": wrong})["livenessProbe"]["httpGet"]["paht"] = "/healthz"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong, KUBERNETES[0], strict=True)


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({"replicaCount": "two"}, "replicaCount"),
        ({"image": {"repository": "costspan", "tag": "latest"}}, "tag"),
        ({"persistance": {"enabled": False}}, "persistance"),
        ({"ports": {"otlpGrpc": 4317, "otlpHttp": 4318, "admin": 70000}}, "admin"),
        ({"probes": {"scheme": "TCP"}}, "scheme"),
        ({"config": {"data_dir": "/elsewhere"}}, "config"),
        ({"auth": {"otlp": {"enabled": True}}}, "auth.otlp.tokens"),
        ({"auth": {"admin": {"enabled": True, "token": ""}}}, "auth.admin.token"),
    ],
)
def test_mistaken_values_are_refused(values, says):
    with pytest.raises(HelmRefused) as refused:
        render(values)
    assert says in str(refused.value)


def test_the_service_and_probes_reach_the_containers_ports(everything):
    ports = {p["name"]: p["containerPort"] for p in container(everything)["ports"]}
    assert ports == {"otlp-grpc": 4317, "otlp-http": 4318, "admin": 9464}
    service = everything["Service"]
    assert {p["targetPort"] for p in service["spec"]["ports"]} == set(ports)
    pod_labels = everything["StatefulSet"]["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert everything["StatefulSet"]["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
    assert everything["StatefulSet"]["spec"]["serviceName"] == service["metadata"]["name"]
    probes = {name: container(everything)[name]["httpGet"] for name in ("livenessProbe", "readinessProbe")}
    assert probes["livenessProbe"] == {"path": "/healthz", "port": "admin", "scheme": "HTTP"}
    assert probes["readinessProbe"] == {"path": "/readyz", "port": "admin", "scheme": "HTTP"}
    assert container(everything)["startupProbe"]["httpGet"]["path"] == "/healthz"


def test_the_service_monitor_scrapes_the_admin_port_as_job_costspan_with_the_token(everything):
    monitor = everything["ServiceMonitor"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    service = everything["Service"]
    labels = service["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    # the job label's value is the job name the rules in deploy/prometheus select
    assert labels[monitor["spec"]["jobLabel"]] == "costspan"
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    credentials = endpoint["authorization"]["credentials"]
    assert credentials["name"] == everything["Secret"]["metadata"]["name"]
    assert credentials["key"] in everything["Secret"]["data"]


def test_the_tokens_come_from_the_secret_the_configuration_names(everything):
    secret = everything["Secret"]
    env = {e["name"]: e for e in container(everything)["env"]}
    for variable, key in (("COSTSPAN_TOKEN", "otlp-tokens"), ("COSTSPAN_ADMIN_TOKEN", "admin-token")):
        reference = env[variable]["valueFrom"]["secretKeyRef"]
        assert reference == {"name": secret["metadata"]["name"], "key": key}
    config = yaml.safe_load(everything["ConfigMap"]["data"]["costspan.yaml"])
    assert config["receivers"]["otlp"]["bearer_token_env"] == "COSTSPAN_TOKEN"
    assert config["admin"]["bearer_token_env"] == "COSTSPAN_ADMIN_TOKEN"
    # a Secret of one's own: the chart makes none and refers to it
    own = render({**EVERYTHING_ON, "auth": {**EVERYTHING_ON["auth"], "existingSecret": "costspan-tokens"}})
    assert "Secret" not in own
    references = {e["valueFrom"]["secretKeyRef"]["name"] for e in container(own)["env"] if "valueFrom" in e}
    assert references == {"costspan-tokens"}
    assert own["ServiceMonitor"]["spec"]["endpoints"][0]["authorization"]["credentials"]["name"] == (
        "costspan-tokens"
    )


def test_the_pod_runs_the_image_as_its_user_with_the_image_paths(defaults, everything):
    _, found = stages(DOCKERFILE.read_text())
    runtime = found[-1]
    uid, _, gid = runtime.last("USER").arguments.partition(":")
    [volume] = runtime.last("VOLUME").words()
    image_command = runtime.last("CMD").words()
    pod = defaults["StatefulSet"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == int(uid)
    assert pod["securityContext"]["runAsGroup"] == int(gid)
    assert pod["securityContext"]["runAsNonRoot"] is True
    args = container(defaults)["args"]
    assert args == image_command, "the image's own command"
    mounts = {m["name"]: m["mountPath"] for m in container(defaults)["volumeMounts"]}
    assert mounts["data"] == volume == args[args.index("--data-dir") + 1]
    config_path = Path(args[args.index("--config") + 1])
    assert mounts["config"] == str(config_path.parent)
    assert config_path.name in defaults["ConfigMap"]["data"]
    # the data volume: a claim per replica, or an emptyDir when persistence is off
    [claim] = defaults["StatefulSet"]["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["resources"]["requests"]["storage"] == "20Gi"
    assert "volumeClaimTemplates" not in everything["StatefulSet"]["spec"]
    volumes = {v["name"]: v for v in everything["StatefulSet"]["spec"]["template"]["spec"]["volumes"]}
    assert volumes["data"] == {"name": "data", "emptyDir": {}}
    assert container(defaults)["resources"]["requests"] == {"cpu": "500m", "memory": "1Gi"}
    assert container(defaults)["securityContext"]["readOnlyRootFilesystem"] is True
    assert mounts["tmp"] == "/tmp"
    assert "env" not in container(defaults), "no token asked for, no variable"


def test_the_rendered_configuration_listens_on_the_pod_and_keeps_the_users_settings(everything):
    config = yaml.safe_load(everything["ConfigMap"]["data"]["costspan.yaml"])
    assert config["receivers"]["otlp"]["grpc"] == {"endpoint": "0.0.0.0:4317"}
    assert config["receivers"]["otlp"]["http"] == {"endpoint": "0.0.0.0:4318", "max_body_bytes": 4194304}
    assert config["admin"]["endpoint"] == "0.0.0.0:9464"
    assert config["service"] == {"workers": 2}
    assert config["exporters"] == {"parquet": {"retention_days": 90}}


def test_the_rendered_configuration_runs_a_collector_whose_probes_need_no_token(
    everything, tmp_path, monkeypatch
):
    config = tmp_path / "costspan.yaml"
    config.write_text(everything["ConfigMap"]["data"]["costspan.yaml"])
    secret = {k: base64.b64decode(v).decode() for k, v in everything["Secret"]["data"].items()}
    monkeypatch.setenv("COSTSPAN_TOKEN", secret["otlp-tokens"])
    monkeypatch.setenv("COSTSPAN_ADMIN_TOKEN", secret["admin-token"])
    checked = subprocess.run(
        [str(COSTSPAN), "config", "check", str(config)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stderr
    # the pod's listeners, moved to free loopback ports (the flags win over the file): nothing else changes
    collector = Collector(tmp_path / "data").start("--config", str(config))
    try:
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            path = container(everything)[probe]["httpGet"]["path"]
            assert httpx.get(f"{collector.admin_url}{path}", timeout=5).status_code == 200, probe
        metrics = f"{collector.admin_url}/metrics"
        assert httpx.get(metrics, timeout=5).status_code == 401
        authorized = {"Authorization": f"Bearer {secret['admin-token']}"}
        assert httpx.get(metrics, headers=authorized, timeout=5).status_code == 200
        span = {"resourceSpans": []}
        refused = httpx.post(f"http://127.0.0.1:{collector.http}/v1/traces", json=span, timeout=5)
        assert refused.status_code == 401
        sent = httpx.post(
            f"http://127.0.0.1:{collector.http}/v1/traces",
            json=span,
            headers={"Authorization": "Bearer sender-new"},
            timeout=5,
        )
        assert sent.status_code == 200
    finally:
        collector.kill()
