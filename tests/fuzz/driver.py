"""Sends hostile cases (:mod:`tests.fuzz.cases`) to a running collector and counts its answers.

An answer is a crash when it is an HTTP 5xx other than the retryable 503, a gRPC INTERNAL, UNKNOWN or
DATA_LOSS, or no answer at all. Afterwards :func:`check_valid_spans` sends valid calls over both transports
and counts them in ``llm_calls``; :class:`RssSampler` follows the peak RSS of the collector's process tree.
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import os
import random
import re
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from .cases import (
    GRPC_METHODS,
    LIMIT,
    PROTOBUF,
    Case,
    case,
    gzip_bomb,
    json_bomb,
    json_flood,
    protobuf_floods,
    traces_request,
)

CRASH_GRPC = {"INTERNAL", "UNKNOWN", "DATA_LOSS"}


@dataclass
class Tally:
    inputs: int = 0
    answers: Counter[str] = field(default_factory=Counter)  # "http 400", "grpc INVALID_ARGUMENT" ...
    crashes: list[str] = field(default_factory=list)  # the first few, to replay

    def add(self, answer: str, crashed: bool, seed: int, what: str) -> None:
        self.inputs += 1
        self.answers[answer] += 1
        if crashed and len(self.crashes) < 50:
            self.crashes.append(f"{answer} seed={seed} {what}")

    def merge(self, other: Tally) -> None:
        self.inputs += other.inputs
        self.answers.update(other.answers)
        self.crashes.extend(other.crashes[: 50 - len(self.crashes)])

    @property
    def crash_count(self) -> int:
        return sum(n for answer, n in self.answers.items() if is_crash(answer))


def is_crash(answer: str) -> bool:
    transport, _, code = answer.partition(" ")
    if transport == "http":
        return code == "no-answer" or (code.isdigit() and int(code) >= 500 and code != "503")
    return code in CRASH_GRPC or code == "no-answer"


class Sender:
    """One HTTP/1.1 connection (kept alive, opened again after the server closes it) and one gRPC channel."""

    def __init__(self, http_port: int, grpc_port: int) -> None:
        self.http_port = http_port
        self.conn: http.client.HTTPConnection | None = None
        self.channel = grpc.insecure_channel(
            f"127.0.0.1:{grpc_port}",
            options=[("grpc.max_send_message_length", 4 * LIMIT), ("grpc.max_receive_message_length", LIMIT)],
        )
        self.calls = {path: self.channel.unary_unary(path) for path in GRPC_METHODS.values()}

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.channel.close()

    def send(self, c: Case) -> str:
        return self._http(c) if c.transport == "http" else self._grpc(c)

    def _http(self, c: Case, method: str = "POST") -> str:
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=120)
            try:
                self.conn.putrequest(method, c.path, skip_accept_encoding=True)
                for name, value in c.headers.items():
                    self.conn.putheader(name, value)
                self.conn.putheader("Content-Length", str(len(c.body)))
                self.conn.endheaders()
                # refused before the whole body was read: the answer is still there to read
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.conn.send(c.body)
                response = self.conn.getresponse()
                response.read()
                if response.will_close:
                    self.conn.close()
                    self.conn = None
                return f"http {response.status}"
            except (http.client.HTTPException, OSError, UnicodeEncodeError) as exc:
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
                if isinstance(exc, (UnicodeEncodeError, http.client.InvalidURL)) or (
                    isinstance(exc, ValueError) and "header" in str(exc).lower()
                ):
                    return "http not-sendable"  # a header the client library refuses to send
                if attempt:
                    return "http no-answer"
        return "http no-answer"

    def _grpc(self, c: Case) -> str:
        compression = grpc.Compression.Gzip if c.grpc_gzip else None
        try:
            self.calls[c.path](c.body, timeout=120, compression=compression)
            return "grpc OK"
        except grpc.RpcError as exc:
            code = exc.code()
            return f"grpc {code.name if code is not None else 'no-answer'}"


def run_cases(http_port: int, grpc_port: int, seed: int, count: int, grpc_share: float = 0.3) -> Tally:
    """``count`` cases from ``seed``; each case's own seed is in the tally's crash lines, to replay it."""
    sender = Sender(http_port, grpc_port)
    tally = Tally()
    master = random.Random(seed)
    try:
        for _ in range(count):
            case_seed = master.getrandbits(63)
            c = case(random.Random(case_seed), grpc_share)
            answer = sender.send(c)
            tally.add(answer, is_crash(answer), case_seed, c.what)
    finally:
        sender.close()
    return tally


def replay(http_port: int, grpc_port: int, case_seed: int, grpc_share: float = 0.3) -> tuple[Case, str]:
    c = case(random.Random(case_seed), grpc_share)
    sender = Sender(http_port, grpc_port)
    try:
        return c, sender.send(c)
    finally:
        sender.close()


def bomb_run(http_port: int, grpc_port: int, rounds: int = 4, parallel: int = 8) -> Tally:
    """Gzip bombs, JSON bombs and bodies over the size limit, ``parallel`` at once, over both transports:
    the memory the collector takes while refusing them is what :class:`RssSampler` measures."""
    big = os.urandom(LIMIT + 4096)  # incompressible: refused while it streams in, by its declared size
    oversized = traces_request(random.Random(1), 1)
    oversized.resource_spans[0].scope_spans[0].spans[0].name = "x" * (LIMIT + 1024)
    grpc_bomb = oversized.SerializeToString()
    cases = [
        Case("http", "/v1/traces", gzip_bomb(), {"content-type": PROTOBUF, "content-encoding": "gzip"}),
        Case(
            "http",
            "/v1/traces",
            json_bomb(),
            {"content-type": "application/json", "content-encoding": "gzip"},
        ),
        Case(
            "http",
            "/v1/events",
            gzip_bomb(),
            {"content-type": "application/json", "content-encoding": "gzip"},
        ),
        Case("http", "/v1/traces", big, {"content-type": PROTOBUF}),
        Case("grpc", GRPC_METHODS["traces"], grpc_bomb, grpc_gzip=True),
        # within the size limit, but millions of JSON objects once decoded
        Case("http", "/v1/events", json_flood(), {"content-type": "application/json"}),
        Case(
            "http",
            "/v1/traces",
            b'{"resourceSpans":' + json_flood() + b"}",
            {"content-type": "application/json"},
        ),
    ]
    # within the size limit, but millions of empty protobuf messages once decoded
    for flood in protobuf_floods().values():
        cases.append(Case("http", "/v1/traces", flood, {"content-type": PROTOBUF}))
        cases.append(Case("grpc", GRPC_METHODS["traces"], flood))
    tally = Tally()
    lock = threading.Lock()

    def one(k: int) -> None:
        sender = Sender(http_port, grpc_port)
        try:
            for r in range(rounds):
                c = cases[(k + r * parallel) % len(cases)]  # every case, once rounds * parallel covers them
                answer = sender.send(c)
                with lock:
                    tally.add(answer, is_crash(answer), -1, f"bomb {c.path} {c.headers}")
        finally:
            sender.close()

    threads = [threading.Thread(target=one, args=(k,)) for k in range(parallel)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return tally


class LogDrain:
    """Reads a process's stderr as it comes (a full pipe would block the process at its next log line),
    keeping the lines of the exceptions it logged."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.exceptions: Counter[str] = Counter()
        self.tracebacks = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for raw in self.stream:
            line = raw.decode(errors="replace").rstrip()
            if line.startswith("Traceback"):
                self.tracebacks += 1
            elif _EXCEPTION_LINE.match(line):
                self.exceptions[line[:160]] += 1


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b")


