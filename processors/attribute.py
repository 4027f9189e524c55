"""attribute: who and what each call is for: user, customer, feature, team, environment, agent, conversation,
prompt key and version, and tags.

Sources, first found wins: costspan's own attributes (``costspan.*``, stamped by its instrumentation and
propagated as baggage), other tools' names for the same thing (``user.id``, ``enduser.id``,
``session.id``, ``langfuse.user.id``, ``traceloop.association.properties.*``, ``gen_ai.conversation.id`` ...),
then the span's resource (``service.namespace``, ``deployment.environment.name``). A call inside an agent
span inherits the agent's name. Configured rules then map values (``service.name`` matching
``checkout-*`` gives team ``payments``) and defaults fill what is still empty. Only attribute keys on the
allow-list (``tags``) become tags, besides ``costspan.tag.*``.

Configuration::

    attribute:
      rules:
        - when: {service.name: "checkout-*"}      # all must match; shell patterns on attribute values
          set: {team: payments, feature: checkout}
      defaults: {environment: production}
      tags: [app.region, "tenant.*"]                # attribute keys (patterns) copied into tags
"""

from __future__ import annotations

import fnmatch
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from costspan.semconv import AGENT, GenAICall
from costspan.semconv import attributes as A

from ._base import ConfigError, Processor, check_keys, register
from ._batch import SpanBatch

_TRACELOOP: Final = A.TRACELOOP_ASSOCIATION_PREFIX
# field -> attribute keys, first present wins
SOURCES: Final[dict[str, tuple[str, ...]]] = {
    "user_id": (A.COSTSPAN_USER_ID, A.USER_ID, A.ENDUSER_ID, A.LANGFUSE_USER_ID, _TRACELOOP + "user_id"),
    "customer_id": (A.COSTSPAN_CUSTOMER_ID, _TRACELOOP + "customer_id", "customer.id", "tenant.id"),
    "feature": (A.COSTSPAN_FEATURE, _TRACELOOP + "feature"),
    "team": (A.COSTSPAN_TEAM, _TRACELOOP + "team"),
    "environment": (A.COSTSPAN_ENVIRONMENT, A.LANGFUSE_ENVIRONMENT, A.GEN_AI_ENVIRONMENT),
    "agent_name": (A.COSTSPAN_AGENT, A.GEN_AI_AGENT_NAME),
    "step": (A.COSTSPAN_STEP, A.TRACELOOP_ENTITY_NAME),
    "conversation_id": (
        A.GEN_AI_CONVERSATION_ID,
        A.SESSION_ID,
        A.LANGFUSE_SESSION_ID,
        _TRACELOOP + "session_id",
        _TRACELOOP + "conversation_id",
    ),
    "prompt_key": (
        A.COSTSPAN_PROMPT_KEY,
        A.GEN_AI_PROMPT_NAME,
        A.LANGFUSE_OBSERVATION_PROMPT_NAME,
        A.TRACELOOP_PROMPT_KEY,
    ),
    "prompt_version": (
        A.COSTSPAN_PROMPT_VERSION,
        A.LANGFUSE_OBSERVATION_PROMPT_VERSION,
        A.TRACELOOP_PROMPT_VERSION,
        A.LLM_PROMPT_TEMPLATE_VERSION,
    ),
}
# field -> resource attribute keys, after the span's own
RESOURCE_SOURCES: Final[dict[str, tuple[str, ...]]] = {
    "environment": (A.DEPLOYMENT_ENVIRONMENT_NAME, A.DEPLOYMENT_ENVIRONMENT),
    "team": (A.SERVICE_NAMESPACE,),
}
FIELDS: Final = tuple(SOURCES)
_PLAN_LIMIT: Final = 20_000


@dataclass(frozen=True)
class Rule:
    when: tuple[tuple[str, re.Pattern[str]], ...]
    set: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Settings:
    rules: tuple[Rule, ...] = ()
    defaults: tuple[tuple[str, str], ...] = ()
    tag_keys: frozenset[str] = frozenset()
    tag_patterns: tuple[re.Pattern[str], ...] = ()


@dataclass(frozen=True, slots=True)
class _ShapePlan:
    """For one attribute shape: which key fills each field, and which keys become tags."""

    fields: tuple[tuple[str, str], ...]  # (field, attribute key), first present source of each field
    tags: tuple[tuple[str, str], ...]  # (tag name, attribute key)


def _shape_plan(shape: tuple[str, ...], settings: Settings) -> _ShapePlan:
    keys = frozenset(shape)
    fields = tuple(
        (name, key)
        for name, sources in SOURCES.items()
        if (key := next((k for k in sources if k in keys), None))
    )
    tags = []
    for key in shape:
        if key.startswith(A.COSTSPAN_TAG_PREFIX):
            tags.append((key[len(A.COSTSPAN_TAG_PREFIX) :], key))
        elif key in settings.tag_keys or any(p.match(key) for p in settings.tag_patterns):
            tags.append((key, key))
    return _ShapePlan(fields, tuple(tags))


def _resource_plan(resource: Mapping[str, Any], settings: Settings) -> tuple[tuple[str, str], ...]:
    """(field or 'tag:' + key, value) pairs a resource contributes."""
    out = []
    for name, keys in RESOURCE_SOURCES.items():
        value = next((resource[k] for k in keys if resource.get(k) not in (None, "")), None)
        if value is not None:
            out.append((name, str(value)))
    for key in settings.tag_keys:
        if key in resource:
            out.append(("tag:" + key, str(resource[key])))
    return tuple(out)


