"""YAML files whose mistakes are reported by file and line: override files, collector configurations.

Mappings load as :class:`Located` (a dict that knows the line it, and each of its keys, stood on); numbers
with a fraction load as exact decimals, because these files hold prices; duplicate and non-string keys are
errors.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml


class YAMLFileError(ValueError):
    """A file that is not valid; the message starts with ``file:line:``."""


class Located(dict):  # type: ignore[type-arg]
    """A YAML mapping that remembers the line it, and each of its keys, stood on."""

    line: int
    key_lines: dict[str, int]

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class _Loader(yaml.SafeLoader):
    error: type[ValueError] = YAMLFileError


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> Located:
    loader.flatten_mapping(node)
    out = Located()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if not isinstance(key, str):
            raise loader.error(f"{loader.name}:{line}: keys are strings; got {key!r}")
        if key in out:
            raise loader.error(f"{loader.name}:{line}: duplicate key {key!r}")
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = line
    return out


def _construct_float(loader: _Loader, node: yaml.ScalarNode) -> Decimal | float:
    # Prices are money: keep the digits as written instead of passing through a binary float.
    text = str(loader.construct_scalar(node)).replace("_", "")
    try:
        return Decimal(text)
    except InvalidOperation:
        return float(loader.construct_yaml_float(node))


def _construct_timestamp(loader: _Loader, node: yaml.ScalarNode) -> Any:
    try:
        return loader.construct_yaml_timestamp(node)
    except ValueError as exc:
        raise loader.error(f"{loader.name}:{node.start_mark.line + 1}: not a valid date: {exc}") from exc


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)
_Loader.add_constructor("tag:yaml.org,2002:float", _construct_float)


def load_yaml(path: str | Path, error: type[ValueError] = YAMLFileError) -> tuple[Any, str]:
    """The document of a YAML file, and its text; mistakes raise ``error`` naming the file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text") from exc
    loader = _Loader(text)
    loader.name = str(path)
    loader.error = error
    try:
        return loader.get_single_data(), text
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise error(f"{path}:{line}: not valid YAML: {exc.problem or exc}") from exc
    finally:
        loader.dispose()
