"""costspan.exporters: where priced calls go.

- ``parquet``: the ``llm_calls`` and ``genai_spans`` tables as Hive-partitioned Parquet, written atomically;
- ``ancestry``: which plain spans ``genai_spans`` keeps, so that cost rolls up the span tree;
- ``compaction``: small files merged in the background, and retention in days;
- ``duckdb_views``: the views and rollups (cost by day, trace, agent, workflow) for ``costspan sql``;
- ``prometheus``: cost, token and call counters with capped label values.
- ``otlp_forward``: the enriched spans (cost and attribution attributes added, content redacted) to another
  OTLP endpoint, over OTLP/HTTP protobuf or gRPC; it runs behind a persistent queue
  (:mod:`costspan.collector.queued_exporter`).

They need the collector's dependencies: ``pip install 'costspan[collector]'``.
"""
