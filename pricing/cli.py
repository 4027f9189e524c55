"""``costspan pricing``: quote, lookup, list, audit and import, on the command line."""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TextIO

from ._catalog import Catalog, CatalogError, TieredPrice, dump_catalog, read_document
from ._corrections import CorrectionError
from ._defaults import PRIMARY_SOURCE, embedded_catalog, imported_catalog_dir, installed_catalogs, load_engine
from ._engine import PricingEngine
from ._overrides import OverrideError
from ._result import decimal_str
from ._usage import FIELD_TO_USAGE_KEY, Usage

# Fields a quote request may carry besides usage counts.
_REQUEST_FIELDS = {"id", "provider", "model", "timestamp", "service_tier", "deployment", "provider_cost"}


def register(subparsers: Any) -> None:
    pricing = subparsers.add_parser(
        "pricing",
        help="price calls, look up and list prices, import price catalogs",
        description="Exact, cache-, tier- and date-aware LLM prices.",
    )
    commands = pricing.add_subparsers(dest="pricing_command", required=True, metavar="COMMAND")

    quote = commands.add_parser(
        "quote",
        help="price one call from flags, or JSON lines on stdin",
        description=(
            "Price one call from flags, or with no --model one call per JSON line on stdin "
            "(fields: provider, model, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, "
            "cache_write_1h_tokens, reasoning_tokens, timestamp, service_tier, deployment, provider_cost, "
            "id, and any other usage key of the catalog such as web_searches or input_audio_tokens). "
            "input_tokens includes cache reads and writes; output_tokens includes reasoning. Prints JSON."
        ),
    )
    quote.add_argument("--model", help="model reference as the application reported it")
    quote.add_argument(
        "--provider", help="provider id or name (openai, anthropic, gcp.gemini, aws.bedrock ...)"
    )
    for field in FIELD_TO_USAGE_KEY:
        quote.add_argument(f"--{field.replace('_', '-')}", dest=field, type=int, metavar="N")
    quote.add_argument(
        "--usage",
        action="append",
        default=[],
        metavar="KEY=N",
        help="another usage count by its catalog key, e.g. web_searches=2 or input_audio_tokens=300",
    )
    quote.add_argument("--timestamp", help="when the call was made, ISO 8601 (default: now)")
    quote.add_argument(
        "--service-tier", help="tier the response reported: batch, flex, priority, default ..."
    )
    quote.add_argument(
        "--deployment", help="cloud deployment type priced above global rates: data_zone, regional (Azure)"
    )
    quote.add_argument(
        "--provider-cost", help="cost the provider reported, in USD (wins over the local price)"
    )
    _add_engine_options(quote)
    quote.set_defaults(handler=_quote, print_help=quote.print_help)

    lookup = commands.add_parser("lookup", help="which prices apply to a model, and why")
    lookup.add_argument("model")
    lookup.add_argument("--provider")
    lookup.add_argument("--at", help="date or timestamp (default: now)")
    lookup.add_argument("--json", action="store_true", help="print JSON")
    _add_engine_options(lookup)
    lookup.set_defaults(handler=_lookup)

    listing = commands.add_parser("list", help="models and the prices in force")
    listing.add_argument("--provider", help="only this provider (id or name)")
    listing.add_argument("--at", help="date or timestamp (default: now)")
    listing.add_argument("--format", choices=("table", "csv", "json"), default="table")
    _add_engine_options(listing)
    listing.set_defaults(handler=_list)

    audit = commands.add_parser(
        "audit",
        help="compare the catalog with LiteLLM's prices and the published prices costspan's corrections cite",
        description=(
            "Compare every model of the primary catalog (as its source has it) with a second source, "
            "LiteLLM's price file, and with the published prices of pricing/data/corrections.json. Each "
            "disagreement is listed with its class and is settled (by the correction named) or open."
        ),
    )
    audit.add_argument(
        "--litellm",
        metavar="FILE",
        help="LiteLLM's model_prices_and_context_window.json (or a catalog imported from it); default: "
        "<data dir>/pricing/litellm.json, else the installed litellm package's copy",
    )
    audit.add_argument("--at", help="compare the prices in force on this date (default: today)")
    audit.add_argument("--format", choices=("table", "csv", "json"), default="table")
    audit.add_argument("--open", action="store_true", help="list only the open disagreements")
    audit.add_argument("--data-dir", help="data directory (default: $COSTSPAN_DATA_DIR or ./costspan-data)")
    audit.set_defaults(handler=_audit)

    imports = commands.add_parser(
        "import",
        help="import a price catalog: 'genai-prices' (the installed package), a genai-prices data.json, "
        "or a LiteLLM model_prices_and_context_window.json",
    )
    imports.add_argument("source")
    imports.add_argument("--output", help="catalog file to write (default: <data dir>/pricing/<source>.json)")
    imports.add_argument("--data-dir", help="data directory (default: $COSTSPAN_DATA_DIR or ./costspan-data)")
    imports.set_defaults(handler=_import)


