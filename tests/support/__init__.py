"""Test support code shared by the suite: the local LLM provider server and its helpers."""
