"""The answer jobs a collector runs, from its configuration: one place that says which answers are kept
current, and how often."""

from __future__ import annotations

from typing import Any

from .runner import Job


def jobs_from_config(config: Any) -> list[Job]:
    """The jobs for a :class:`costspan.collector.config.CollectorConfig`."""
    jobs: list[Job] = []
    jobs.append(_forecasts(config))
    return jobs


def _forecasts(config: Any) -> Job:
    """Spend forecasts of the month, the organisation's, each team's and the top features' (every 15 min)."""
    from costspan.pricing import data_dir

    from .forecast import job

    return job(data_dir(config.data_dir))
