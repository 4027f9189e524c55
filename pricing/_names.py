"""Name resolution: the spellings a model reference arrives in, reduced to what a catalog lists.

Applications report models as their SDK, gateway or cloud writes them: ``openai/gpt-4o`` (LiteLLM),
``models/gemini-2.5-pro`` (Gemini API), ``claude-3-5-sonnet-v2@20241022`` (Vertex AI), Bedrock ARNs and
cross-region profiles, ``ft:gpt-4o-mini-2024-07-18:org::id`` (fine-tunes). :func:`candidates` yields the
forms to try, in order; the name as given always comes first, so a catalog entry for the exact name (a
dated snapshot, a regional profile, a fine-tune) wins over any reduction.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ._rules import Rules

_ARN_PREFIX = "arn:aws:bedrock:"


@dataclass(frozen=True, slots=True)
class Candidate:
    provider: str | None
    model: str
    steps: tuple[str, ...]  # what was done to the name, for the result's explanation; () as given
    estimated: bool = False  # priced as a related model, not the one named


def candidates(provider: str | None, model: str, rules: Rules) -> Iterator[Candidate]:
    """Forms of ``(provider, model)`` to look up, most faithful first. ``model`` is lower-case."""
    given = Candidate(provider, model, ())
    yield given
    seen = {(provider, model)}
    exact: list[Candidate] = []
    _exact_forms(given, rules, exact, depth=0)
    for cand in exact:
        if (cand.provider, cand.model) not in seen:
            seen.add((cand.provider, cand.model))
            yield cand
    # Last resorts: a related model's price, flagged as an estimate.
    for base in [given, *exact]:
        for cand in _estimated_forms(base, rules):
            if (cand.provider, cand.model) not in seen:
                seen.add((cand.provider, cand.model))
                yield cand


def _exact_forms(base: Candidate, rules: Rules, out: list[Candidate], depth: int) -> None:
    """Append the reductions of ``base`` that name the same model, and theirs in turn."""
    if depth > 3:
        return
    provider, model = base.provider, base.model
    forms: list[tuple[str | None, str, str]] = []
    if model.startswith(_ARN_PREFIX):
        # arn:aws:bedrock:REGION:ACCOUNT:(foundation-model|inference-profile)/MODEL_OR_PROFILE_ID
        _, slash, resource = model.partition("/")
        if slash and resource:
            forms.append((provider or "aws", resource, "Bedrock ARN reduced to its model id"))
    elif "/" in model:
        head, _, tail = model.partition("/")
        if head in rules.model_prefixes and tail:
            target = provider if head == "models" else (provider or head)
            forms.append((target, tail, f"prefix '{head}/' removed"))
    if "@" in model:
        name, _, version = model.partition("@")
        forms.append((provider, f"{name}-{version}", "Vertex AI '@version' read as '-version'"))
        forms.append((provider, name, "Vertex AI '@version' removed"))
    for form_provider, form_model, step in forms:
        form = Candidate(form_provider, form_model, (*base.steps, step))
        out.append(form)
        _exact_forms(form, rules, out, depth + 1)


def _estimated_forms(base: Candidate, rules: Rules) -> Iterator[Candidate]:
    model = base.model
    if model.startswith("ft:"):
        # ft:BASE_MODEL:ORG:NAME:ID
        base_model = model[3:].split(":", 1)[0]
        if base_model:
            step = "fine-tuned model priced at its base model's rates"
            yield Candidate(base.provider, base_model, (*base.steps, step), True)
    head, dot, rest = model.partition(".")
    if dot and head in rules.region_prefixes and rest:
        step = f"Bedrock '{head}.' inference profile priced as its base model"
        yield Candidate(base.provider, rest, (*base.steps, step), True)
