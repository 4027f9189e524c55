"""Corrections: published prices laid over an imported catalog where its source is wrong.

genai-prices, the embedded catalog's source, dates service-tier variants from the day it added them rather
than the day the provider started selling them, misses long-context tiers and audio rates for some models,
and has no price history for some 2025 changes. ``data/corrections.json`` holds what the providers publish
instead, each correction with the public page it comes from and the date it was checked; they are applied
to the catalog document when it is loaded (:func:`apply_corrections`), so a re-import keeps them.

File shape::

    {"corrections": [{"id", "class", "kind", "provider", "models": [model ids], "source": "https://...",
                      "checked": "YYYY-MM-DD", "note", ...the kind's fields}]}

Kinds (the document shape is the catalog's, see ``_catalog``):

* ``variant_start``: ``context`` and ``start_date``; each variant of that context whose start is
  ``replaces`` (the wrong date) starts on ``start_date`` instead.
* ``variant``: ``context``, ``start_date`` (optional) and ``prices``: a variant the catalog lacks, placed
  among those of its context newest first (the engine takes the first in force).
* ``variant_history``: ``context`` and ``prices``, a list of ``{"start_date" (optional), "prices"}``: the
  variants of a service tier the catalog lacks whose rates change on a date (a tier priced at a share of a
  model's dated standard rates), each added as ``variant`` adds one.
* ``prices``: ``prices`` merged into every price set of the model (a long-context tier, audio rates), or
  with ``context`` into every variant of that context.
* ``price_history``: ``prices``, the model's complete list of price sets (``[{"when", "prices"}]``).
* ``model``: ``model``, a catalog model the source lacks (a fine-tune's own rates), listed first at its
  provider so it wins over broader matches.
* ``confirm``: ``fields``, fields the published page shows the catalog has right where a second source
  disagrees; nothing changes, and the audit counts those disagreements settled.

Classes name the kind of upstream error: ``tier_start``, ``tier_missing``, ``long_context``, ``audio``,
``price_history``, ``fine_tune``, ``missing_price``, ``price``.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from ._catalog import CatalogError, constraint_from_json, model_from_json, prices_from_json
from ._match import ClauseError
from ._units import EXTRA_UNITS, UnitRegistry

CLASSES = (
    "tier_start",
    "tier_missing",
    "long_context",
    "audio",
    "price_history",
    "fine_tune",
    "missing_price",
    "price",
)
KINDS = ("variant_start", "variant", "variant_history", "prices", "price_history", "model", "confirm")
_COMMON = {"id", "class", "kind", "provider", "models", "source", "checked", "note"}
_KIND_FIELDS: dict[str, tuple[set[str], set[str]]] = {  # kind -> (required, optional) fields
    "variant_start": ({"context", "start_date", "replaces"}, set()),
    "variant": ({"context", "prices"}, {"start_date"}),
    "variant_history": ({"context", "prices"}, set()),
    "prices": ({"prices"}, {"context"}),
    "price_history": ({"prices"}, set()),
    "model": ({"model"}, set()),
    "confirm": ({"fields"}, set()),
}


EMBEDDED_PATH = "pricing/data/corrections.json"


class CorrectionError(ValueError):
    """A corrections file that does not follow its schema; the message names the file and the entry."""


@dataclass(frozen=True)
class Correction:
    id: str
    cls: str
    kind: str
    provider: str
    models: tuple[str, ...]
    source: str
    checked: date
    note: str
    spec: Mapping[str, Any]  # the kind's own fields, as written


@dataclass
class Applied:
    """What applying corrections to one catalog did: the fields each correction set, and the ones that
    found nothing to change (the source was fixed upstream, or a model id changed)."""

    version: str
    # (provider, model id, field) -> correction id; fields are named as the audit names them
    fields: dict[tuple[str, str, str], str] = field(default_factory=dict)
    stale: list[tuple[str, str, str]] = field(default_factory=list)  # (correction id, provider, model)

    def settled_by(self, provider: str, model: str, field_name: str) -> str | None:
        found = self.fields.get((provider, model, field_name))
        if found is None and ":" not in field_name:  # a standard rate is part of the model's price history
            found = self.fields.get((provider, model, "history"))
        return found


@dataclass(frozen=True)
class Corrections:
    path: str
    digest: str
    entries: tuple[Correction, ...]

    @property
    def version(self) -> str:
        return f"corrections#{self.digest[:12]}"


# -- fields, named as the audit names them ------------------------------------------------------------


def context_label(context: Mapping[str, str]) -> str:
    """``batch`` for ``{"processing": "batch"}``, the tier for ``{"service_tier": "flex"}``, else k=v."""
    if dict(context) == {"processing": "batch"}:
        return "batch"
    if set(context) == {"service_tier"}:
        return context["service_tier"]
    return ",".join(f"{k}={v}" for k, v in sorted(context.items()))


def variant_field(context: Mapping[str, str], key: str) -> str:
    return f"{context_label(context)}:{key}"


# -- loading ------------------------------------------------------------------------------------------


def parse_corrections(doc: Any, *, path: str, units: UnitRegistry | None = None) -> Corrections:
    """Validate a corrections document; any mistake is a :class:`CorrectionError` naming the entry."""
    units = units or _embedded_units()
    if not isinstance(doc, Mapping) or not isinstance(doc.get("corrections"), list):
        raise CorrectionError(f"{path}: a corrections file is an object with a 'corrections' list")
    entries: list[Correction] = []
    seen: set[str] = set()
    for number, raw in enumerate(doc["corrections"], 1):
        where = f"{path}: correction {number}"
        if not isinstance(raw, Mapping):
            raise CorrectionError(f"{where}: each correction is an object")
        if isinstance(raw.get("id"), str):
            where += f" ({raw['id']})"
        entry = _parse_one(raw, where, units)
        if entry.id in seen:
            raise CorrectionError(f"{where}: id {entry.id!r} is used twice")
        seen.add(entry.id)
        entries.append(entry)
    digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
    return Corrections(path, digest, tuple(entries))


def _parse_one(raw: Mapping[str, Any], where: str, units: UnitRegistry) -> Correction:
    kind = raw.get("kind")
    if kind not in _KIND_FIELDS:
        raise CorrectionError(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}")
    required, optional = _KIND_FIELDS[kind]
    missing = sorted(({"id", "class", "provider", "source", "checked"} | required) - set(raw))
    if kind != "model" and "models" not in raw:
        missing.append("models")
    if missing:
        raise CorrectionError(f"{where}: missing {', '.join(missing)}")
    unknown = sorted(set(raw) - _COMMON - required - optional)
    if unknown:
        raise CorrectionError(f"{where}: unknown field(s) {', '.join(unknown)}")
    for name in ("id", "provider", "source"):
        if not isinstance(raw[name], str) or not raw[name].strip():
            raise CorrectionError(f"{where}: {name} is a non-empty string")
    if raw["class"] not in CLASSES:
        raise CorrectionError(f"{where}: class {raw['class']!r} is not one of {', '.join(CLASSES)}")
    if not raw["source"].startswith("https://"):
        raise CorrectionError(f"{where}: source is the https:// address of the public page the price is from")
    checked = _date(raw["checked"], where, "checked")
    models = raw.get("models", [])
    if not isinstance(models, list) or not all(isinstance(m, str) and m for m in models):
        raise CorrectionError(f"{where}: models is a list of catalog model ids")
    if kind != "model" and not models:
        raise CorrectionError(f"{where}: models names at least one catalog model id")
    spec = {k: raw[k] for k in required | optional if k in raw}
    try:
        _check_spec(kind, spec, units)
    except (CatalogError, ClauseError, KeyError, TypeError, ValueError) as exc:
        raise CorrectionError(f"{where}: {exc}") from exc
    if kind == "model":
        models = [str(spec["model"]["id"])]
    return Correction(
        id=raw["id"],
        cls=raw["class"],
        kind=kind,
        provider=raw["provider"],
        models=tuple(models),
        source=raw["source"],
        checked=checked,
        note=str(raw.get("note", "")),
        spec=spec,
    )


def _check_spec(kind: str, spec: Mapping[str, Any], units: UnitRegistry) -> None:
    """Parse the kind's fields with the catalog's own readers, so a correction cannot break the catalog."""
    if "context" in spec and (
        not isinstance(spec["context"], Mapping)
        or not spec["context"]
        or not all(isinstance(v, str) for v in spec["context"].values())
    ):
        raise ValueError("context is an object of strings, e.g. {'service_tier': 'flex'}")
    for name in ("start_date", "replaces"):
        if name in spec:
            _date(spec[name], "", name)
    if kind in ("variant", "prices"):
        if not isinstance(spec["prices"], Mapping) or not spec["prices"]:
            raise ValueError("prices is a non-empty object of price keys")
        prices_from_json(spec["prices"], units)
    elif kind == "variant_history":
        history = spec["prices"]
        if not isinstance(history, list) or not history:
            raise ValueError(
                "prices is the list of the tier's dated price sets, [{'start_date': ..., 'prices': ...}]"
            )
        for price_set in history:
            if not isinstance(price_set, Mapping) or set(price_set) - {"start_date", "prices"}:
                raise ValueError("each of prices is {'start_date' (optional), 'prices'}")
            if "start_date" in price_set:
                _date(price_set["start_date"], "", "start_date")
            prices_from_json(price_set["prices"], units)
    elif kind == "price_history":
        history = spec["prices"]
        if not isinstance(history, list) or not history:
            raise ValueError("prices is the list of the model's price sets, [{'when': ..., 'prices': ...}]")
        for price_set in history:
            prices_from_json(price_set["prices"], units)
            constraint_from_json(price_set.get("when"))
    elif kind == "confirm":
        if not isinstance(spec["fields"], list) or not all(isinstance(f, str) and f for f in spec["fields"]):
            raise ValueError("fields is a list of field names, e.g. ['input_mtok', 'flex:start_date']")
    elif kind == "model":
        if not isinstance(spec["model"], Mapping):
            raise ValueError("model is a catalog model object")
        model_from_json(spec["model"], units)


def _add_variant(
    model: dict[str, Any], context: Mapping[str, str], prices: Mapping[str, Any], start: str
) -> list[str]:
    """Add a variant to a model, newest first among its context's; the fields it sets, [] when the catalog
    already has it."""
    variants: list[dict[str, Any]] = model.setdefault("variants", [])
    new: dict[str, Any] = {"context": dict(context), "prices": copy.deepcopy(dict(prices))}
    if start:
        new["when"] = {"start_date": start}
    if any(v["context"] == new["context"] and v.get("when") == new.get("when") for v in variants):
        return []
    # a service tier the catalog did not sell at all: the correction settles its absence too
    first_of_its_tier = not any(v["context"] == new["context"] for v in variants)
    # newest first among the variants of this context, before any undated one
    at = next(
        (
            i
            for i, v in enumerate(variants)
            if v["context"] == new["context"] and (v.get("when") or {}).get("start_date", "") < start
        ),
        len(variants),
    )
    variants.insert(at, new)
    fields = [variant_field(context, key) for key in prices]
    return [*fields, variant_field(context, "variant")] if first_of_its_tier else fields


def _date(value: Any, where: str, name: str) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise CorrectionError(f"{where}: {name} is a date, YYYY-MM-DD; got {value!r}".lstrip(": ")) from None


def load_corrections(path: str | Path, units: UnitRegistry | None = None) -> Corrections:
    """Read and validate a corrections file against a catalog's unit registry."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CorrectionError(f"{path}: not JSON: {exc}") from exc
    return parse_corrections(doc, path=str(path), units=units)


