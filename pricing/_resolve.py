"""Resolution: from the provider and model names a call reported to the catalog entry that prices it."""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from ._catalog import Catalog, Model, Provider
from ._names import candidates
from ._rules import MinimumBilledSeconds, Rules

if TYPE_CHECKING:
    from ._overrides import Overrides

_CACHE_LIMIT = 100_000  # resolutions kept; cleared when full so hostile model names cannot grow memory
_COMPACT_DATE = re.compile(r"(-)(20\d{2})(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])(?=-|:|$)")


@dataclass(frozen=True, slots=True)
class Resolution:
    """Where a model reference led: the catalog entry that prices it, and how it was found."""

    catalog: Catalog
    provider: Provider  # the provider the call is attributed to
    model: Model
    owner: Provider  # the provider whose list holds the model (differs on a fallback, e.g. azure -> openai)
    steps: tuple[str, ...]
    estimated: bool
    minimum_seconds: MinimumBilledSeconds | None = None
    # compiled price plans of this resolution, by (price period, request context); see ``_plan``
    plans: dict[Hashable, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def via_fallback(self) -> bool:
        return self.owner is not self.provider


class Resolver:
    """Resolves and remembers ``(provider, model)`` references against a stack of catalogs."""

    def __init__(self, layers: Sequence[Catalog], rules: Rules, overrides: Overrides | None) -> None:
        self.layers = tuple(layers)
        self.rules = rules
        self.overrides = overrides
        self.cache: dict[tuple[str | None, str], Resolution | str] = {}

    def __call__(self, provider: str | None, model: str) -> Resolution | str:
        """The resolution, or why there is none."""
        key = (provider, model)
        found = self.cache.get(key)
        if found is None:
            found = self._resolve(provider, model)
            if len(self.cache) >= _CACHE_LIMIT:
                self.cache.clear()
            self.cache[key] = found
        return found

    def _resolve(self, provider: str | None, model: str) -> Resolution | str:
        model_ref = model.strip().lower()
        provider_ref = provider.strip().lower() if provider else None
        if provider_ref == "litellm":  # LiteLLM reports itself; the real provider is the model's prefix
            provider_ref = None
        steps: list[str] = []
        if provider_ref is not None:
            canonical = self.rules.provider_id(provider_ref)
            if canonical != provider_ref:
                steps.append(f"provider '{provider_ref}' read as '{canonical}'")
                provider_ref = canonical
        if self.overrides is not None:
            # override files name providers by catalog id too (read by the same rule when loaded)
            aliased = self.overrides.alias_for(provider_ref, model_ref)
            if aliased is not None:
                provider_ref, model_ref, origin = aliased
                steps.append(f"alias {origin}")
        forms = list(candidates(provider_ref, model_ref, self.rules))
        # Exact forms in every catalog before any estimate: a second source that lists the model itself
        # beats pricing it as a related model.
        for estimated in (False, True):
            for form in forms:
                if form.estimated is not estimated:
                    continue
                for catalog in self.layers:
                    hit = _find(catalog, form.provider, form.model)
                    if hit is not None:
                        prov, owner, found = hit
                        form_steps = [*steps, *form.steps]
                        if owner is not prov:
                            form_steps = [*form_steps, f"'{prov.id}' falls back to '{owner.id}' prices"]
                        return Resolution(
                            catalog, prov, found, owner, tuple(form_steps), form.estimated,
                            self._minimum_seconds(owner, found),
                        )  # fmt: skip
        if provider_ref is None:
            # No provider, and the provider the name suggests does not list it (a Bedrock profile id seen
            # without its provider): the first provider whose list has the name itself, flagged, since
            # another provider may sell the same model at another price.
            for form in forms:
                if form.estimated:
                    continue
                for catalog in self.layers:
                    hit = catalog.any_provider_model(form.model)
                    if hit is not None:
                        prov, owner, found = hit
                        step = f"no provider reported: priced as listed by '{prov.id}'"
                        return Resolution(
                            catalog, prov, found, owner, (*steps, *form.steps, step), True,
                            self._minimum_seconds(owner, found),
                        )  # fmt: skip
        if provider_ref is not None and all(c.provider(provider_ref) is None for c in self.layers):
            return f"provider {provider_ref!r} is not in the catalog"
        return f"no catalog entry matches model {model_ref!r}" + (
            f" at provider {provider_ref!r}" if provider_ref else ""
        )

    def _minimum_seconds(self, owner: Provider, model: Model) -> MinimumBilledSeconds | None:
        return next(
            (r for r in self.rules.minimum_billed_seconds if r.provider == owner.id and model.id in r.models),
            None,
        )


def _find(
    catalog: Catalog, provider_ref: str | None, model_ref: str
) -> tuple[Provider, Provider, Model] | None:
    """genai-prices' lookup: the provider by id or clause (or by the model's name), then its models in
    order, then its fallback providers' models; a compact date (-20251211) is retried dashed."""
    if provider_ref is not None:
        prov = catalog.provider(provider_ref)
        if prov is None:
            wildcard = catalog.provider("*")
            if wildcard is None:
                return None
            prov = wildcard
    else:
        prov = catalog.provider_for_model(model_ref)
        if prov is None:
            return catalog.any_provider_model(model_ref) if catalog.search_all_providers else None
    for ref in _ref_forms(model_ref):
        found = prov.find_model(ref)
        if found is not None:
            return prov, prov, found
        for fallback_id in prov.fallback_model_providers:
            owner = next((p for p in catalog.providers if p.id == fallback_id), None)
            if owner is not None and (found := owner.find_model(ref)) is not None:
                return prov, owner, found
    if catalog.search_all_providers and provider_ref is not None and prov.id != "*":
        wildcard = catalog.provider("*")
        if wildcard is not None and (found := wildcard.find_model(model_ref)) is not None:
            return wildcard, wildcard, found
    return None


def _ref_forms(model_ref: str) -> tuple[str, ...]:
    normalized = _COMPACT_DATE.sub(_dashed_date, model_ref)
    return (model_ref,) if normalized == model_ref else (model_ref, normalized)


def _dashed_date(match: re.Match[str]) -> str:
    """``gpt-5.2-20251211`` -> ``gpt-5.2-2025-12-11`` (LiteLLM and OpenRouter write dates compactly)."""
    year, month, day = (int(match.group(i)) for i in (2, 3, 4))
    try:
        date(year, month, day)
    except ValueError:
        return match.group(0)
    return f"{match.group(1)}{year:04d}-{month:02d}-{day:02d}"
