"""The ``costspan`` command: one entry point, each area contributing its subcommands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any


def _version() -> str:
    try:
        return version("costspan")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    from costspan.pricing import cli as pricing_cli

    from . import config, demo, serve, sql

    parser = argparse.ArgumentParser(
        prog="costspan",
        description="OpenTelemetry-native AI cost observability: where is our AI money going, and why?",
    )
    parser.add_argument("--version", action="version", version=f"costspan {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve.register(commands)
    pricing_cli.register(commands)
    sql.register(commands)
    config.register(commands)
    demo.register(commands)
    _register_answers(commands)
    return parser


def _register_answers(commands: Any) -> None:
    from .answers import anomalies, budget_cli, forecast, rules

    budget_cli.register(commands)
    forecast.register(commands)
    anomalies.register(commands)
    rules.register(commands)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "pricing":
        from costspan.pricing import cli as pricing_cli

        return pricing_cli.run(args)
    if hasattr(args, "handler"):  # every other command names its own
        return int(args.handler(args))
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover - argparse rejects it first
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
