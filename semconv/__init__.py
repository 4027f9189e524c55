"""costspan.semconv: GenAI attribute names of every instrumentation dialect, and the canonical call record."""
