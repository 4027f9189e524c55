"""A worker's files and supersedes past its checkpoint are undone before a replay; compaction leaves them."""

from __future__ import annotations

from costspan.exporters.compaction import compact
from costspan.exporters.duckdb_views import connect
from costspan.exporters.layout import files_in, partition
from costspan.exporters.parquet import ParquetWriter
from costspan.exporters.replay import Checkpoints, discard_unsettled
from tests.exporters.test_plain_readers import HOUR_NS, NOW, T0, calls
from tests.support.readers import assert_plain_readers_agree


def supersede_in_a_second_batch(data_dir):
    """Batch 0 (log records 0-1) stores two calls; batch 1 (records 1-2) a richer record of the first."""
    first, other = calls((1, T0, "gpt-4o", 1000, 100), (2, T0 + HOUR_NS, "gpt-4o", 2000, 100))
    writer = ParquetWriter(data_dir, worker=(0, 1))
    writer.write([first, other], seq=(0, 1))
    before = assert_plain_readers_agree(data_dir)
    [richer] = calls((3, T0, "gpt-4o", 1000, 300))
    richer.trace_id = first.trace_id
    first.duplicate_of = richer.span_id
    writer.write([richer], superseded=[first], seq=(1, 2))
    return before, (first, other, richer)


def test_a_crash_before_the_supersede_is_checkpointed_puts_the_stored_call_back(tmp_path):
    before, (first, other, _) = supersede_in_a_second_batch(tmp_path)
    assert assert_plain_readers_agree(tmp_path) != before
    # compaction beside the pipeline: the rewritten file's batch is not checkpointed, so it stays as it is
    at_one = Checkpoints(1, [1])
    folder = partition(tmp_path, "llm_calls", "2025-10-09")
    rewritten = [p.name for p in files_in(folder) if p.name.startswith("part-08")]
    compact(tmp_path, now=NOW, settled=at_one.settled)
    # the other call's file is merged into a day file; the rewritten one stays as it is
    after = [p.name for p in files_in(folder)]
    assert len(after) == 2 and after[0].startswith("day-") and after[1:] == rewritten
    # the crash: the replay starts at record 1
    discard_unsettled(tmp_path, at_one.position)
    assert assert_plain_readers_agree(tmp_path) == before
    con = connect(tmp_path)
    assert sorted(con.execute("SELECT span_id FROM llm_calls_all").fetchall()) == sorted(
        [(first.span_id,), (other.span_id,)]
    )
    assert not list((tmp_path / ".storage" / "undo").rglob("*.parquet"))


def test_a_checkpointed_supersede_stays_and_is_compacted(tmp_path):
    _, (_, other, richer) = supersede_in_a_second_batch(tmp_path)
    after = assert_plain_readers_agree(tmp_path)
    at_two = Checkpoints(2, [2])
    discard_unsettled(tmp_path, at_two.position)  # nothing past the checkpoint
    compact(tmp_path, now=NOW, settled=at_two.settled)
    assert [p.name[:4] for p in files_in(partition(tmp_path, "llm_calls", "2025-10-09"))] == ["day-"]
    assert assert_plain_readers_agree(tmp_path) == after == (2, other.cost_usd + richer.cost_usd)
    assert not list((tmp_path / ".storage" / "undo").rglob("*.parquet"))


def test_compaction_leaves_a_workers_file_past_its_checkpoint_for_the_replay_to_take_out(tmp_path):
    writer = ParquetWriter(tmp_path, worker=(1, 2))
    [a] = calls((1, T0, "gpt-4o", 1000, 100))
    [b] = calls((2, T0 + HOUR_NS, "gpt-4o", 2000, 100))
    writer.write([a], seq=(0, 1))
    writer.write([b], seq=(1, 2))
    # worker 1 of 2 is checkpointed at 1: the second file's records would be processed again after a crash
    at_one = Checkpoints(1, [2, 1])
    compact(tmp_path, now=NOW, settled=at_one.settled)
    folder = partition(tmp_path, "llm_calls", "2025-10-09")
    names = [p.name for p in files_in(folder)]
    assert [n[:4] for n in names] == ["day-", "part"] and "-w1of2-s1-2-" in names[1]
    discard_unsettled(tmp_path, at_one.position)  # the crash, and the start before the replay
    assert assert_plain_readers_agree(tmp_path) == (1, a.cost_usd)