def _add_engine_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", help="data directory holding imported catalogs (default: ./costspan-data)"
    )
    parser.add_argument("--overrides", help="YAML price overrides (default: $COSTSPAN_PRICING_OVERRIDES)")
    parser.add_argument(
        "--catalog",
        action="append",
        metavar="FILE",
        help="price with these catalog files instead of the installed ones (repeatable, first wins)",
    )


class UsageError(ValueError):
    """A request the user must correct; printed without a traceback."""


def _engine(args: argparse.Namespace) -> PricingEngine:
    catalogs = [Catalog.load(path) for path in args.catalog] if args.catalog else None
    return load_engine(args.data_dir, overrides=args.overrides, catalogs=catalogs)


def run(args: argparse.Namespace) -> int:
    try:
        return int(args.handler(args))
    except (UsageError, CatalogError, CorrectionError, OverrideError, OSError) as exc:
        print(f"costspan pricing: {exc}", file=sys.stderr)
        return 2


# -- quote ------------------------------------------------------------------------------------------------


def _quote(args: argparse.Namespace) -> int:
    if args.model is None and sys.stdin.isatty():
        # nothing piped in and no --model: a person at a terminal, who would otherwise wait on a silent read
        args.print_help(sys.stderr)
        return 2
    engine = _engine(args)
    if args.model is None:
        return _quote_lines(engine, sys.stdin, sys.stdout)
    request: dict[str, Any] = {
        "model": args.model,
        "provider": args.provider,
        "timestamp": args.timestamp,
        "service_tier": args.service_tier,
        "deployment": args.deployment,
        "provider_cost": args.provider_cost,
    }
    for field in FIELD_TO_USAGE_KEY:
        request[field] = getattr(args, field)
    for item in args.usage:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--usage takes KEY=N; got {item!r}")
        request[key.strip()] = _number(value.strip(), key)
    known = set(engine.catalogs[0].units.by_usage_key) | set(FIELD_TO_USAGE_KEY) | _REQUEST_FIELDS
    print(json.dumps(quote_one(engine, request, known), indent=2))
    return 0


def _quote_lines(engine: PricingEngine, lines: TextIO, out: TextIO) -> int:
    known = set(engine.catalogs[0].units.by_usage_key) | set(FIELD_TO_USAGE_KEY) | _REQUEST_FIELDS
    failed = 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            request = json.loads(line, parse_float=Decimal)
            if not isinstance(request, dict):
                raise UsageError("each line is a JSON object")
            answer = quote_one(engine, request, known)
        except (UsageError, json.JSONDecodeError) as exc:
            failed += 1
            answer = {"line": number, "error": str(exc)}
        out.write(json.dumps(answer) + "\n")
    return 1 if failed else 0


def quote_one(engine: PricingEngine, request: Mapping[str, Any], known: set[str]) -> dict[str, Any]:
    unknown = sorted(set(request) - known)
    if unknown:
        raise UsageError(
            f"unknown field(s) {', '.join(unknown)}; usage fields are "
            f"{', '.join(FIELD_TO_USAGE_KEY)} or a catalog usage key (see 'costspan pricing lookup')"
        )
    usage = Usage.from_mapping({k: v for k, v in request.items() if k not in _REQUEST_FIELDS})
    result = engine.price(
        request.get("model"),
        usage,
        provider=request.get("provider"),
        timestamp=_timestamp(request.get("timestamp")),
        service_tier=request.get("service_tier"),
        context={"deployment": request["deployment"]} if request.get("deployment") else None,
        provider_cost=request.get("provider_cost"),
    )
    answer = result.to_dict()
    if request.get("id") is not None:
        answer = {"id": request["id"], **answer}
    return answer


def _number(text: str, key: str) -> int | Decimal:
    try:
        return int(text)
    except ValueError:
        try:
            return Decimal(text)
        except InvalidOperation:
            raise UsageError(f"{key}: not a number: {text!r}") from None


