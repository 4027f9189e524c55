"""The distribution: one `costspan` package tree, a light default install, data files shipped."""

from __future__ import annotations

import importlib
import importlib.util
import os
import site
import subprocess
import sys
import zipfile
from importlib.metadata import requires
from pathlib import Path
from unittest.mock import patch

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = {"duckdb", "pyarrow", "fastapi", "uvicorn"}


def _name(requirement: str) -> str:
    return requirement.split(";")[0].split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower()


def test_default_install_is_light_and_collector_extra_is_not():
    reqs = requires("costspan") or []
    default = {_name(r) for r in reqs if "extra ==" not in r}
    collector = {_name(r) for r in reqs if 'extra == "collector"' in r}
    assert not default & HEAVY, default
    assert collector >= HEAVY, collector
    assert {"opentelemetry-api", "opentelemetry-sdk", "opentelemetry-instrumentation-httpx"} <= default


def test_folders_import_as_costspan_subpackages_only():
    import costspan.collector
    import costspan.pricing

    for package, folder in ((costspan.pricing, "pricing"), (costspan.collector, "collector")):
        installed = Path(package.__file__).parent
        # an editable install maps the folder itself; a built one (make's .venv) copies its modules
        modules = {p.name for p in (ROOT / folder).glob("*.py")}
        assert installed == ROOT / folder or modules <= {p.name for p in installed.glob("*.py")}
    code = "import importlib.util,sys; sys.exit(0 if importlib.util.find_spec('pricing') is None else 1)"
    assert subprocess.run([sys.executable, "-c", code], cwd="/").returncode == 0


def _compiled_modules() -> list[str]:
    """The modules setup.py compiles, as module names."""
    spec = importlib.util.spec_from_file_location("costspan_setup", ROOT / "setup.py")
    assert spec is not None and spec.loader is not None
    setup = importlib.util.module_from_spec(spec)
    with patch("setuptools.setup"), patch.dict(os.environ, {"COSTSPAN_COMPILE": "0"}):  # read, do not build
        spec.loader.exec_module(setup)
    return ["costspan." + path.removesuffix(".py").replace("/", ".") for path in setup.COMPILED]


def test_a_build_compiles_all_of_the_hot_path_or_none_of_it():
    modules = _compiled_modules()
    assert "costspan.processors.normalize" in modules
    kinds = {name: importlib.import_module(name).__file__.endswith(".so") for name in modules}
    assert len(set(kinds.values())) == 1, kinds


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, str]:
    """The plain-Python wheel, as ``make wheel COSTSPAN_COMPILE=0`` builds it, and the build's output."""
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--verbose", "--no-deps", "-w", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COSTSPAN_COMPILE": "0"},
    )
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    (path,) = out.glob("costspan-*.whl")
    return path, build.stdout + build.stderr


@pytest.fixture(scope="module")
def wheel(built) -> zipfile.ZipFile:
    return zipfile.ZipFile(built[0])


def test_the_build_declares_every_folder_it_ships(built):
    # setuptools warns, at length, about a folder of package data that is not a declared package
    assert "absent from the `packages` configuration" not in built[1]


def test_the_wheel_asks_only_the_light_dependencies_by_default(wheel):
    metadata = wheel.read(next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    requires = [
        line.removeprefix("Requires-Dist: ")
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist:")
    ]
    default = {_name(r) for r in requires if "extra ==" not in r}
    assert default and not default & HEAVY, default
    assert {"collector", "demo", "test"} <= {
        line.split(": ", 1)[1] for line in metadata.splitlines() if line.startswith("Provides-Extra:")
    }


# Packages only the collector needs: an application that installs costspan for its instrumentation gets none
# of them, and the instrumentation imports none of them.
COLLECTOR_ONLY = HEAVY | {"numpy", "statsmodels", "prometheus_client", "grpc_status"}


def test_the_application_install_imports_the_instrumentation_without_collector_parts(built, tmp_path):
    target = tmp_path / "app"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            str(built[0]),
        ],
        check=True,
        timeout=120,
    )
    # -S: no site-packages hooks (the development install's finder); the wheel's files first, then the
    # OpenTelemetry packages it depends on, from this environment; any collector-only import fails
    code = f"""
import sys
sys.path[:0] = [{str(target)!r}]
sys.path.extend({site.getsitepackages()!r})
class CollectorOnly:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {sorted(COLLECTOR_ONLY)!r}:
            raise ImportError(name + " is not an application-side dependency")
sys.meta_path.insert(0, CollectorOnly())
import costspan.instrumentation as instrumentation
assert instrumentation.__file__.startswith({str(target)!r}), instrumentation.__file__
from opentelemetry.sdk.trace import TracerProvider
instrumentor = instrumentation.CostspanInstrumentor()
instrumentor.instrument(tracer_provider=TracerProvider())
with instrumentation.attribute(team="search"):
    pass
instrumentor.uninstrument()
print("ok")
"""
    run = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr


def test_wheel_holds_one_package_tree_with_its_data(wheel):
    names = wheel.namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert tops == {"costspan"}
    for required in (
        "costspan/pricing/data/catalog.json",
        "costspan/pricing/data/rules.json",
        "costspan/pricing/_engine.py",
        "costspan/collector/cli.py",
        "costspan/instrumentation/__init__.py",
    ):
        assert required in names
    assert not any(n.startswith("costspan/tests") for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "costspan = costspan.collector.cli:main" in wheel.read(entry_points).decode()


def test_wheel_holds_the_console_its_templates_and_vendored_files_with_their_licences(wheel):
    names = set(wheel.namelist())
    console = ROOT / "collector" / "console"
    shipped = [p for p in console.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert len(shipped) > 10
    for path in shipped:
        assert f"costspan/collector/console/{path.relative_to(console).as_posix()}" in names
    for vendored in (console / "static" / "vendor").iterdir():
        assert vendored.is_file() or (vendored / "LICENSE").is_file(), vendored
