"""The answers layer: what the stored calls say about spend, computed locally from ``llm_calls``.

Each answer is a module with one job, reading the stored calls only through :mod:`.spend` (one query shape,
one list of dimensions, one definition of a billed, unpriced or failed call):

- :mod:`.spend`: hourly spend by any dimensions, from ``llm_calls`` (DuckDB);
- :mod:`.periods`, :mod:`.budgets`: budget periods, and each budget's status;
- :mod:`.forecast`: daily spend forecasts with prediction intervals;
- :mod:`.anomalies`: unusual spend, explained.

Each has a ``costspan`` subcommand (``--data-dir``, ``--format table|csv|json``, money as exact strings in
JSON), the same figures in a SQL view, and, where it is a level, a Prometheus gauge.
"""
