"""costspan.exporters: where priced calls go.

- ``layout``: the datasets' folders and file names, which other engines read (Hive partitions by date);
- ``parquet``: the ``llm_calls``, ``llm_calls_duplicates`` and ``genai_spans`` datasets, written atomically;
- ``ancestry``: which plain spans ``genai_spans`` keeps, so that cost rolls up the span tree;
- ``compaction``: small files merged in the background (a day's folder swapped whole), retention in days;
- ``replay``: what a pipeline worker stored past its checkpoint, taken out before a replay writes it again;
- ``migrate``: a data directory of an earlier layout, moved once;
- ``duckdb_views``: the views and rollups (cost by day, trace, agent, workflow) for ``costspan sql``;
- ``prometheus``: cost, token and call counters with capped label values.
- ``otlp_forward``: the enriched spans (cost and attribution attributes added, content redacted) to another
  OTLP endpoint, over OTLP/HTTP protobuf or gRPC; it runs behind a persistent queue
  (:mod:`costspan.collector.queued_exporter`).

They need the collector's dependencies: ``pip install 'costspan[collector]'``.
"""
