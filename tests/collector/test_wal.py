"""The write-ahead log: order, group commit, torn tails, checkpoints, and kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

from costspan.collector.wal import WriteAheadLog


def payloads(wal, start=None):
    return [p for _, p in wal.replay(start)]


def test_append_commit_replay_and_reopen(tmp_path):
    wal = WriteAheadLog(tmp_path, segment_bytes=200)
    seqs = [wal.append(f"record-{i}".encode() * 5) for i in range(20)]
    assert seqs == list(range(20))
    # nothing is readable before it is durable: committed, or synced when its segment was closed
    assert len(payloads(wal)) < 20
    wal.commit(seqs[-1])
    assert payloads(wal) == [f"record-{i}".encode() * 5 for i in range(20)]
    assert len(list(tmp_path.glob("wal-*.log"))) > 1  # rotated
    wal.close()
    again = WriteAheadLog(tmp_path, segment_bytes=200)
    assert again.next_seq == 20 and len(payloads(again)) == 20


def test_checkpoint_drops_finished_segments_and_survives_reopen(tmp_path):
    wal = WriteAheadLog(tmp_path, segment_bytes=100)
    for i in range(30):
        wal.commit(wal.append(b"x" * 40 + str(i).encode()))
    before = len(list(tmp_path.glob("wal-*.log")))
    wal.advance(25)
    assert len(list(tmp_path.glob("wal-*.log"))) < before
    assert [s for s, _ in wal.replay()] == list(range(25, 30))
    wal.close()
    again = WriteAheadLog(tmp_path, segment_bytes=100)
    assert again.checkpoint == 25 and [s for s, _ in again.replay()] == list(range(25, 30))
    assert again.append(b"next") == 30


def test_torn_tail_is_cut_off(tmp_path):
    wal = WriteAheadLog(tmp_path)
    for i in range(3):
        wal.commit(wal.append(f"r{i}".encode()))
    wal.close()
    (segment,) = tmp_path.glob("wal-*.log")
    with segment.open("ab") as fh:
        fh.write(b"\xc5\x70\xff\x00\x00\x00half a rec")  # a crash in the middle of a write
    again = WriteAheadLog(tmp_path)
    assert payloads(again) == [b"r0", b"r1", b"r2"]
    assert again.commit(again.append(b"r3")) is None
    assert payloads(again)[-1] == b"r3"


def test_group_commit_from_many_threads(tmp_path):
    wal = WriteAheadLog(tmp_path)
    done = []

    def writer(n):
        for i in range(50):
            seq = wal.append(f"{n}-{i}".encode())
            wal.commit(seq)
            done.append(seq)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(done) == list(range(400))
    assert len(payloads(wal)) == 400


def test_commit_while_other_threads_rotate_segments(tmp_path):
    # tiny segments: appends from other threads rotate (and close) the segment a commit is syncing
    wal = WriteAheadLog(tmp_path, segment_bytes=64)  # every append rotates
    errors: list[BaseException] = []
    done = []

    def writer(n):
        try:
            for i in range(200):
                seq = wal.append(f"{n}-{i}-".encode() * 8)
                wal.commit(seq)
                done.append(seq)
        except BaseException as exc:  # a commit must never fail because another thread rotated
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible, so that the interleavings occur
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == []
    assert sorted(done) == list(range(1600)) and len(payloads(wal)) == 1600


WRITER = textwrap.dedent(
    """
    import sys
    from costspan.collector.wal import WriteAheadLog
    wal = WriteAheadLog(sys.argv[1], segment_bytes=4096)
    i = 0
    while True:
        seq = wal.append(("payload-%d" % i).encode() * 3)
        wal.commit(seq)
        print(seq, flush=True)  # acknowledged
        i += 1
    """
)


def test_kill_9_loses_nothing_acknowledged(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    acknowledged = []
    deadline = time.monotonic() + 30
    while len(acknowledged) < 300 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line:
            acknowledged.append(int(line))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    acknowledged.extend(int(line) for line in proc.stdout.read().split())  # printed before the kill
    assert len(acknowledged) >= 300
    wal = WriteAheadLog(tmp_path, segment_bytes=4096)
    stored = {seq: payload for seq, payload in wal.replay()}
    for seq in acknowledged:
        assert stored[seq] == (f"payload-{seq}".encode()) * 3
    assert sorted(stored) == list(range(len(stored)))  # no gap, nothing doubled


def test_pending_bytes_count_what_is_not_processed(tmp_path):
    wal = WriteAheadLog(tmp_path)
    for _ in range(10):
        wal.commit(wal.append(b"x" * 100))
    assert wal.pending_bytes == 10 * (100 + 10)
    wal.advance(4)
    assert wal.pending_bytes == 6 * 110
    wal.close()
    assert WriteAheadLog(tmp_path).pending_bytes == 6 * 110


def test_reading_on_in_chunks_while_writing_matches_the_log(tmp_path):
    # the pipeline's pattern: replay from where it stopped, take a few records, checkpoint; writers go on
    wal = WriteAheadLog(tmp_path, segment_bytes=300)
    expected = {}
    seen = []
    position = 0
    for round_ in range(40):
        for i in range(3):
            payload = f"r{round_}-{i}".encode() * (1 + (round_ + i) % 7)
            expected[wal.append(payload)] = payload
        wal.commit(wal.next_seq - 1)
        for seq, payload in wal.replay(position):
            seen.append((seq, payload))
            position = seq + 1
            if len(seen) % 4 == 0:
                break  # the generator is left mid-segment, as the pipeline leaves it at its batch size
        if round_ % 5 == 0:
            wal.advance(position)  # finished segments are deleted under the reader
        if round_ == 22:  # processing failed: the reader starts again from the checkpoint
            position = wal.checkpoint
            seen = [(seq, payload) for seq, payload in seen if seq < position]
    seen.extend(wal.replay(position))
    assert seen == sorted(expected.items())
    assert len(list(tmp_path.glob("wal-*.log"))) > 1
