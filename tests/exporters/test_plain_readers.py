"""Other engines read the datasets as files and get exactly the ``llm_calls`` view: while compaction swaps
folders under them, after a supersede, and after a data directory of the earlier layout is moved."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal

import pyarrow.parquet as pq

from costspan.exporters.compaction import compact
from costspan.exporters.duckdb_views import connect
from costspan.exporters.layout import dataset_files, files_in, partition
from costspan.exporters.migrate import migrate, needs_migration
from costspan.exporters.parquet import ParquetWriter, rows_to_table, spans_to_table
from costspan.processors import Span, SpanBatch, build_chain
from tests.support.readers import READERS, assert_plain_readers_agree, view_totals

T0 = 1_760_000_000_000_000_000  # 2025-10-09 08:53:20 UTC
HOUR_NS = 3_600_000_000_000
NOW = datetime(2025, 10, 12, 10, 30, tzinfo=UTC)


def calls(*specs):
    """Priced call records: (number, start in ns, model, input tokens, output tokens) each, in a trace of
    its own (so that no two are taken for one call)."""
    spans = [
        Span(
            f"{n:032x}",
            f"{n:016x}",
            f"chat {model}",
            start,
            start + 10**9,
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": model,
                "gen_ai.usage.input_tokens": inp,
                "gen_ai.usage.output_tokens": out,
            },
            {"service.name": "shop"},
            scope_name="opentelemetry.instrumentation.genai.openai",
        )
        for n, start, model, inp, out in specs
    ]
    return [c for c in build_chain()(SpanBatch.from_spans(spans)).calls if c is not None]


def test_readers_polling_while_compaction_swaps_folders_get_exact_sums_or_an_error(tmp_path):
    """A writer adds late calls into past hours and days (one file a batch), then replaces stored calls by
    richer records of them (supersedes: each rewrites one file); compaction runs again and again (every late
    file makes a day's folder swap), and readers of every engine poll throughout. A read lists the files,
    then opens them: one that opens a file a swap took away fails with an I/O error. Every read that
    succeeds holds each record once: while batches are written, it equals the totals after some number of
    batches; while supersedes run, it has every call, each file before or after its rewrite (a listed file
    may be rewritten before it is read, so any subset of the rewrites)."""
    rng = random.Random(7)
    span = int(NOW.timestamp() * 1e9 - HOUR_NS - T0)
    batches = []
    for b in range(70):
        start = T0 + rng.randrange(span) // HOUR_NS * HOUR_NS  # each batch within one hour: one file
        batches.append(
            calls(*((b * 10 + i, start + i * 10**9, "gpt-4o-mini", 100 + b * 10 + i, 7) for i in range(3)))
        )
    valid = {(0, Decimal(0))}
    totals = [0, Decimal(0)]
    writer = ParquetWriter(tmp_path)

    def write(batch):
        writer.write(batch)
        totals[0] += len(batch)
        totals[1] += sum(c.cost_usd for c in batch)
        valid.add((totals[0], totals[1]))

    for batch in batches[:30]:  # a history to compact
        write(batch)
    stop = threading.Event()
    swaps = []
    reads: dict[str, list[tuple[int, Decimal]]] = {name: [] for name in [*READERS, "view"]}
    failures: dict[str, int] = dict.fromkeys(reads, 0)

    def compacting():
        while not stop.is_set():
            swaps.append(compact(tmp_path, now=NOW).partitions_compacted)

    def reading():
        names = list(reads)
        i = 0
        while not stop.is_set():
            name = names[i % len(names)]
            i += 1
            try:
                got = view_totals(tmp_path) if name == "view" else READERS[name](tmp_path)
            except Exception:  # a file listed, then swapped away or rewritten: an error, tried again
                failures[name] += 1
                continue
            reads[name].append(got)

    threads = [threading.Thread(target=compacting), threading.Thread(target=reading)]
    for thread in threads:
        thread.start()
    try:
        for batch in batches[30:]:
            write(batch)
            time.sleep(0.03)
        time.sleep(0.5)  # reads that listed files before the last batch are done
        rows, base = totals
        costs = {base}
        stored = [c for batch in batches for c in batch]
        for n in range(12):
            old = stored.pop(rng.randrange(len(stored)))
            [richer] = calls((10_000 + n, old.start_time_ns, "gpt-4o-mini", old.input_tokens, 500))
            richer.trace_id = old.trace_id
            old.duplicate_of = richer.span_id
            writer.write([richer], superseded=[old])
            delta = richer.cost_usd - old.cost_usd
            costs |= {cost + delta for cost in costs}
            totals[1] += delta
            time.sleep(0.05)
        valid |= {(rows, cost) for cost in costs}
        time.sleep(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    wrong = {name: [r for r in got if r not in valid] for name, got in reads.items()}
    assert wrong == {name: [] for name in reads}
    succeeded = sum(len(got) for got in reads.values())
    print(f"reads: {succeeded} exact, {sum(failures.values())} failed with an error; swaps: {sum(swaps)}")
    assert all(reads.values()), f"every reader read at least once: {failures}"
    assert sum(swaps) >= 10
    compact(tmp_path, now=NOW)
    assert assert_plain_readers_agree(tmp_path) == tuple(totals)
    # compacted: one file a past day, one a past hour of today
    assert len(dataset_files(tmp_path, "llm_calls")) <= 3 + 10


def test_a_richer_record_takes_the_place_of_the_stored_call_in_its_file(tmp_path):
    first, other = calls((1, T0, "gpt-4o", 1000, 100), (2, T0 + 10**9, "gpt-4o", 2000, 100))
    writer = ParquetWriter(tmp_path)
    writer.write([first, other])
    [stored] = files_in(partition(tmp_path, "llm_calls", "2025-10-09"))
    before = assert_plain_readers_agree(tmp_path)

    # a later batch holds a richer record of the first call, in the same trace; dedupe marks the stored one
    [richer] = calls((3, T0, "gpt-4o", 1000, 300))
    richer.trace_id = first.trace_id
    first.duplicate_of = richer.span_id
    written = writer.write([richer], superseded=[first])
    assert stored in written
    assert files_in(partition(tmp_path, "llm_calls", "2025-10-09")) == [stored]  # the same file, rewritten
    rows, cost = assert_plain_readers_agree(tmp_path)
    assert rows == before[0] and cost == before[1] - first.cost_usd + richer.cost_usd
    con = connect(tmp_path)
    assert sorted(con.execute("SELECT span_id FROM llm_calls").fetchall()) == [
        (other.span_id,),
        (richer.span_id,),
    ]
    assert con.execute(
        "SELECT span_id, duplicate_of FROM llm_calls_all WHERE duplicate_of IS NOT NULL"
    ).fetchall() == [(first.span_id, richer.span_id)]


def test_a_supersede_finds_the_stored_call_after_compaction_and_across_days(tmp_path):
    first, second = calls((1, T0, "gpt-4o", 1000, 100), (2, T0 + 3 * HOUR_NS, "gpt-4o", 2000, 100))
    ParquetWriter(tmp_path).write([first])
    ParquetWriter(tmp_path).write([second])
    compact(tmp_path, now=NOW)  # one day file: a new writer does not know where the calls are
    [day_file] = files_in(partition(tmp_path, "llm_calls", "2025-10-09"))
    assert day_file.name.startswith("day-")

    writer = ParquetWriter(tmp_path)
    # the first call's richer record, stored in the same day's file
    [richer] = calls((3, T0, "gpt-4o", 1000, 300))
    richer.trace_id = first.trace_id
    first.duplicate_of = richer.span_id
    # the second call's richer record starts the next day (a clock apart): it goes to that day's folder
    [later] = calls((4, T0 + 20 * HOUR_NS, "gpt-4o", 2000, 300))
    later.trace_id = second.trace_id
    second.duplicate_of = later.span_id
    writer.write([richer, later], superseded=[first, second])
    assert files_in(partition(tmp_path, "llm_calls", "2025-10-09")) == [day_file]
    assert [p.name[:7] for p in files_in(partition(tmp_path, "llm_calls", "2025-10-10"))] == ["part-04"]
    rows = pq.read_table(day_file).column("span_id").to_pylist()
    assert rows == [richer.span_id]  # in time order, as a compacted file is
    assert assert_plain_readers_agree(tmp_path) == (2, richer.cost_usd + later.cost_usd)
    con = connect(tmp_path)
    assert con.execute("SELECT count(*) FROM llm_calls_all WHERE duplicate_of IS NOT NULL").fetchone() == (2,)


def test_a_data_directory_of_the_earlier_layout_is_moved_once(tmp_path):
    """Hour folders, a compacted day, duplicates inline, a record stored twice by a replay, a temporary
    file and a hidden folder of the earlier retention: moved into the current layout, every record once."""
    day_calls = calls(*((n, T0 + n * 60 * 10**9, "gpt-4o", 1000 + n, 10) for n in range(4)))
    dup = calls((9, T0 + 30 * 10**9, "gpt-4o", 1000, 10))[0]
    dup.duplicate_of = day_calls[0].span_id
    old_day = calls((7, T0 - 24 * HOUR_NS, "gpt-4o-mini", 500, 5))
    spans = [c for c in calls((8, T0, "gpt-4o", 1, 1))]
    for c in spans:
        c.kind = "agent"
    root = tmp_path / "llm_calls"
    hour = root / "date=2025-10-09" / "hour=08"
    hour.mkdir(parents=True)
    pq.write_table(rows_to_table(day_calls[:2]), hour / f"part-{'a' * 32}.parquet")
    pq.write_table(rows_to_table(day_calls[:2]), hour / f"part-{'b' * 32}.parquet")  # a replay's copy
    pq.write_table(rows_to_table([*day_calls[2:], dup]), hour / f"part-{'c' * 32}.parquet")
    (hour / ".tmp-part-dead.parquet").write_bytes(b"PAR1 torn")
    (root / "date=2025-10-08").mkdir()
    pq.write_table(rows_to_table(old_day), root / "date=2025-10-08" / f"compacted-{'d' * 32}.parquet")
    (root / ".expired-date=2025-01-01-x").mkdir()
    spans_hour = tmp_path / "genai_spans" / "date=2025-10-09" / "hour=08"
    spans_hour.mkdir(parents=True)
    pq.write_table(spans_to_table(spans), spans_hour / f"part-{'e' * 32}.parquet")

    assert needs_migration(tmp_path)
    assert migrate(tmp_path) == 3
    assert migrate(tmp_path) == 0 and not needs_migration(tmp_path)
    assert assert_plain_readers_agree(tmp_path) == (
        5,
        sum((c.cost_usd for c in [*day_calls, *old_day]), Decimal(0)),
    )
    con = connect(tmp_path)
    assert con.execute("SELECT count(*) FROM llm_calls_all").fetchone() == (6,)
    assert con.execute("SELECT count(*) FROM genai_spans").fetchone() == (1,)
    assert not list(tmp_path.glob("*/date=*/hour=*")) and not list(root.glob(".*"))


def test_views_made_while_a_swap_takes_a_listed_file_away_list_the_files_again(tmp_path, monkeypatch):
    # the moment a compaction swap falls between listing a day's files and binding the view to them: the
    # first listing names a file that is gone by then
    from costspan.exporters import duckdb_views

    ParquetWriter(tmp_path).write(
        calls((1, T0, "gpt-4o-mini", 100, 7), (2, T0 + 10**9, "gpt-4o-mini", 200, 7))
    )
    listings = []

    def listing_a_file_taken_away(data_dir, dataset):
        files = dataset_files(data_dir, dataset)
        listings.append(dataset)
        if len(listings) == 1:
            return [*files, files[0].with_name("part-00-gone.parquet")]
        return files

    monkeypatch.setattr(duckdb_views, "dataset_files", listing_a_file_taken_away)
    con = connect(tmp_path)
    assert con.execute("SELECT count(*) FROM llm_calls").fetchone()[0] == 2
    assert len(listings) > 3  # the views were made again from a new listing
