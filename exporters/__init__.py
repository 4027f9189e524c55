"""costspan.exporters: where priced calls go (Parquet and DuckDB, Prometheus, OTLP forward)."""
