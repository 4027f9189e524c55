"""The build's one option: ``COSTSPAN_COMPILE=1`` compiles the span hot path with mypyc.

    COSTSPAN_COMPILE=1 pip install .          (make builds .venv this way)

The modules below run once or more per span: the canonical record, the dialect readers, the processor
chain and the pricing arithmetic. mypyc turns their type-annotated Python into a C extension (the same
source, the same behaviour), about twice as fast. Without the variable the package is plain Python.
Everything else (metadata, packages, dependencies) is in ``pyproject.toml``.

mypyc names a module by its path below a base folder, while this repository keeps ``costspan.semconv`` in
``semconv/`` (see ``[tool.setuptools.package-dir]``); so the sources are copied under
``build/mypyc-src/costspan/`` first, and compiled from there.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from setuptools import setup

COMPILED = (
    "semconv/attributes.py",
    "semconv/providers.py",
    "semconv/record.py",
    "semconv/dialects.py",
    "processors/_batch.py",
    "processors/normalize.py",
    "processors/dedupe.py",
    "processors/price.py",
    "processors/attribute.py",
    "processors/redact.py",
    "exporters/_tally.py",
    "pricing/_usage.py",
    "pricing/_plan.py",
    "pricing/_quote.py",
)


HERE = Path(__file__).parent


def _compiled_extensions() -> list:
    # Every build starts from an empty build folder. setuptools keeps build/lib.*/ from the last build and
    # packs whatever is there: extensions of modules since dropped from COMPILED, linked against an older
    # copy of mypyc's shared library, would load beside the new one, two incompatible copies of one class.
    shutil.rmtree(HERE / "build", ignore_errors=True)
    if os.environ.get("COSTSPAN_COMPILE", "").lower() not in ("1", "true", "yes"):
        return []
    from mypyc.build import mypycify  # a build requirement (pyproject.toml), used only here

    base = HERE / "build" / "mypyc-src"
    # whole folders, so that mypy sees the types the compiled modules import from their neighbours
    for folder in {Path(path).parts[0] for path in COMPILED}:
        shutil.copytree(
            HERE / folder, base / "costspan" / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    os.environ["MYPYPATH"] = str(base)  # the base folder module names are taken from
    return mypycify(
        [
            "--explicit-package-bases",
            "--ignore-missing-imports",
            *(str(base / "costspan" / path) for path in COMPILED),
        ],
        opt_level="3",
    )


setup(ext_modules=_compiled_extensions())
