"""Receivers: how spans reach the collector (OTLP over HTTP; gRPC and the events endpoint alongside)."""
