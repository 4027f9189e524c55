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
    jobs.extend(_anomalies(config, notifier))
    jobs.append(_forecasts(config))
    return jobs


def _forecasts(config: Any) -> Job:
    """Spend forecasts of the month, the organisation's, each team's and the top features' (every 15 min)."""
    from costspan.pricing import data_dir

    from .forecast import job

    return job(data_dir(config.data_dir))


def _anomalies(config: Any, notifier: Any) -> list[Job]:
    """Anomalies of spend, unless turned off (every 5 min by default)."""
    from .anomalies import anomaly_job

    job = anomaly_job(config, notifier.anomaly_event if notifier is not None else None)
    return [job] if job is not None else []
