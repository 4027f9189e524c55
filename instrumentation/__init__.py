"""costspan.instrumentation: LLM calls over httpx and httpx2 as OpenTelemetry GenAI spans, with no code
changes, and the attribution API.

``opentelemetry-instrument python app.py`` switches the instrumentor on through its
``opentelemetry_instrumentor`` entry point; in code::

    from costspan.instrumentation import CostspanInstrumentor, attribute

    CostspanInstrumentor().instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)

    with attribute(team="search", feature="answers", customer_id="acme"):
        client.chat.completions.create(...)

``record()`` and ``record_retrieval()`` add calls no HTTP hook sees. Importing this package pulls in the
OpenTelemetry API and SDK only, never the collector's dependencies.
"""

from ._attribution import FIELDS, AttributionSpanProcessor, attribute, current_attribution
from ._endpoints import Endpoint, EndpointTable
from ._instrumentor import CostspanInstrumentor
from ._metrics import DURATION_BUCKETS, TOKEN_USAGE_BUCKETS
from ._record import record, record_retrieval

__all__ = [
    "DURATION_BUCKETS",
    "FIELDS",
    "TOKEN_USAGE_BUCKETS",
    "AttributionSpanProcessor",
    "CostspanInstrumentor",
    "Endpoint",
    "EndpointTable",
    "attribute",
    "current_attribution",
    "record",
    "record_retrieval",
]