def attribute(
    batch: SpanBatch, counts: Counter[str], settings: Settings, plans: dict[int | tuple[str, ...], _ShapePlan]
) -> SpanBatch:
    agents: dict[str, str] = {}  # span id -> agent name, for calls inside agent spans
    parents: dict[str, str | None] = {}
    for i, call in enumerate(batch.calls):
        if call is None:
            continue
        parents[call.span_id] = batch.parent_span_id[i]
        if call.kind == AGENT and call.name:
            agents[call.span_id] = call.name
    resources: dict[int, tuple[tuple[str, str], ...]] = {}  # per resource object of this batch
    attributed = 0
    for i, call in enumerate(batch.calls):
        if call is None:
            continue
        attrs = batch.attributes[i]
        shape_key = batch.shape_key(i)
        plan = plans.get(shape_key)
        if plan is None:
            if len(plans) >= _PLAN_LIMIT:
                plans.clear()
            plan = plans[shape_key] = _shape_plan(batch.shape(i), settings)
        for name, key in plan.fields:
            value = attrs[key]
            if value is not None and value != "" and getattr(call, name) is None:
                setattr(call, name, value if type(value) is str else str(value))
        resource = batch.resource[i]
        from_resource = resources.get(id(resource))
        if from_resource is None:
            from_resource = resources[id(resource)] = _resource_plan(resource, settings)
        for name, value in from_resource:
            if name.startswith("tag:"):
                if call.tags is None:
                    call.tags = {}
                call.tags.setdefault(name[4:], value)
            elif getattr(call, name) is None:
                setattr(call, name, value)
        if plan.tags:
            tags = call.tags if call.tags is not None else {}
            for tag, key in plan.tags:
                tags[tag] = str(attrs[key])
            call.tags = tags
        if call.agent_name is None and agents:
            call.agent_name = _enclosing_agent(call.parent_span_id, parents, agents)
        if settings.rules:
            _apply_rules(call, attrs, batch.resource[i], settings.rules)
        for name, value in settings.defaults:
            if getattr(call, name) is None:
                setattr(call, name, value)
        if call.team or call.feature or call.customer_id:
            attributed += 1
    counts["attributed"] += attributed
    return batch


def _enclosing_agent(
    span_id: str | None, parents: Mapping[str, str | None], agents: Mapping[str, str]
) -> str | None:
    for _ in range(64):  # bounded: a corrupt parent chain must not loop
        if span_id is None:
            return None
        if span_id in agents:
            return agents[span_id]
        span_id = parents.get(span_id)
    return None


def _value_of(key: str, call: GenAICall, attrs: Mapping[str, Any], resource: Mapping[str, Any]) -> Any:
    if key in attrs:
        return attrs[key]
    if key in resource:
        return resource[key]
    return getattr(call, key, None) if key in FIELDS or key in ("provider", "request_model") else None


def _apply_rules(
    call: GenAICall, attrs: Mapping[str, Any], resource: Mapping[str, Any], rules: tuple[Rule, ...]
) -> None:
    for rule in rules:
        if all(
            (value := _value_of(key, call, attrs, resource)) is not None and pattern.match(str(value))
            for key, pattern in rule.when
        ):
            for name, value in rule.set:
                # a rule overrides what the span said: it is how an organisation maps services to teams
                setattr(call, name, value)


def settings_from_config(config: Mapping[str, Any], path: str) -> Settings:
    check_keys(config, {"rules", "defaults", "tags"}, path)
    rules = []
    for n, raw in enumerate(config.get("rules") or []):
        where = f"{path}.rules[{n}]"
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where}: a rule is a mapping with 'when' and 'set'")
        check_keys(raw, {"when", "set"}, where)
        when, assigned = raw.get("when"), raw.get("set")
        if not isinstance(when, Mapping) or not when:
            raise ConfigError(f"{where}.when: a non-empty mapping of attribute key to pattern")
        if not isinstance(assigned, Mapping) or not assigned:
            raise ConfigError(f"{where}.set: a non-empty mapping of field to value")
        for name in assigned:
            if name not in FIELDS:
                raise ConfigError(f"{where}.set.{name}: not a field; fields are {', '.join(FIELDS)}")
        rules.append(
            Rule(
                when=tuple((str(k), re.compile(fnmatch.translate(str(v)))) for k, v in when.items()),
                set=tuple((str(k), str(v)) for k, v in assigned.items()),
            )
        )
    defaults = config.get("defaults") or {}
    if not isinstance(defaults, Mapping):
        raise ConfigError(f"{path}.defaults: a mapping of field to value")
    for name in defaults:
        if name not in FIELDS:
            raise ConfigError(f"{path}.defaults.{name}: not a field; fields are {', '.join(FIELDS)}")
    tags = config.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ConfigError(f"{path}.tags: a list of attribute keys or patterns")
    exact = frozenset(t for t in tags if not any(c in t for c in "*?["))
    patterns = tuple(re.compile(fnmatch.translate(t)) for t in tags if t not in exact)
    return Settings(tuple(rules), tuple((str(k), str(v)) for k, v in defaults.items()), exact, patterns)


@register("attribute")
def _factory(config: Mapping[str, Any], path: str) -> Processor:
    settings = settings_from_config(config, path)
    plans: dict[int | tuple[str, ...], _ShapePlan] = {}
    return Processor("attribute", lambda batch, counts: attribute(batch, counts, settings, plans))
