"""The answer jobs a collector runs, from its configuration: one place that says which answers are kept
current, and how often."""

from __future__ import annotations

from typing import Any

from .runner import Job


def jobs_from_config(config: Any) -> list[Job]:
    """The jobs for a :class:`costspan.collector.config.CollectorConfig`."""
    jobs: list[Job] = []
    jobs.extend(_anomalies(config))
    return jobs


def _anomalies(config: Any) -> list[Job]:
    from .anomalies import anomaly_job

    job = anomaly_job(config)
    return [job] if job is not None else []
