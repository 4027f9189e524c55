"""Stop a real ``costspan serve`` under load, round after round, and count what was lost or doubled.

Each round starts a collector on a new data directory, sends batches of priced GenAI spans from real
OpenTelemetry SDK exporters (half over gRPC, half over HTTP/protobuf, each in its own thread), and signals
the collector in the middle of the load: SIGTERM (a graceful stop; it must exit 0 within its grace period)
or SIGKILL (``kill -9``). The collector is then started again on the same directory and ports, the
exporters go on (they retry while it is down), and once they are done and the log is processed it is
stopped with SIGTERM. Per round:

- ``acked``: spans whose batch the exporter saw acknowledged; ``stored``: distinct spans in ``llm_calls``;
- ``lost``: acknowledged but not stored; ``doubled``: rows beyond the first of a span;
- ``stop_s`` and ``exit``: how long the signalled collector took to exit, and its exit code;
- ``at_stop``: for SIGTERM, acknowledged spans not yet stored when the stop ended (0 when it processed its
  log to the end; otherwise they were in the write-ahead log, and ``lost`` says whether the restart stored
  them).

    python benchmarks/faults/sigterm.py                    # 20 rounds of SIGTERM, then 20 of kill -9
    python benchmarks/faults/sigterm.py --signals term --rounds 5 --senders 8
    python benchmarks/faults/sigterm.py --signals term --workers 1 --grace 1  # stops out of time
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository, for tests.support

import httpx2 as httpx

from tests.support.collector import Collector
from tests.support.load import Sender, exporter, stored_once

SIGNALS = {"term": signal.SIGTERM, "kill": signal.SIGKILL}
QUERY = "SELECT trace_id, span_id, cost_usd FROM llm_calls"


def wal_pending(collector: Collector) -> float:
    text = httpx.get(f"http://127.0.0.1:{collector.admin}/metrics", timeout=5).text
    line = next(x for x in text.splitlines() if x.startswith("costspan_collector_wal_pending_bytes "))
    return float(line.split()[1])


def signal_and_wait(collector: Collector, sig: int, timeout: float) -> tuple[int | None, float, str]:
    assert collector.proc is not None and collector.proc.stderr is not None
    began = time.monotonic()
    os.kill(collector.proc.pid, sig)
    try:
        code: int | None = collector.proc.wait(timeout)
    except subprocess.TimeoutExpired:  # it did not end: counted as such, then ended
        collector.proc.kill()
        collector.proc.wait()
        code = None
    return code, time.monotonic() - began, collector.proc.stderr.read().decode(errors="replace")


def one_round(args: argparse.Namespace, sig: int, workdir: Path, grace: float) -> dict[str, object]:
    data = workdir / "data"
    config = workdir / "collector.yaml"
    config.write_text(f"service:\n  shutdown_grace_period: {grace:g}s\n  workers: {args.workers}\n")
    collector = Collector(data).start("--config", str(config))
    senders = [
        Sender(
            i,
            exporter("grpc" if i % 2 == 0 else "http", collector.grpc if i % 2 == 0 else collector.http),
            batches=args.batches,
            spans_per_batch=args.spans,
        )
        for i in range(args.senders)
    ]
    try:
        for sender in senders:
            sender.start()
        deadline = time.monotonic() + 60
        while min(len(s.acknowledged) for s in senders) < args.batches * args.spans // 4:
            if time.monotonic() > deadline:
                raise RuntimeError("the load did not get under way")
            time.sleep(0.01)
        code, stop_s, stderr = signal_and_wait(collector, sig, grace + 30)
        time.sleep(0.5)  # the senders take in the last answers; nothing is acknowledged while it is down
        acked_at_stop = {key for s in senders for key in list(s.acknowledged)}
        at_stop = None
        if sig == signal.SIGTERM:
            stored_then, _ = stored_once(collector.sql(QUERY))
            at_stop = len(acked_at_stop - stored_then.keys())
        collector.start("--config", str(config))
        for sender in senders:
            sender.join(120)
        deadline = time.monotonic() + 120
        while wal_pending(collector) > 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        final_code, _, final_stderr = signal_and_wait(collector, signal.SIGTERM, grace + 30)
        stored, doubled = stored_once(collector.sql(QUERY))
    finally:
        if collector.proc is not None and collector.proc.poll() is None:
            collector.proc.kill()
    sent = {key for s in senders for key in s.sent}
    acked = {key for s in senders for key in s.acknowledged}
    return {
        "exit": code,
        "stop_s": round(stop_s, 2),
        "acked": len(acked),
        "stored": len(stored),
        "lost": len(acked - stored.keys()),
        "doubled": doubled,
        "never_sent": len(stored.keys() - sent),
        "at_stop": "" if at_stop is None else at_stop,
        "final_exit": final_code,
        "errors": sum(line.count("Traceback") for line in (stderr, final_stderr)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=20, help="rounds of each signal (default 20)")
    parser.add_argument("--signals", default="term,kill", help="term, kill or both (default term,kill)")
    parser.add_argument("--senders", type=int, default=6, help="exporters, half gRPC, half HTTP (default 6)")
    parser.add_argument("--batches", type=int, default=20, help="batches per sender (default 20)")
    parser.add_argument("--spans", type=int, default=100, help="spans per batch (default 100)")
    parser.add_argument("--workers", type=int, default=2, help="pipeline workers (default 2)")
    parser.add_argument("--grace", type=float, default=30.0, help="service.shutdown_grace_period, seconds")
    args = parser.parse_args()
    logging.getLogger("opentelemetry").setLevel(logging.ERROR)  # the exporters' retries while it is down
    columns = ["signal", "round", "exit", "stop_s", "acked", "stored", "lost", "doubled", "never_sent"]
    columns += ["at_stop", "final_exit", "errors"]
    print("\t".join(columns), flush=True)
    totals = {"lost": 0, "doubled": 0, "never_sent": 0, "bad_exit": 0}
    for name in args.signals.split(","):
        sig = SIGNALS[name.strip()]
        for index in range(1, args.rounds + 1):
            workdir = Path(tempfile.mkdtemp(prefix="costspan-fault-"))
            try:
                row = one_round(args, sig, workdir, args.grace)
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
            row = {"signal": name.strip(), "round": index, **row}
            print("\t".join(str(row[c]) for c in columns), flush=True)
            for key in ("lost", "doubled", "never_sent"):
                totals[key] += int(row[key])  # type: ignore[call-overload]
            expected_exit = 0 if sig == signal.SIGTERM else -signal.SIGKILL
            totals["bad_exit"] += row["exit"] != expected_exit or row["final_exit"] != 0
    print("total: " + ", ".join(f"{key} {value}" for key, value in totals.items()), flush=True)
    return 1 if any(totals.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
