"""A real ``costspan serve`` on a 16 MiB file system that fills up under a load of real OTLP exporters.

While the disk is full the collector refuses retryably (HTTP 503 with Retry-After, gRPC UNAVAILABLE with
RetryInfo), counts the refusals under reason ``disk``, and ``/readyz`` answers 503; a SIGKILL and a restart
while it is still full keep what was acknowledged; once space returns it goes on by itself, and the
exporters' retries deliver what was refused. Then every acknowledged span is in ``llm_calls`` exactly once.
The scenario is tests/support/full_disk.py; ``make fault-disk`` runs it for 20 rounds.
"""

from __future__ import annotations

import pytest

from tests.support.full_disk import MountRefused, run_round, run_self_fill


def test_a_full_disk_loses_nothing_acknowledged_and_doubles_nothing(tmp_path):
    try:
        result = run_round(tmp_path)
    except MountRefused as exc:
        pytest.skip(f"a small tmpfs cannot be mounted here (the test needs root): {exc}")
    log = "\n".join(result.log[-40:])
    assert result.refused_disk > 0, log
    assert result.http_refusal[0] == 503 and result.http_refusal[1] is not None, result.http_refusal
    assert result.grpc_refusal[0] == "UNAVAILABLE" and result.grpc_refusal[1], result.grpc_refusal
    assert result.readyz_full == 503
    free, size = result.disk_when_full
    assert size == 16 * 1024 * 1024 and free < 64 * 1024  # the gauges the low-space alert reads
    assert result.readyz_after == 200
    assert result.acknowledged_after_free >= 400  # it went on by itself once space returned
    assert result.lost == 0, log
    assert result.doubled == 0
    assert result.unknown == 0
    assert result.acknowledged <= result.stored <= result.sent


def test_a_collector_that_fills_its_own_disk_drains_and_goes_on(tmp_path):
    # 3 MiB left, and a load of 4 KiB spans: the log takes the space. The collector refuses before the last
    # bytes (2% of the disk is kept), stores what it logged, frees its log's segments and goes on by itself.
    try:
        result = run_self_fill(tmp_path)
    except MountRefused as exc:
        pytest.skip(f"a small tmpfs cannot be mounted here (the test needs root): {exc}")
    assert result.refused_disk > 0
    assert result.acknowledged_after_free >= 400
    assert result.lost == 0 and result.doubled == 0 and result.unknown == 0
    assert result.acknowledged <= result.stored <= result.sent