def default_corrections(units: UnitRegistry | None = None) -> Corrections:
    """The corrections shipped with costspan (``data/corrections.json``), checked against ``units``
    (default: the embedded catalog's unit registry)."""
    return parse_corrections(_embedded_document(), path=EMBEDDED_PATH, units=units or _embedded_units())


@cache
def _embedded_units() -> UnitRegistry:
    text = resources.files("costspan.pricing").joinpath("data/catalog.json").read_text(encoding="utf-8")
    return UnitRegistry({**EXTRA_UNITS, **json.loads(text)["units"]})


@cache
def _embedded_document() -> Any:
    ref = resources.files("costspan.pricing").joinpath("data/corrections.json")
    return json.loads(ref.read_text(encoding="utf-8"))


# -- applying -----------------------------------------------------------------------------------------


def apply_corrections(doc: Mapping[str, Any], corrections: Corrections) -> tuple[dict[str, Any], Applied]:
    """A copy of the catalog document with the corrections laid over it, and what each one changed."""
    out = copy.deepcopy(dict(doc))
    applied = Applied(corrections.version)
    providers = {p["id"]: p for p in out["providers"]}
    for entry in corrections.entries:
        provider = providers.get(entry.provider)
        for model_id in entry.models:
            if provider is None:
                applied.stale.append((entry.id, entry.provider, model_id))
                continue
            fields = _apply_one(entry, provider, model_id)
            if not fields:
                applied.stale.append((entry.id, entry.provider, model_id))
            for name in fields:
                applied.fields.setdefault((entry.provider, model_id, name), entry.id)
    if corrections.entries:
        out["corrections"] = corrections.version
    return out, applied


