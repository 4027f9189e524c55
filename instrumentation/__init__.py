"""costspan.instrumentation: in-process auto-instrumentation of LLM calls and the attribution API."""