class RssSampler:
    """The peak of the summed resident memory of a process and all its descendants, sampled from /proc."""

    def __init__(self, pid: int, interval_s: float = 0.05) -> None:
        self.pid = pid
        self.interval_s = interval_s
        self.peak_bytes = 0
        self.baseline_bytes = tree_rss(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak_bytes = max(self.peak_bytes, tree_rss(self.pid))


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                todo.extend(int(child) for child in task.read_text().split())
    return out


def tree_rss(pid: int) -> int:
    total = 0
    for p in _descendants(pid):
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
        if found:
            total += int(found.group(1)) * 1024
    return total


def metric(admin_port: int, name: str, having: str = "") -> float:
    """The sum of a metric's samples on the admin ``/metrics`` page (those whose line holds ``having``)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics", timeout=30).read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name)] in " {" and having in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


VALID_SERVICE = "fuzz-valid"


def check_valid_spans(
    http_port: int, grpc_port: int, sql: Callable[[str], list[str]], calls: int = 20, timeout_s: float = 120
) -> tuple[int, int, str]:
    """Send ``calls`` valid priced calls (half over HTTP with gzip, half over gRPC) and wait until
    ``llm_calls`` holds them; returns (sent, stored, their summed cost as stored)."""
    rng = random.Random(time.time_ns())
    sender = Sender(http_port, grpc_port)
    try:
        for n in range(calls):
            request = traces_request(rng, 1)
            request.resource_spans[0].resource.attributes[0].value.string_value = VALID_SERVICE
            body = request.SerializeToString()
            if n % 2:
                answer = sender.send(Case("grpc", GRPC_METHODS["traces"], body))
                assert answer == "grpc OK", answer
            else:
                headers = {"content-type": PROTOBUF, "content-encoding": "gzip"}
                answer = sender.send(Case("http", "/v1/traces", gzip.compress(body), headers))
                assert answer == "http 200", answer
    finally:
        sender.close()
    query = f"SELECT count(*), sum(cost_usd) FROM llm_calls WHERE service_name = '{VALID_SERVICE}'"
    deadline = time.monotonic() + timeout_s
    stored, cost = 0, ""
    while time.monotonic() < deadline:
        rows = sql(query)
        stored, cost = int(rows[0].split(",")[0]), rows[0].split(",")[1]
        if stored >= calls:
            break
        time.sleep(0.5)
    return calls, stored, cost
