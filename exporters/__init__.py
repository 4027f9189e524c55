"""costspan.exporters: where priced calls go.

- ``parquet``: the ``llm_calls`` table as Hive-partitioned Parquet, written atomically;
- ``duckdb_views``: the ``llm_calls`` and ``llm_calls_all`` views for SQL (``costspan sql``);
- ``prometheus``: cost, token and call counters with capped label values.
- ``otlp_forward``: the enriched spans (cost and attribution attributes added, content redacted) to another
  OTLP endpoint, over OTLP/HTTP protobuf or gRPC; it runs behind a persistent queue
  (:mod:`costspan.collector.queued_exporter`).

They need the collector's dependencies: ``pip install 'costspan[collector]'``.
"""