def _apply_one(entry: Correction, provider: dict[str, Any], model_id: str) -> list[str]:
    """Change one model of the document; the fields changed, [] when there was nothing to change."""
    spec = entry.spec
    models: list[dict[str, Any]] = provider.setdefault("models", [])
    model = next((m for m in models if m["id"] == model_id), None)
    if entry.kind == "model":
        if model is not None:
            return []  # the source lists it now
        models.insert(0, copy.deepcopy(dict(spec["model"])))
        return ["model"]
    if model is None:
        return []
    if entry.kind == "confirm":
        return list(spec["fields"])
    if entry.kind == "variant_start":
        changed = False
        for variant in model.get("variants", ()):
            when = variant.get("when") or {}
            if variant["context"] == spec["context"] and when.get("start_date") == str(spec["replaces"]):
                variant["when"] = {"start_date": str(spec["start_date"])}
                changed = True
        return [variant_field(spec["context"], "start_date")] if changed else []
    if entry.kind == "variant":
        start = str(spec["start_date"]) if "start_date" in spec else ""
        return _add_variant(model, spec["context"], spec["prices"], start)
    if entry.kind == "variant_history":
        fields: list[str] = []
        for price_set in spec["prices"]:
            start = str(price_set["start_date"]) if "start_date" in price_set else ""
            fields += [
                f for f in _add_variant(model, spec["context"], price_set["prices"], start) if f not in fields
            ]
        return fields
    if entry.kind == "prices":
        context = spec.get("context")
        targets = (
            [v for v in model.get("variants", ()) if v["context"] == context] if context else model["prices"]
        )
        changed_keys = []
        for target in targets:
            for key, value in spec["prices"].items():
                if target["prices"].get(key) != value:
                    target["prices"][key] = copy.deepcopy(value)
                    changed_keys.append(key)
        name = (lambda key: variant_field(context, key)) if context else (lambda key: key)
        return sorted({name(key) for key in changed_keys})
    assert entry.kind == "price_history"
    history = [copy.deepcopy(dict(p)) for p in spec["prices"]]
    if model["prices"] == history:
        return []
    model["prices"] = history
    return ["history"]