def _timestamp(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise UsageError(f"timestamp is an ISO 8601 string; got {value!r}")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"timestamp is not ISO 8601: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _at(value: str | None) -> datetime:
    if not value:
        return datetime.now(UTC)
    if len(value) == 10:
        try:
            return datetime.combine(date.fromisoformat(value), time(12), tzinfo=UTC)
        except ValueError:
            raise UsageError(f"--at is a date (YYYY-MM-DD) or an ISO 8601 timestamp; got {value!r}") from None
    stamp = _timestamp(value)
    assert stamp is not None
    return stamp


# -- lookup -----------------------------------------------------------------------------------------------


def _lookup(args: argparse.Namespace) -> int:
    engine = _engine(args)
    at = _at(args.at)
    resolution = engine.resolve(args.model, args.provider)
    if resolution is None:
        reason = engine.unresolved_reason(args.model, args.provider)
        if args.json:
            print(
                json.dumps(
                    {
                        "model": args.model,
                        "provider": args.provider,
                        "status": "unknown_model",
                        "detail": reason,
                    },
                    indent=2,
                )
            )
        else:
            print(f"{args.model}: unknown model ({reason})")
        return 1
    model = resolution.model
    in_force = model.price_set_at(at)
    info: dict[str, Any] = {
        "query": {"model": args.model, "provider": args.provider, "at": at.isoformat()},
        "catalog": resolution.catalog.version
        + (f" ({resolution.catalog.path})" if resolution.catalog.path else ""),
        "provider": resolution.provider.id,
        "priced_from": resolution.owner.id,
        "model": model.id,
        "name": model.name,
        "origin": model.origin,
        "estimated": resolution.estimated,
        "resolution": list(resolution.steps) or ["matched as given"],
        "context_window": model.context_window,
        "prices_in_force": {
            "since": in_force.when.describe() if in_force.when else "always",
            "prices": _prices_json(in_force.prices),
        },
        "history": [
            {"when": p.when.describe() if p.when else "always", "prices": _prices_json(p.prices)}
            for p in model.prices
        ],
        "variants": [
            {
                "context": dict(v.context),
                "when": v.when.describe() if v.when else "always",
                "prices": _prices_json(v.prices),
            }
            for v in model.variants
        ],
        "price_comments": model.price_comments,
        "pricing_urls": list(resolution.owner.pricing_urls),
    }
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    out = sys.stdout
    out.write(f"{args.model}" + (f" at {args.provider}" if args.provider else "") + f" on {at.date()}\n")
    out.write(f"  model      {model.id}" + (f" ({model.name})" if model.name else "") + "\n")
    out.write(f"  provider   {resolution.provider.id}")
    out.write(f" (prices of {resolution.owner.id})\n" if resolution.via_fallback else "\n")
    out.write(f"  catalog    {info['catalog']}\n")
    if model.origin:
        out.write(f"  override   {model.origin}\n")
    for step in info["resolution"]:
        out.write(f"  resolved   {step}\n")
    if resolution.estimated:
        out.write("  status     estimated (priced as a related model)\n")
    out.write(f"  in force   {info['prices_in_force']['since']}\n")
    for key, value in info["prices_in_force"]["prices"].items():
        out.write(f"    {key:28} {_price_text(value)}\n")
    if len(model.prices) > 1:
        out.write("  history\n")
        for period in info["history"]:
            out.write(
                f"    {period['when']:20} "
                + ", ".join(f"{k}={_price_text(v)}" for k, v in period["prices"].items())
                + "\n"
            )
    for variant in info["variants"]:
        label = ",".join(f"{k}={v}" for k, v in variant["context"].items())
        out.write(
            f"  variant    {label} ({variant['when']}): "
            + ", ".join(f"{k}={_price_text(v)}" for k, v in variant["prices"].items())
            + "\n"
        )
    if model.price_comments:
        out.write(f"  comments   {model.price_comments}\n")
    for url in info["pricing_urls"]:
        out.write(f"  source     {url}\n")
    return 0


def _prices_json(prices: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, price in prices.items():
        if isinstance(price, TieredPrice):
            out[key] = {
                "base": decimal_str(price.base),
                "tiers": [[start, decimal_str(rate)] for start, rate in price.tiers],
            }
        else:
            out[key] = decimal_str(price)
    return out


def _price_text(value: Any) -> str:
    if isinstance(value, dict):
        tiers = ", ".join(f"{rate} above {start:,} input tokens" for start, rate in value["tiers"])
        return f"{value['base']} ({tiers})"
    return str(value)


# -- list -------------------------------------------------------------------------------------------------

_LIST_COLUMNS = (
    "provider",
    "model",
    "input_mtok",
    "output_mtok",
    "cache_read_mtok",
    "cache_write_mtok",
    "since",
    "other_prices",
)
_MAIN_PRICES = _LIST_COLUMNS[2:6]
# The table is read in a terminal: it fits this width (a model id longer than its column is cut, ending
# in ".."), tiered prices show their base rate marked "*", other prices are counted; csv and json have all.
_TABLE_WIDTH = 120
_TABLE_HEADERS = ("provider", "model", "input", "output", "cache_read", "cache_write", "since", "more")
_TABLE_LEGEND = (
    "USD per million tokens; * tiered by the request's input size (the base rate is shown); ~ rounded to 6\n"
    "decimal places; more: how many other prices. `costspan pricing lookup MODEL --provider P` shows every\n"
    "price with its tiers and history; --format csv or json gives them all, exact."
)


def _list(args: argparse.Namespace) -> int:
    from costspan.collector.sql import print_rows

    engine = _engine(args)
    at = _at(args.at)
    rows = list(_list_rows(engine, args.provider, at))
    if args.provider and not rows:
        raise UsageError(f"no provider {args.provider!r} in the catalogs")
    if args.format == "table":
        print_rows(list(_TABLE_HEADERS), _table_cells(rows), "table")
        print(_TABLE_LEGEND)
    elif args.format == "csv":
        print_rows(
            list(_LIST_COLUMNS), [tuple(_csv_cell(row[c]) for c in _LIST_COLUMNS) for row in rows], "csv"
        )
    else:  # json: prices as exact decimal strings, a tiered one as {base, tiers}, null where none applies
        print_rows(
            list(_LIST_COLUMNS), [tuple(_json_cell(row[c]) for c in _LIST_COLUMNS) for row in rows], "json"
        )
    return 0


def _list_rows(engine: PricingEngine, provider: str | None, at: datetime) -> Iterable[dict[str, Any]]:
    """One row per model and the prices in force at ``at``: Decimal or TieredPrice values, None where the
    model has no such price."""
    for catalog in engine.layers:
        if provider:
            found = catalog.provider(engine.rules.provider_id(provider))
            providers = [found] if found is not None else []
        else:
            providers = catalog.providers
        for prov in providers:
            for model in prov.models:
                price_set = model.price_set_at(at)
                other = {k: v for k, v in price_set.prices.items() if k not in _MAIN_PRICES}
                yield {
                    "provider": prov.id,
                    "model": model.id,
                    **{k: price_set.prices.get(k) for k in _MAIN_PRICES},
                    "since": price_set.when.describe() if price_set.when else None,
                    "other_prices": other or None,
                }


def _json_cell(value: Any) -> Any:
    if isinstance(value, TieredPrice):
        return {"base": value.base, "tiers": [[start, rate] for start, rate in value.tiers]}
    if isinstance(value, Mapping):
        return {k: _json_cell(v) for k, v in value.items()}
    return value


def _csv_cell(value: Any) -> Any:
    if isinstance(value, Mapping):
        return " ".join(f"{k}={_csv_cell(v)}" for k, v in value.items())
    if isinstance(value, (Decimal, TieredPrice)):
        return _price_text(_prices_json({"_": value})["_"])
    return value


def _table_cells(rows: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    def price(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, TieredPrice):
            return _table_price(value.base) + "*"
        return _table_price(value)

    cells = [
        (
            row["provider"],
            row["model"],
            *(price(row[k]) for k in _MAIN_PRICES),
            (row["since"] or "").removeprefix("from "),
            str(len(row["other_prices"])) if row["other_prices"] else "",
        )
        for row in rows
    ]
    # the prices, dates and counts are never cut; the provider and the model share what is left
    fixed = sum(max([len(h), *(len(c[i]) for c in cells)]) for i, h in enumerate(_TABLE_HEADERS) if i >= 2)
    room = _TABLE_WIDTH - fixed - 2 * (len(_TABLE_HEADERS) - 1)
    provider_width = min(max([8, *(len(c[0]) for c in cells)]), 14)
    model_width = max(room - provider_width, 12)
    return [(_cut(c[0], provider_width), _cut(c[1], model_width), *c[2:]) for c in cells]


def _table_price(value: Decimal) -> str:
    """A rate as the table shows it: exact when short; a source's float noise (0.18000000000000002) rounded
    to 6 decimal places and marked ``~``."""
    text = decimal_str(value) or ""
    if len(text) <= 10:
        return text
    return "~" + (decimal_str(value.quantize(Decimal("0.000001"))) or "")


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 2] + ".."


def _print_rows(rows: list[dict[str, Any]], columns: Iterable[str]) -> None:
    if not rows:
        return
    columns = tuple(columns)
    widths = {c: min(48, max(len(c), *(len(str(r[c])) for r in rows))) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns).rstrip())
    for row in rows:
        print("  ".join(str(row[c])[:48].ljust(widths[c]) for c in columns).rstrip())


# -- audit ------------------------------------------------------------------------------------------------


def _audit(args: argparse.Namespace) -> int:
    from . import _audit as auditing
    from ._corrections import default_corrections

    folder = imported_catalog_dir(args.data_dir)
    primary_file = folder / f"{PRIMARY_SOURCE}.json"
    if primary_file.is_file():
        doc = read_document(primary_file)
    else:
        doc = read_document(Path(embedded_catalog(corrected=False).path or ""))
    second = auditing.load_second_source(args.litellm, folder)
    if second is None:
        raise UsageError(
            "no second source: pass --litellm FILE (LiteLLM's model_prices_and_context_window.json), or "
            "import it with 'costspan pricing import FILE'"
        )
    units = Catalog.from_json(doc).units
    report = auditing.audit(doc, default_corrections(units), second, _at(args.at))
    listed = list(auditing.rows(report, only_open=args.open))
    if args.format == "json":
        print(json.dumps({"summary": report.summary(), "disagreements": listed}, indent=2))
    elif args.format == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=auditing.COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(listed)
    else:
        _print_audit_summary(report.summary())
        if listed:
            print()
            _print_rows(listed, auditing.COLUMNS)
    return 0


def _print_audit_summary(summary: Mapping[str, Any]) -> None:
    print(f"catalog        {summary['catalog']} (prices in force on {summary['at']})")
    print(f"second source  {summary['second_source']}")
    print(f"corrections    {summary['corrections']}")
    print(
        f"models         {summary['models_audited']} audited, "
        f"{summary['models_paired_with_second_source']} with a second-source counterpart"
    )
    print(
        f"disagreements  {summary['disagreements']}: {summary['settled']} settled by a correction, "
        f"{summary['open']} open"
    )
    for cls, counts in summary["by_class"].items():
        print(f"  {cls:14} {counts['found']:5} found {counts['settled']:5} settled {counts['open']:5} open")
    for correction_id, provider, model in summary["stale_corrections"]:
        print(f"stale          {correction_id}: nothing to change for {provider}/{model}")


# -- import -----------------------------------------------------------------------------------------------


def _import(args: argparse.Namespace) -> int:
    from .importers import genai_prices, litellm

    report = ""
    if args.source == PRIMARY_SOURCE:
        doc = genai_prices.import_installed()
    else:
        path = Path(args.source)
        if not path.is_file():
            raise UsageError(f"{args.source}: no such file (a source is 'genai-prices' or a JSON file)")
        try:
            data = path.read_bytes()
            raw = json.loads(gzip.decompress(data) if path.suffix == ".gz" else data)
        except (json.JSONDecodeError, UnicodeDecodeError, gzip.BadGzipFile) as exc:
            raise UsageError(f"{path}: not JSON: {exc}") from exc
        if genai_prices.looks_like_genai_prices(raw):
            doc = genai_prices.import_file(path)
        elif litellm.looks_like_litellm(raw):
            doc, summary = litellm.import_file_with_report(path)
            report = _litellm_report(summary)
        else:
            raise UsageError(
                f"{path}: neither a genai-prices data file (a list of providers) nor a LiteLLM price file "
                "(an object of models with litellm_provider)"
            )
    catalog = Catalog.from_json(doc)  # validate before writing anything
    output = (
        Path(args.output) if args.output else imported_catalog_dir(args.data_dir) / f"{doc['source']}.json"
    )
    dump_catalog(doc, output)
    print(
        f"imported {catalog.source} {catalog.source_version}: {len(catalog.providers)} providers, "
        f"{catalog.model_count} models -> {output}"
    )
    if report:
        print(report)
    if not args.output:
        stack = installed_catalogs(args.data_dir)
        print("pricing now uses: " + " + ".join(c.version for c in stack))
    return 0


def _litellm_report(summary: Any) -> str:
    skipped = ", ".join(f"{k} ({n})" for k, n in summary.skipped_fields.most_common(8))
    text = f"skipped {summary.skipped_entries} entries without prices"
    return text + (f"; fields not mapped: {skipped}" if skipped else "")
