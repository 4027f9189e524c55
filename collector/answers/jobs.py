"""The answer jobs a collector runs, from its configuration: one place that says which answers are kept
current, and how often."""

from __future__ import annotations

from typing import Any

from .runner import Job


def jobs_from_config(config: Any) -> list[Job]:
    """The jobs for a :class:`costspan.collector.config.CollectorConfig`."""
    jobs: list[Job] = []
    if getattr(config, "budgets", None):
        from .budget_job import budget_job

        jobs.append(budget_job(config))
    return jobs
