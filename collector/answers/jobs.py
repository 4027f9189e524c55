"""The answer jobs a collector runs, from its configuration: one place that says which answers are kept
current, and how often."""

from __future__ import annotations

from typing import Any

from .runner import Job


def jobs_from_config(config: Any, notifier: Any = None) -> list[Job]:
    """The jobs for a :class:`costspan.collector.config.CollectorConfig`. ``notifier``
    (:class:`costspan.collector.answers.notify.Notifier`, when notifications are configured) is told of
    each budget threshold crossed (``notifier.budget_event``) and each anomaly opened
    (``notifier.anomaly_event``)."""
    jobs: list[Job] = []
    if getattr(config, "budgets", None):
        from .budget_job import budget_job

        jobs.append(budget_job(config, [notifier.budget_event] if notifier is not None else ()))
    # the anomaly job takes notifier.anomaly_event the same way: anomaly_job(config, notify=...)
    jobs.append(_forecasts(config))
    return jobs


def _forecasts(config: Any) -> Job:
    """Spend forecasts of the month, the organisation's, each team's and the top features' (every 15 min)."""
    from costspan.pricing import data_dir

    from .forecast import job

    return job(data_dir(config.data_dir))
