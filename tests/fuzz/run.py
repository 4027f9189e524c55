"""The long fuzzing run (``make fuzz``): hostile requests to a real ``costspan serve``, then its figures.

    python -m tests.fuzz.run [--inputs 1000000] [--senders 2] [--seed N]

Starts a collector on free 127.0.0.1 ports with a fresh data directory, sends ``--inputs`` cases from
``--senders`` processes (OTLP/HTTP and OTLP/gRPC; see :mod:`tests.fuzz.cases`), then a bomb run (gzip bombs
and bodies over the size limit, eight at once), then valid calls over both transports. Prints inputs,
answers by code, crashes (with the seeds that replay them: ``--replay SEED``), worker restarts, the peak
RSS of the collector's process tree, and whether the valid calls were stored. Exits 1 on any crash, restart
or missing call.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from costspan.collector.health import PRIMARY
from tests.fuzz.driver import (
    LogDrain,
    RssSampler,
    Tally,
    bomb_run,
    check_valid_spans,
    metric,
    replay,
    run_cases,
    tree_rss,
)
from tests.support.collector import Collector

CHUNK = 2500
VALID_CALL_COST = Decimal("0.000195")  # gpt-4o-mini: 800 input, 200 cache read, 100 output tokens
RESTARTS = "costspan_collector_pipeline_worker_restarts_total"
ERRORS = "costspan_collector_exporter_errors_total"
UNREADABLE = "costspan_collector_spans_unreadable_total"


def _chunk(args: tuple[int, int, int, int, float]) -> Tally:
    http_port, grpc_port, seed, count, grpc_share = args
    return run_cases(http_port, grpc_port, seed, count, grpc_share)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--inputs", type=int, default=1_000_000)
    parser.add_argument("--senders", type=int, default=2)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--grpc-share", type=float, default=0.3)
    parser.add_argument(
        "--max-seconds", type=float, help="stop sending after this long and report the inputs sent so far"
    )
    parser.add_argument("--replay", type=int, help="send the one case of this seed and print its answer")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="costspan-fuzz-") as tmp:
        collector = Collector(Path(tmp) / "data").start()
        assert collector.proc is not None
        log = LogDrain(collector.proc.stderr)
        try:
            if args.replay is not None:
                c, answer = replay(collector.http, collector.grpc, args.replay, args.grpc_share)
                print(f"{c.transport} {c.path} {c.headers} {c.what} ({len(c.body)} bytes): {answer}")
                print(c.body[:2000])
                return 0
            return _run(collector, args)
        finally:
            if collector.proc.poll() is None:
                collector.kill(15)
            time.sleep(0.5)
            print(f"collector log: {log.tracebacks} traceback(s)")
            for line, n in log.exceptions.most_common(30):
                print(f"  {n:6} x {line}")


def _run(collector: Collector, args: argparse.Namespace) -> int:
    assert collector.proc is not None
    started = time.monotonic()
    total = Tally()
    chunks = [
        (
            collector.http,
            collector.grpc,
            args.seed * 1_000_003 + n,
            min(CHUNK, args.inputs - n * CHUNK),
            args.grpc_share,
        )
        for n in range((args.inputs + CHUNK - 1) // CHUNK)
    ]
    print(f"seed {args.seed}: {args.inputs:,} inputs from {args.senders} sender(s)", flush=True)
    pool = multiprocessing.get_context("spawn").Pool(args.senders)
    with RssSampler(collector.proc.pid) as fuzz_rss, pool:
        for done in pool.imap_unordered(_chunk, chunks):
            total.merge(done)
            elapsed = time.monotonic() - started
            if total.inputs % 50_000 < CHUNK:
                rate = total.inputs / elapsed
                print(f"  {total.inputs:,} inputs, {total.crash_count} crashes, {rate:,.0f}/s", flush=True)
            if args.max_seconds is not None and elapsed > args.max_seconds:
                print(f"  stopped after {elapsed:,.0f} s (--max-seconds)", flush=True)
                pool.terminate()  # chunks in progress are not counted
                break
    before_bombs = tree_rss(collector.proc.pid)
    with RssSampler(collector.proc.pid, interval_s=0.01) as bomb_rss:
        bombs = bomb_run(collector.http, collector.grpc)
    sent, stored, cost = check_valid_spans(collector.http, collector.grpc, collector.sql)
    alive = collector.proc.poll() is None
    restarts = metric(collector.admin, RESTARTS) if alive else float("nan")
    errors = metric(collector.admin, ERRORS, f'exporter="{PRIMARY}"') if alive else float("nan")
    unreadable = metric(collector.admin, UNREADABLE) if alive else float("nan")
    elapsed = time.monotonic() - started

    print(f"\ninputs: {total.inputs:,} in {elapsed:,.0f} s, then {bombs.inputs} bombs")
    print("answers by code:")
    for answer, n in sorted({**total.answers}.items()):
        print(f"  {answer:32} {n:>10,}")
    print(f"bomb run answers: {dict(sorted(bombs.answers.items()))}")
    crashes = total.crash_count + bombs.crash_count
    print(f"crashes (5xx other than 503, gRPC INTERNAL/UNKNOWN/DATA_LOSS, no answer): {crashes}")
    for line in total.crashes + bombs.crashes:
        print(f"  {line}")
    print(f"worker restarts ({RESTARTS}): {restarts:g}")
    print(f"pipeline processing errors ({ERRORS}, exporter={PRIMARY}): {errors:g}")
    print(f"spans normalize could not read ({UNREADABLE}): {unreadable:g}")
    mib = 1024 * 1024
    print(
        f"peak RSS of the collector's process tree: {fuzz_rss.peak_bytes / mib:,.0f} MiB during the "
        f"fuzzing (at start {fuzz_rss.baseline_bytes / mib:,.0f} MiB); {bomb_rss.peak_bytes / mib:,.0f} MiB "
        f"during the bomb run (just before it {before_bombs / mib:,.0f} MiB)"
    )
    expected = VALID_CALL_COST * sent
    correct = stored == sent and Decimal(cost or "0") == expected
    verdict = "correct" if correct else "WRONG"
    print(f"valid calls sent afterwards: {sent}; in llm_calls: {stored}, cost {cost} (expected {expected})")
    print(f"valid calls stored correctly: {verdict}")
    print(f"collector alive: {alive}")
    clean = crashes == 0 and restarts == 0 and errors == 0 and unreadable == 0
    return 0 if clean and correct and alive else 1


if __name__ == "__main__":
    sys.exit(main())
