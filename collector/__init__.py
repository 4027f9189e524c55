"""costspan.collector: the ``costspan`` command line, and the OTLP-receiving collector it runs."""
