"""The distribution: one `costspan` package tree, a light default install, data files shipped."""

from __future__ import annotations

import importlib
import importlib.util
import os
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
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(ROOT)],
        check=True,
        timeout=300,
    )
    (path,) = out.glob("costspan-*.whl")
    return zipfile.ZipFile(path)


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
