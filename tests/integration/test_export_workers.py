"""A Parquet export by worker processes (``eventbatch.export.worker``) on real SQLite files: the
file is byte for byte the one a single process writes, with records the columns cannot hold on
the pieces' edges, a gap, a time range, the exporting process building the first pieces and
others itself, or none; pieces given to a worker as the export goes come back in the order given;
a worker's failure ends the export with its message and leaves no worker running."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import msgspec
import pytest

from eventbatch.export import ExportError, Parts, bulk, worker
from eventbatch.log.factory import open_log
from eventbatch.log.port import LogTruncated

pq = pytest.importorskip("pyarrow.parquet")
from eventbatch.export import parquet  # noqa: E402  # needs pyarrow

PIECE = 50


def record(position: int) -> bytes:
    index = b',"index":%d' % (position % 3) if position % 3 else b""
    cause = b',"causation":{"position":%d,"handler":"scheduler"%s}' % (position - 1, index) if position % 7 else b""
    return (b'{"type":"PodBound","key":"default/job-%d","recorded_at":%d,"payload":{"type":"PodBound",'
            b'"pod":"p-%d","node":"n\xc3\xa9","note":"},\\"causation\\":{"}%s,"correlation":"default/job-%d"%s}'
            % (position // 10, position * 100, position, cause, position // 10,
               b',"epoch":3' if position % 5 == 0 else b""))


ODD = {
    PIECE - 1: b"\xff\x00 not a record",
    PIECE: record(PIECE).replace(b'","', b'", "'),  # other spacing
    3 * PIECE - 1: b'{"type":"X","key":"k","recorded_at":1,"payload":{},"position":4}',
    3 * PIECE: b'{"type":"X","key":"k","recorded_at":18446744073709551615,"payload":{}}',  # beyond int64
    5 * PIECE + 1: b'{"type":"X","key":"k","recorded_at":-1,"payload":{"x":"\xff"}}',  # not UTF-8
}
GAP = range(7 * PIECE + 10, 7 * PIECE + 80)  # positions not in the log (a whole piece among them)


def log_file(path: Path, count: int) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE events (position INTEGER PRIMARY KEY, data BLOB NOT NULL)")
        conn.executemany("INSERT INTO events (position, data) VALUES (?, ?)",
                         [(p, ODD.get(p, record(p))) for p in range(count) if p not in GAP])
    conn.close()
    return path


def export(log: Path, out: Path, **options) -> int:
    async def run() -> int:
        async with open_log(f"sqlite:///{log}") as opened:
            return await parquet.export(opened, str(out), options.pop("start", 0), options.pop("stop", None),
                                        piece=PIECE, **options)

    return asyncio.run(run())


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("meanwhile", [True, False], ids=["pieces-here-too", "every-piece-by-workers"])
def test_workers_write_the_file_one_process_writes(tmp_path: Path, meanwhile: bool, workers: int) -> None:
    log = log_file(tmp_path / "log.db", 30 * PIECE + 7)
    alone = tmp_path / "alone.parquet"
    count = export(log, alone, workers=0)
    shared = tmp_path / "shared.parquet"
    assert export(log, shared, workers=workers, meanwhile=meanwhile) == count == 30 * PIECE + 7 - len(GAP)
    assert shared.read_bytes() == alone.read_bytes()
    table = pq.read_table(shared)
    raws = table.column("raw").to_pylist()
    positions = table.column("position").to_pylist()
    assert positions == [p for p in range(30 * PIECE + 7) if p not in GAP]
    assert {p: raw for p, raw in zip(positions, raws, strict=True) if raw is not None} == ODD
    assert table.column("payload")[0].as_py() == record(0).split(b'"payload":')[1].split(b',"correlation"')[0].decode()


def test_a_time_range_and_a_position_range_by_workers(tmp_path: Path) -> None:
    log = log_file(tmp_path / "log.db", 30 * PIECE)
    for options in ({"since": 20_000, "until": 120_000}, {"start": 3 * PIECE + 5, "stop": 25 * PIECE + 3}):
        alone, shared = tmp_path / "alone.parquet", tmp_path / "shared.parquet"
        assert export(log, shared, workers=3, meanwhile=False, **options) == export(log, alone, workers=0, **options)
        assert shared.read_bytes() == alone.read_bytes()
        assert pq.ParquetFile(shared).metadata.num_rows > 0


def test_a_worker_that_fails_ends_the_export_with_its_reason(tmp_path: Path) -> None:
    pool = worker.Pool(2)
    try:
        pool.start(worker.Job(str(tmp_path / "missing.db"), "sqlite:///missing.db", 0, [(0, 10)]), 0)
        with pytest.raises(ExportError, match="unable to open database file"):
            pool.rows(0)
        log = log_file(tmp_path / "log.db", 100)
        with sqlite3.connect(log) as conn:  # a prefix removed after the range was bounded
            conn.execute("DELETE FROM events WHERE position < 20")
        conn.close()
        pool.start(worker.Job(str(log), "sqlite:///log.db", 10, [(10, 60), (60, 100)]), 1)
        with pytest.raises(LogTruncated, match="positions 10..19 were removed while they were exported"):
            pool.rows(1)
    finally:
        pool.close()
    assert all(proc.poll() is not None for proc in pool._procs)


def test_pieces_are_read_in_one_snapshot_each_as_asked(tmp_path: Path) -> None:
    log = log_file(tmp_path / "log.db", 10 * PIECE)
    runs = list(bulk.pieces(log, "sqlite:///log.db", 0, [(0, 3), (7 * PIECE + 20, 7 * PIECE + 30), (7 * PIECE + 75,
                                                                                                     7 * PIECE + 82)]))
    assert runs[0] == (0, [record(0), record(1), record(2)])
    assert runs[1] is None  # a piece of the gap
    assert runs[2] == ([7 * PIECE + 80, 7 * PIECE + 81], [record(7 * PIECE + 80), record(7 * PIECE + 81)])


def test_pieces_given_as_the_export_goes_come_back_in_order(tmp_path: Path) -> None:
    import pyarrow.ipc

    log = log_file(tmp_path / "log.db", 10 * PIECE)
    pool = worker.Pool(1)
    try:
        pool.start(worker.Job(str(log), "sqlite:///log.db", 0, [(PIECE, 2 * PIECE)]), 0, more=True)
        pool.give(0, (5 * PIECE, 5 * PIECE + 3))
        first = pyarrow.ipc.open_stream(pool.rows(0)).read_all()
        pool.give(0, (0, 2))  # after a piece came back
        pool.finish(0)
        rest = [pyarrow.ipc.open_stream(pool.rows(0)).read_all() for _ in range(2)]
        with pytest.raises(ExportError, match="ended .* before it sent every piece"):
            pool.rows(0)  # no more pieces: the worker ended
    finally:
        pool.close()
    positions = [table.column("position").to_pylist() for table in [first, *rest]]
    assert positions == [list(range(PIECE, 2 * PIECE)), [5 * PIECE, 5 * PIECE + 1, 5 * PIECE + 2], [0, 1]]


def test_a_worker_whose_libraries_write_to_its_stdout_still_sends_whole_pieces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Anything in a worker that writes to its descriptor 1 (a library's message, a profiler)
    goes to its stderr, never among the frames the exporter reads."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import os\n"
        "from eventbatch.export import parquet\n"
        "_tables = parquet.Builder.tables\n"
        "def tables(self, *args, **kwargs):\n"
        "    os.write(1, b'a library says hello on descriptor 1\\n')\n"
        "    return _tables(self, *args, **kwargs)\n"
        "parquet.Builder.tables = tables\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(site))  # the workers' environment, not this process's
    log = log_file(tmp_path / "log.db", 12 * PIECE)
    alone, shared = tmp_path / "alone.parquet", tmp_path / "shared.parquet"
    assert export(log, shared, workers=1, meanwhile=False) == export(log, alone, workers=0) == 12 * PIECE - len(GAP)
    assert shared.read_bytes() == alone.read_bytes()


def test_bytes_that_are_not_frames_end_the_stream_as_broken() -> None:
    import socket

    def frames(sent: bytes) -> list:
        ours, theirs = socket.socketpair()
        with ours, theirs:
            theirs.sendall(sent)
            theirs.shutdown(socket.SHUT_WR)
            return list(worker._frames(ours))

    assert frames(b"a library says hello on descriptor 1\n" + b"\0" * 64) == [(worker._BROKEN, None)]
    ready = worker._HEAD.pack(0, b"R")
    assert frames(ready + ready) == [(b"R", bytearray()), (b"R", bytearray())]
    assert frames(ready + ready[:4]) == [(b"R", bytearray())]  # a frame cut short ends the stream


def test_a_causation_of_every_shape_travels_in_its_columns(tmp_path: Path) -> None:
    # the columns' causation (parquet._Cause, which a worker decodes without loading the envelope's
    # schemas) encodes as the envelope's does: no record of any shape falls back to its bytes
    from schemas.envelope import Causation

    def shape_of(kind: type) -> list[tuple[str, object]]:
        return [(f.name, f.default) for f in msgspec.structs.fields(kind)]

    assert shape_of(parquet._Cause) == shape_of(Causation)  # the same fields, in order, with the same defaults
    assert parquet._Cause.__struct_config__.omit_defaults == Causation.__struct_config__.omit_defaults
    shapes = [Causation(3, "scheduler"), Causation(3, "scheduler", 2), Causation(3, "kubelet", 0, 7),
              Causation(3, "kubelet", 1, 0), None]
    records = [msgspec.json.encode(Parts(type="PodBound", key=f"k{i}", recorded_at=i, payload=msgspec.Raw(b"{}"),
                                         causation=shape))
               for i, shape in enumerate(shapes)]
    assert all(parquet.split_all(records))
    builder = parquet.Builder()
    (table,) = builder.tables(builder.run_positions(0, len(records)), records)
    assert table.column("raw").null_count == len(records)
    assert [row["causation"] for row in table.to_pylist()] == [
        None if shape is None else msgspec.structs.asdict(shape) for shape in shapes]
