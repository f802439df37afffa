"""``eventbatch events export`` / ``events import``, as a user runs them: real subprocesses on
real SQLite logs written by ``eventbatch simulate``, and a topic on the real Kafka-protocol broker.

A log moved SQLite -> JSON Lines -> Kafka -> Parquet -> SQLite keeps every record's bytes at
its position and ``replay --verify`` stays clean at each step; records the log cannot decode, of
an unknown type or not in the encoder's form travel unchanged; a file that is wrong anywhere, or
a log that is not empty, is refused in one line, exit 2, with nothing appended or created.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.e2e.test_replay_cli import SCENARIO

ROOT = Path(__file__).resolve().parents[2]
pytest.importorskip("pyarrow")


def eventbatch(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eventbatch", "--log", url, *args],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, result.stderr
    return result


def refused(result: subprocess.CompletedProcess[str], words: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("eventbatch: error: "), result.stderr
    assert words in lines[0], lines[0]


def rows(db: Path) -> list[tuple[int, bytes]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT position, data FROM events ORDER BY position").fetchall()


def sqlite(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("export")
    (tmp / "scenario.yaml").write_text(SCENARIO)
    log = tmp / "events.db"
    ok(eventbatch(sqlite(log), "simulate", str(tmp / "scenario.yaml")))
    return log


def verified(url: str, tmp: Path) -> None:
    result = ok(eventbatch(url, "replay", "--verify", "--views", str(tmp / f"views-{uuid.uuid4().hex[:6]}.db")))
    assert "every recorded decision and effect is reproduced" in result.stdout, result.stdout


@pytest.mark.kafka
@pytest.mark.slow
def test_a_log_moves_sqlite_to_kafka_and_back_byte_for_byte(simulated: Path, tmp_path: Path,
                                                             kafka_bootstrap: str) -> None:
    original = rows(simulated)
    assert len(original) > 40
    verified(sqlite(simulated), tmp_path)

    ok(eventbatch(sqlite(simulated), "events", "export", "-o", str(tmp_path / "a.jsonl")))
    topic = f"kafka://{kafka_bootstrap}/export-{uuid.uuid4().hex[:8]}"
    result = ok(eventbatch(topic, "events", "import", str(tmp_path / "a.jsonl")))
    assert f"imported {len(original)} record(s)" in result.stderr
    verified(topic, tmp_path)

    ok(eventbatch(topic, "events", "export", "-o", str(tmp_path / "b.parquet")))
    ok(eventbatch(topic, "events", "export", "-o", str(tmp_path / "b.jsonl")))
    assert (tmp_path / "b.jsonl").read_bytes() == (tmp_path / "a.jsonl").read_bytes()  # Kafka holds the same bytes

    moved = tmp_path / "moved.db"
    ok(eventbatch(sqlite(moved), "events", "import", str(tmp_path / "b.parquet")))
    verified(sqlite(moved), tmp_path)
    assert rows(moved) == original

    # the topic is not empty now: a second import is refused and appends nothing
    refused(eventbatch(topic, "events", "import", str(tmp_path / "a.jsonl")), "import appends only to an empty log")
    ok(eventbatch(topic, "events", "export", "-o", str(tmp_path / "c.jsonl")))
    assert (tmp_path / "c.jsonl").read_bytes() == (tmp_path / "a.jsonl").read_bytes()


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_records_the_log_cannot_read_or_would_write_otherwise_travel_unchanged(
    simulated: Path, tmp_path: Path, suffix: str
) -> None:
    source = tmp_path / "odd.db"
    source.write_bytes(simulated.read_bytes())
    first = rows(source)[1][1]
    odd = [
        b"\xff\x00 not a record",  # quarantined on reading
        b'{"type":"FromANewerWriter","key":"k","recorded_at":7,"payload":{"type":"FromANewerWriter","x":[1,2]}}',
        first.replace(b'","', b'", "'),  # a well-formed envelope, spaced as another encoder would
        b'{"type":"PodBound","key":"a","recorded_at":1,"payload":{"type":"PodBound"},'
        b'"causation":{"position":3,"handler":"h","index":0}}',  # a default written out
    ]
    with sqlite3.connect(source) as conn:
        end = conn.execute("SELECT MAX(position) + 1 FROM events").fetchone()[0]
        # two pipelines' claims, then a record of the first (its epoch is its claim + 1): readers skip it
        odd += [claim("a"), claim("b"),
                b'{"type":"NodeRemoved","key":"node-0","recorded_at":9,"payload":{"type":"NodeRemoved",'
                b'"node":"node-0"},"epoch":%d}' % (end + 5)]
        conn.executemany("INSERT INTO events (position, data) VALUES (?, ?)",
                         [(end + i, data) for i, data in enumerate(odd)])
    export = tmp_path / f"odd{suffix}"
    ok(eventbatch(sqlite(source), "events", "export", "-o", str(export)))
    target = tmp_path / "target.db"
    ok(eventbatch(sqlite(target), "events", "import", str(export)))
    assert rows(target) == rows(source)
    assert [data for _, data in rows(target)[-len(odd):]] == odd
    with sqlite3.connect(target) as conn:  # where the claims are, for a reader starting past them (the fence)
        assert dict(conn.execute("SELECT name, position FROM consumers")) == {"writer": end + 5,
                                                                           "writer.previous": end + 4}
    # the replaced writer's record is still skipped by readers of the imported log
    tail = ok(eventbatch(sqlite(target), "events", "tail", "--from", str(end + 5), "-o", "json"))
    assert [json.loads(line)["type"] for line in tail.stdout.splitlines()] == ["WriterClaimed"]


def test_records_the_columns_cannot_hold_travel_as_their_bytes_through_parquet(simulated: Path, tmp_path: Path) -> None:
    source = tmp_path / "odd.db"
    source.write_bytes(simulated.read_bytes())
    odd = [
        b'{"type":"NodeAdded","key":"n","recorded_at":1,"payload":{"type":"NodeAdded","name":"\xff\xfe"}}',
        b'{"type":"NodeAdded","key":"n","recorded_at":18446744073709551615,"payload":{"type":"NodeAdded"}}',
    ]
    with sqlite3.connect(source) as conn:
        end = conn.execute("SELECT MAX(position) + 1 FROM events").fetchone()[0]
        conn.executemany("INSERT INTO events (position, data) VALUES (?, ?)",
                         [(end + i, data) for i, data in enumerate(odd)])
    export = ok_export(source, tmp_path / "odd.parquet")
    import pyarrow.parquet as pq

    table = pq.read_table(export)
    assert table.column("raw").to_pylist()[-2:] == odd
    assert table.column("raw").null_count == table.num_rows - 2  # every other record in its columns
    target = tmp_path / "target.db"
    ok(eventbatch(sqlite(target), "events", "import", str(export)))
    assert rows(target) == rows(source)


@pytest.mark.slow
def test_a_parquet_export_of_many_row_groups_gives_every_record_back(simulated: Path, tmp_path: Path) -> None:
    """More records than a row group, odd ones on the edges of the chunks a bulk read and a column
    build take: each record comes back at its position, byte for byte."""
    stored = [data for _, data in rows(simulated)]
    total = 70_000
    records = [stored[i % len(stored)] for i in range(total)]
    odd = {16_383: b"\xff\x00 not a record", 16_384: stored[3].replace(b'","', b'", "'),
           65_535: b'{"type":"X","key":"k","recorded_at":1,"payload":{},"position":4}', 65_536: b"[]",
           69_999: b'{"type":"X","key":"k","recorded_at":-1,"payload":{"x":"\xff"}}'}
    for position, data in odd.items():
        records[position] = data
    source = tmp_path / "many.db"
    with sqlite3.connect(source) as conn:
        conn.execute("CREATE TABLE events (position INTEGER PRIMARY KEY, data BLOB NOT NULL)")
        conn.executemany("INSERT INTO events (position, data) VALUES (?, ?)", enumerate(records))
    export = ok_export(source, tmp_path / "many.parquet")
    import pyarrow.parquet as pq

    file = pq.ParquetFile(export)
    assert file.metadata.num_rows == total and file.metadata.num_row_groups == 2
    table = file.read(columns=["position", "type", "raw"])
    assert table.column("position").to_pylist() == list(range(total))
    raws = table.column("raw").to_pylist()
    assert {position: raw for position, raw in enumerate(raws) if raw is not None} == odd
    assert table.column("type").to_pylist()[:len(stored)] == [json.loads(data)["type"] for data in stored]
    target = tmp_path / "target.db"
    ok(eventbatch(sqlite(target), "events", "import", str(export)))
    assert [data for _, data in rows(target)] == records


def claim(identity: str) -> bytes:
    return (b'{"type":"WriterClaimed","key":"%s","recorded_at":8,"payload":{"type":"WriterClaimed",'
            b'"identity":"%s"}}' % (identity.encode(), identity.encode()))


def test_a_range_by_positions_and_by_times(simulated: Path, tmp_path: Path) -> None:
    out = tmp_path / "range.jsonl"
    ok(eventbatch(sqlite(simulated), "events", "export", "-o", str(out), "--from", "5", "--to", "9"))
    lines = out.read_bytes().splitlines()
    assert [json.loads(line)["position"] for line in lines] == [5, 6, 7, 8, 9]
    stored = dict(rows(simulated))
    for line in lines:  # each line is the record as stored, its position put first
        position = json.loads(line)["position"]
        assert line == b'{"position":%d,' % position + stored[position][1:]

    result = ok(eventbatch(sqlite(simulated), "events", "export", "-o", "-", "--since", "10s", "--until", "71000"))
    times = [json.loads(line)["recorded_at"] for line in result.stdout.splitlines()]
    every = [json.loads(data)["recorded_at"] for data in stored.values()]
    assert times == [t for t in every if 10_000 <= t <= 71_000] and 10_000 in times and 71_000 in times
    timed = ok_export(simulated, tmp_path / "timed.parquet", "--since", "10s", "--until", "71000")
    import pyarrow.parquet as pq

    assert pq.read_table(timed).column("position").to_pylist() == [
        json.loads(line)["position"] for line in result.stdout.splitlines()]

    table = pq.read_table(ok_export(simulated, tmp_path / "range.parquet", "--from", "20", "--to", "29"))
    assert table.column("position").to_pylist() == list(range(20, 30))
    assert table.column_names == ["position", "type", "key", "recorded_at", "causation", "correlation", "version",
                                  "epoch", "payload", "raw"]
    for row in table.to_pylist():
        record = json.loads(stored[row["position"]])
        assert (row["type"], row["key"], row["recorded_at"]) == (record["type"], record["key"], record["recorded_at"])
        assert json.loads(row["payload"]) == record["payload"] and row["raw"] is None
        if "causation" in record:
            assert row["causation"]["position"] == record["causation"]["position"]
            assert row["causation"]["handler"] == record["causation"]["handler"]


def test_parquet_is_zstd_unless_another_codec_is_asked_for(simulated: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    default = pq.ParquetFile(ok_export(simulated, tmp_path / "default.parquet"))
    snappy = pq.ParquetFile(ok_export(simulated, tmp_path / "snappy.parquet", "--compression", "snappy"))
    assert {default.metadata.row_group(0).column(i).compression for i in range(default.metadata.num_columns)} == {"ZSTD"}
    assert {snappy.metadata.row_group(0).column(i).compression for i in range(snappy.metadata.num_columns)} == {"SNAPPY"}
    assert snappy.read().equals(default.read())


def ok_export(log: Path, out: Path, *args: str) -> Path:
    ok(eventbatch(sqlite(log), "events", "export", "-o", str(out), *args))
    return out


def _lines(simulated: Path, tmp_path: Path) -> list[bytes]:
    return ok_export(simulated, tmp_path / "good.jsonl").read_bytes().splitlines(keepends=True)


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (lambda lines: [*lines[:3], b'{"position":3,"type":"NodeAdded"\n', *lines[4:]], "line 4: not an event record"),
        (lambda lines: [*lines[:3], b"not json at all\n", *lines[4:]], "line 4: not a record line"),
        (lambda lines: [*lines[:10], *lines[11:]], "line 11: position 11 after 9 (a gap"),
        (lambda lines: lines[1:], "line 1: the export starts at position 1"),
        (lambda lines: [*lines[:5], b'{"position":5,"type":"X","key":"k","recorded_at":0,"payload":{},'
                        b'"causation":{"position":5,"handler":"h"}}\n', *lines[6:]],
         "line 6: its causation names position 5"),
        (lambda lines: [*lines[:5], b"\n", *lines[5:]], "line 6 is empty"),
    ],
    ids=["malformed-envelope", "not-json", "gap", "not-from-0", "causation-forward", "empty-line"],
)
def test_a_bad_jsonl_export_is_refused_before_anything_is_created(simulated: Path, tmp_path: Path, damage,
                                                                    words: str) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"".join(damage(_lines(simulated, tmp_path))))
    target = tmp_path / "new.db"
    refused(eventbatch(sqlite(target), "events", "import", str(bad)), words)
    assert not target.exists() and not list(tmp_path.glob("new.db*"))


def test_a_parquet_file_of_another_schema_is_refused(simulated: Path, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(ok_export(simulated, tmp_path / "good.parquet"))
    pq.write_table(table.drop_columns(["epoch"]), tmp_path / "dropped.parquet")
    pq.write_table(table.set_column(3, "recorded_at", table.column("recorded_at").cast(pa.string())),
                   tmp_path / "retyped.parquet")
    (tmp_path / "text.parquet").write_text("PAR1 but not really\n")
    target = tmp_path / "new.db"
    for name, words in [("dropped", "not an eventbatch export: columns"), ("retyped", "recorded_at:string"),
                        ("text", "not a Parquet file")]:
        refused(eventbatch(sqlite(target), "events", "import", str(tmp_path / f"{name}.parquet")), words)
        assert not target.exists()


async def _truncate(path: Path, before: int) -> int:
    from eventbatch.log.sqlite import SqliteLog

    async with SqliteLog(str(path)) as log:
        return await log.truncate(before)


def test_a_compacted_log_exports_from_what_it_holds_and_that_export_is_not_imported(
    simulated: Path, tmp_path: Path
) -> None:
    compacted = tmp_path / "compacted.db"
    compacted.write_bytes(simulated.read_bytes())
    assert asyncio.run(_truncate(compacted, 10)) == 10
    export = ok_export(compacted, tmp_path / "held.jsonl")
    assert json.loads(export.read_bytes().splitlines()[0])["position"] == 10
    refused(eventbatch(sqlite(tmp_path / "new.db"), "events", "import", str(export)),
            "the export starts at position 10; an import into an empty log needs the log from position 0")
    refused(eventbatch(sqlite(compacted), "events", "export", "-o", str(tmp_path / "o.jsonl"), "--from", "3"),
            "position 3")
    refused(eventbatch(sqlite(compacted), "events", "export", "-o", str(tmp_path / "o.parquet"), "--from", "3"),
            "position 3 was removed (the log starts at 10)")
    assert not (tmp_path / "new.db").exists() and not (tmp_path / "o.jsonl").exists()
    assert not list(tmp_path.glob("*o.parquet*"))


def test_import_into_a_log_that_holds_records_appends_nothing(simulated: Path, tmp_path: Path) -> None:
    export = ok_export(simulated, tmp_path / "all.parquet")
    target = tmp_path / "busy.db"
    target.write_bytes(simulated.read_bytes())
    before = rows(target)
    refused(eventbatch(sqlite(target), "events", "import", str(export)),
            f"holds {len(before)} record(s) (positions 0..{len(before) - 1}); import appends only to an empty log")
    assert rows(target) == before


def test_export_refusals_create_no_file(simulated: Path, tmp_path: Path) -> None:
    url = sqlite(simulated)
    refused(eventbatch(url, "events", "export", "-o", str(tmp_path / "out.csv")), "cannot tell the format")
    refused(eventbatch(url, "events", "export", "-o", str(tmp_path / "no" / "out.jsonl")), "no directory")
    refused(eventbatch(url, "events", "export", "-o", "-", "--format", "parquet"), "only JSON Lines")
    refused(eventbatch(url, "events", "export", "-o", str(tmp_path / "o.jsonl"), "--compression", "zstd"),
            "--compression: JSON Lines is written uncompressed")
    refused(eventbatch(url, "events", "export", "-o", str(tmp_path / "o.jsonl"), "--since", "yesterday"),
            "--since: 'yesterday' is not a time")
    refused(eventbatch(url, "events", "export", "-o", str(tmp_path / "o.jsonl"), "--from", "9", "--to", "3"),
            "--to 3 is before --from 9")
    refused(eventbatch(sqlite(tmp_path / "none.db"), "events", "export", "-o", str(tmp_path / "o.jsonl")), "no log at")
    assert sorted(p.name for p in tmp_path.iterdir()) == []
