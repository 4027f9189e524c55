"""The ``anomalies:`` section of the collector's configuration: read into the anomaly job's settings, its
mistakes reported with file and line, and the job left out when it is turned off."""

from __future__ import annotations

from decimal import Decimal

import pytest

from costspan.collector.answers.jobs import jobs_from_config
from costspan.collector.config import CollectorConfig, ConfigFileError, load_config


def test_the_section_sets_the_job(tmp_path):
    path = tmp_path / "collector.yaml"
    path.write_text(
        "data_dir: data\n"
        "anomalies:\n"
        "  interval: 1m\n"
        "  dimensions: [team, tag.tier]\n"
        "  baseline_weeks: 3\n"
        "  min_impact_usd: 2.50\n"
        "  min_calls: 7\n"
    )
    settings = load_config(path).anomalies
    assert settings.dimensions == ("team", "tag.tier") and settings.baseline_weeks == 3
    assert settings.min_impact_usd == Decimal("2.50") and settings.min_calls == 7
    jobs = jobs_from_config(load_config(path))
    assert [(j.name, j.interval_s) for j in jobs] == [("anomalies", 60.0), ("forecasts", 900.0)]
    assert jobs_from_config(CollectorConfig())[0].interval_s == 300.0
    path.write_text("anomalies: {enabled: false}\n")
    assert [j.name for j in jobs_from_config(load_config(path))] == ["forecasts"]


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("  dimensions: [team, region]", ":3: anomalies.dimensions: unknown dimension 'region'"),
        ("  baseline_weeks: 1", ":3: anomalies.baseline_weeks: a whole number from 2 to 52"),
        ("  min_impact_usd: -1", ":3: anomalies.min_impact_usd: an amount of USD, 0 or more"),
        ("  min_calls: ten", ":3: anomalies.min_calls: a whole number"),
        ("  interval: soon", ":3: anomalies.interval: a duration"),
        ("  window: 3h", ":3: anomalies.window: unknown key"),
    ],
)
def test_mistakes_name_file_line_and_key(tmp_path, section, message):
    path = tmp_path / "collector.yaml"
    path.write_text(f"data_dir: data\nanomalies:\n{section}\n")
    with pytest.raises(
        ConfigFileError, match=str(path).replace(".", r"\.") + message.replace("(", r"\(").replace(")", r"\)")
    ):
        load_config(path)
