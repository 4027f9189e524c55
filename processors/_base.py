"""The processor interface: a named, configured function over a batch, run as an ordered chain.

Modelled on the OpenTelemetry Collector's processors: each is built from its own YAML mapping, receives a
batch and returns one, counts what it did, and fails either retryably (the batch can be offered again,
e.g. an override file being rewritten) or permanently (the batch itself is at fault). Bad values inside a
span never fail a processor: they become flags and statuses on the record.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._batch import SpanBatch


class ProcessorError(Exception):
    """A processor could not process a batch."""

    retryable = False


class RetryableError(ProcessorError):
    """Try the same batch again later: the cause is outside the batch."""

    retryable = True


class PermanentError(ProcessorError):
    """The batch cannot be processed; retrying would fail the same way."""


class ConfigError(ValueError):
    """A processor configuration that does not validate; the message names the key."""


@dataclass
class Processor:
    """A processor ready to run: its name, its batch function, and its counters."""

    name: str
    function: Callable[[SpanBatch, Counter[str]], SpanBatch]
    counts: Counter[str] = field(default_factory=Counter)

    def __call__(self, batch: SpanBatch) -> SpanBatch:
        return self.function(batch, self.counts)


# name -> factory(config mapping, config path for messages) -> Processor
Factory = Callable[[Mapping[str, Any], str], Processor]
_FACTORIES: dict[str, Factory] = {}


def register(name: str) -> Callable[[Factory], Factory]:
    def decorate(factory: Factory) -> Factory:
        _FACTORIES[name] = factory
        return factory

    return decorate


def known_processors() -> list[str]:
    _load_builtin()
    return sorted(_FACTORIES)


def build(name: str, config: Mapping[str, Any] | None = None, path: str | None = None) -> Processor:
    """A processor by type name (``price``, or ``price/eu`` for a second one of a type) and config."""
    _load_builtin()
    kind = name.split("/", 1)[0]
    factory = _FACTORIES.get(kind)
    where = path or f"processors.{name}"
    if factory is None:
        raise ConfigError(f"{where}: unknown processor {kind!r}; known: {', '.join(sorted(_FACTORIES))}")
    if config is not None and not isinstance(config, Mapping):
        raise ConfigError(f"{where}: a processor's configuration is a mapping")
    processor = factory(config or {}, where)
    processor.name = name
    return processor


class Chain:
    """Processors run in order; the output of one is the input of the next."""

    def __init__(self, processors: Sequence[Processor]) -> None:
        self.processors = list(processors)

    def __call__(self, batch: SpanBatch) -> SpanBatch:
        for processor in self.processors:
            batch = processor(batch)
        return batch

    def counts(self) -> dict[str, Counter[str]]:
        return {p.name: p.counts for p in self.processors}


DEFAULT_CHAIN = ("normalize", "dedupe", "price", "attribute", "redact")


def build_chain(spec: Sequence[str | tuple[str, Mapping[str, Any]]] | None = None) -> Chain:
    """A chain from names, or (name, config) pairs; the default is the full chain with defaults."""
    entries = DEFAULT_CHAIN if spec is None else spec
    processors = []
    for entry in entries:
        name, config = (entry, None) if isinstance(entry, str) else entry
        processors.append(build(name, config))
    return Chain(processors)


def chain_from_config(processors: Mapping[str, Any] | None, order: Sequence[str] | None = None) -> Chain:
    """A chain from a collector configuration's shape::

        processors:                  # each processor's configuration, by name (type, or type/name)
          price: {overrides: prices.yaml}
          attribute: {defaults: {team: platform}}
        service:
          pipelines:
            traces:
              processors: [normalize, dedupe, price, attribute, redact]   # -> ``order``

    Without an order, the default chain runs with whatever configuration is given for its processors.
    A configured processor that the order leaves out is an error, as in the OpenTelemetry Collector.
    """
    configs = processors or {}
    if not isinstance(configs, Mapping):
        raise ConfigError("processors: a mapping of processor name to its configuration")
    names = list(order) if order is not None else list(DEFAULT_CHAIN)
    unused = [name for name in configs if name not in names]
    if unused:
        raise ConfigError(f"processors.{unused[0]}: configured but not in the pipeline's processors")
    return Chain([build(name, configs.get(name)) for name in names])


def check_keys(config: Mapping[str, Any], allowed: set[str], path: str) -> None:
    for key in config:
        if key not in allowed:
            raise ConfigError(f"{path}.{key}: unknown key; expected one of {', '.join(sorted(allowed))}")


def _load_builtin() -> None:
    # importing the modules registers them
    from . import attribute, dedupe, normalize, price, redact  # noqa: F401
