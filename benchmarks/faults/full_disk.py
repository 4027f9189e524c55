"""A full disk under load, round after round: nothing acknowledged lost, nothing stored twice.

    python benchmarks/faults/full_disk.py [--rounds 20]        (or: make fault-disk; needs root to mount)

Each round (tests/support/full_disk.py): a real ``costspan serve`` with its data directory on a fresh 16 MiB
tmpfs, four real OpenTelemetry SDK exporters (two gRPC, two HTTP/protobuf) sending priced chat spans; a
ballast file fills the file system; the collector is killed (SIGKILL) and started again while it is full;
the ballast is deleted, the exporters' retries go on; once the log is processed, DuckDB counts the
``llm_calls`` rows of the Parquet files.

Printed per round: spans sent, acknowledged (the exporter's export() returned SUCCESS) and stored; lost
(acknowledged, not stored) and doubled (a span's rows beyond its first); requests refused for the disk (both
collectors); worker batches that failed to store and were retried (both collectors); the HTTP and gRPC
answers to a request sent while full; and the round's seconds. Exits 1 when any
round lost or doubled a span.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests.support, from a checkout

from tests.support.full_disk import MountRefused, run_round


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    logging.getLogger("opentelemetry").setLevel(logging.ERROR)  # the exporters' retries are the scenario
    header = (
        f"{'round':>5} {'sent':>7} {'acked':>7} {'stored':>7} {'lost':>5} {'doubled':>7} "
        f"{'refused':>7} {'retried':>7} {'http':>9} {'grpc':>16} {'s':>5}"
    )
    print(header)
    totals = {"sent": 0, "acknowledged": 0, "stored": 0, "lost": 0, "doubled": 0, "unknown": 0}
    for n in range(1, args.rounds + 1):
        with tempfile.TemporaryDirectory(prefix="costspan-full-disk-") as work:
            try:
                r = run_round(Path(work))
            except MountRefused as exc:
                print(f"cannot mount a tmpfs (run as root): {exc}", file=sys.stderr)
                return 2
        for key in totals:
            totals[key] += getattr(r, key)
        http = f"{r.http_refusal[0]}/{r.http_refusal[1]}s"
        grpc = f"{r.grpc_refusal[0]}/{r.grpc_refusal[1]:g}s" if r.grpc_refusal[1] else r.grpc_refusal[0]
        print(
            f"{n:>5} {r.sent:>7} {r.acknowledged:>7} {r.stored:>7} {r.lost:>5} {r.doubled:>7} "
            f"{r.refused_disk:>7.0f} {r.processing_errors:>7.0f} {http:>9} {grpc:>16} {r.seconds:>5.1f}",
            flush=True,
        )
    print(
        f"total: {totals['sent']} sent, {totals['acknowledged']} acknowledged, {totals['stored']} stored, "
        f"{totals['lost']} lost, {totals['doubled']} doubled, {totals['unknown']} stored but never sent"
    )
    return 1 if totals["lost"] or totals["doubled"] or totals["unknown"] else 0


if __name__ == "__main__":
    sys.exit(main())
