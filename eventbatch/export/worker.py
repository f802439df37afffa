"""Parquet export on several cores: worker processes read and build pieces of the range, one process writes.

Where it sits: under ``eventbatch.export.parquet.export``, for an SQLite log
read from its file (``eventbatch.export.bulk``). Splitting a record into its
columns holds the GIL, so threads share one core; processes do not. Each
worker is a fresh interpreter (``python -m eventbatch.export.worker``, never
a fork of the exporting process, which runs threads), started with the
export, without numpy where pyarrow allows it (``WITHOUT_NUMPY``: its import
was half a worker's start):

- the exporting process starts ``workers(...)`` of them (one per core but
  its own) and, while they start, reads and builds the first pieces of the
  range itself, in order;
- once every worker is ready, the rest of the range is dealt in pieces of
  ``bulk.CHUNK`` positions, in order, as the export goes
  (``parquet._share``): each worker is given its next piece on its stdin
  (the job first, then one line ``low high`` per piece, stdin closed when
  there are no more) so as to have ``AHEAD`` more than the one it builds,
  and the exporter takes the next piece itself whenever the rows it must
  write next are not back yet, so that neither core waits while the other
  works, whatever their speeds (the exporter also writes and compresses
  every row group); the last few pieces are the exporter's, so that the
  worker does not end long after it. A worker reads its pieces in one
  snapshot of the file, refuses one in which the log no longer starts at
  the first position the exporter's own read found (a prefix removed
  meanwhile; nothing else of a log is ever rewritten), and builds the rows
  of each piece (``parquet.Builder``, the same code as in one process); the
  exporter reads and builds its pieces the same way;
- the rows of a piece go back to the exporter as one Arrow IPC stream on
  the worker's stdout, one end of a socket pair (not a pipe: a thread per
  worker reads each piece's rows in one call, ``_receive_into``, at most
  ``DEPTH`` pieces ahead), and the exporter hands them to its
  ``parquet.Writer`` in the range's order, which writes row groups of
  ``parquet.ROW_GROUP`` rows.

The rows of a record depend on that record only and the writer's row groups
on the rows and their order only, so the file is the one a single process
writes. A worker that fails sends one error frame and exits; the exporter
raises it, stops the other workers and leaves no file. Frames on a worker's
stdout: 8 bytes of length (little-endian), one byte of kind (``R`` ready,
``T`` a piece's rows, ``E`` an error as JSON ``{"truncated", "message"}``),
then the body.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import queue
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import msgspec

DEPTH = 2
"""Pieces a worker's rows may wait, read, before the exporter writes them."""

AHEAD = 2
"""Pieces a worker is given beyond the one it builds, before the exporter has its rows."""

MOST = 4
"""Workers at most: the exporter's own work (writing and compressing, besides its share) bounds the rest."""

LEAST = 8
"""Pieces of ``bulk.CHUNK`` positions a range needs before workers are started (below, starting
them costs more than they save: each imports pyarrow, about 0.1 CPU-s)."""

SOCKET_BYTES = 2**22
"""The buffer size asked for each end of a worker's socket to the exporter (the kernel caps it)."""

_HEAD = struct.Struct("<Qc")


class Job(msgspec.Struct, frozen=True):
    """What a worker is asked: the pieces to read and build, in order."""

    path: str
    url: str
    first: int
    pieces: list[tuple[int, int]]
    since: int | None = None
    until: int | None = None


class _Failure(msgspec.Struct, frozen=True):
    truncated: bool
    message: str


def workers() -> int:
    """Worker processes for a large range: one per core this process may run on but its own (which
    builds its share of the pieces too), up to ``MOST``, when a core is spare (the other processes
    at work at most the cores less one); else none, and the export runs in this process. A worker
    costs about 0.15 CPU-s to start and its rows a copy through a socket: workers shorten an export
    only with idle cores to run on."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    count = min(cores - 1, MOST)
    return count if count > 0 and others_at_work() <= cores - 1 else 0


def others_at_work() -> float:
    """How many other processes are at work: those runnable now less this one (``/proc/loadavg``),
    else the load average of the last minute. The load average alone counts this process's own
    work of the last minute (a command that has read or decoded for a while before it exports
    would find no core spare on an idle machine of two)."""
    try:
        running = Path("/proc/loadavg").read_text().split()[3].split("/")[0]
        return max(0, int(running) - 1)
    except (OSError, IndexError, ValueError):
        pass
    try:
        return os.getloadavg()[0]
    except OSError:  # no load average: take the cores as idle
        return 0.0


WITHOUT_NUMPY = "--without-numpy"


def _without_numpy() -> list[str]:
    """The worker's arguments: ``WITHOUT_NUMPY`` when the pyarrow here runs without numpy (from
    pyarrow 17). pyarrow imports numpy when it can, which is most of a worker's start (about 0.2
    CPU-s of 0.3) for nothing the worker needs: it packs its columns' integers with ``struct``
    instead (``parquet.Builder``)."""
    import pyarrow

    major = pyarrow.__version__.split(".")[0]
    return [WITHOUT_NUMPY] if major.isdigit() and int(major) >= 17 else []


class Pool:
    """Started worker processes, and a thread per worker reading its frames into a queue."""

    def __init__(self, count: int) -> None:
        root = str(Path(__file__).resolve().parents[2])  # the eventbatch and schemas packages
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
        self._procs: list[subprocess.Popen[bytes]] = []
        self._outs: list[socket.socket] = []  # this end of each worker's stdout
        self._frames: list[queue.Queue[tuple[bytes, Any]]] = []
        self._threads: list[threading.Thread] = []
        self._ready: list[threading.Event] = []
        try:
            for index in range(count):
                ours, theirs = socket.socketpair()
                self._outs.append(ours)
                with theirs:
                    for side, option in ((ours, socket.SO_RCVBUF), (theirs, socket.SO_SNDBUF)):
                        with contextlib.suppress(OSError):
                            side.setsockopt(socket.SOL_SOCKET, option, SOCKET_BYTES)
                    proc = subprocess.Popen([sys.executable, "-m", "eventbatch.export.worker", *_without_numpy()],
                                            stdin=subprocess.PIPE, stdout=theirs.fileno(), env=env)
                self._procs.append(proc)
                self._frames.append(queue.Queue(maxsize=DEPTH))
                self._ready.append(threading.Event())
                thread = threading.Thread(target=self._receive, args=(index,), name=f"export-worker-{index}",
                                          daemon=True)
                self._threads.append(thread)
                thread.start()
        except BaseException:
            self.close()
            raise

    def ready(self) -> bool:
        """Whether every worker has started (or ended: its end is then its next frame)."""
        return all(event.is_set() for event in self._ready)

    def start(self, job: Job, worker: int, *, more: bool = False) -> None:
        """Send ``worker`` its job; ``more``: further pieces follow (``give``), until ``finish``."""
        self._send_in(worker, msgspec.json.encode(job) + b"\n")
        if not more:
            self.finish(worker)

    def give(self, worker: int, piece: tuple[int, int]) -> None:
        """One more piece for ``worker``, after those of its job and those given before."""
        self._send_in(worker, b"%d %d\n" % piece)

    def finish(self, worker: int) -> None:
        """No more pieces for ``worker``: it ends after those it was given."""
        stdin = self._procs[worker].stdin
        assert stdin is not None
        with contextlib.suppress(BrokenPipeError):
            stdin.close()

    def has_rows(self, worker: int) -> bool:
        """Whether ``rows(worker)`` would return (or raise) without waiting."""
        return not self._frames[worker].empty()

    def _send_in(self, worker: int, line: bytes) -> None:
        stdin = self._procs[worker].stdin
        assert stdin is not None
        with contextlib.suppress(BrokenPipeError, ValueError):  # a worker that ended says why in its frames
            stdin.write(line)
            stdin.flush()

    def rows(self, worker: int) -> Any:
        """The next piece's rows from ``worker``, an Arrow IPC stream in a buffer; its failure raised."""
        kind, body = self._frames[worker].get()
        if kind == b"T":
            return body
        from eventbatch.export import ExportError
        from eventbatch.log.port import LogTruncated

        if kind == b"E":
            failure = msgspec.json.decode(body, type=_Failure)
            raise LogTruncated(failure.message) if failure.truncated else ExportError(failure.message)
        if kind == _BROKEN:
            raise ExportError("an export worker sent something that is not a frame on its stdout")
        code = self._procs[worker].wait()
        raise ExportError(f"an export worker ended (exit status {code}) before it sent every piece")

    def close(self) -> None:
        """Stop the workers that still run (after an error) and wait for every one and its thread."""
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
        for proc in self._procs:
            proc.wait()
        for frames, thread in zip(self._frames, self._threads, strict=True):
            while thread.is_alive():  # unblock a reading thread waiting for room
                with contextlib.suppress(queue.Empty):
                    while True:
                        frames.get_nowait()
                thread.join(0.05)
        for proc in self._procs:
            if proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
        for out in self._outs:
            out.close()

    def _receive(self, worker: int) -> None:
        frames, ready = self._frames[worker], self._ready[worker]
        try:
            for kind, body in _frames(self._outs[worker]):
                if kind == b"R":
                    ready.set()
                else:
                    frames.put((kind, body))
        except (OSError, ValueError):  # the socket closed under us: the pool is closing
            pass
        finally:
            ready.set()
            frames.put((b"", None))  # the end: a piece asked after it is an error


_KINDS = (b"R", b"T", b"E")  # ready, a piece's rows, a failure
_BROKEN = b"B"  # what the reading thread hands on for bytes that are not a frame
_MOST_BYTES = 2**31  # no piece's rows come near it (about 10 MB each)


def _frames(out: socket.socket) -> Iterator[tuple[bytes, Any]]:
    """Each frame's kind and body; a piece's rows (``T``) read into an Arrow buffer, which is not
    zeroed first as a ``bytearray`` is, and which its table then holds without a copy."""
    import pyarrow

    head = bytearray(_HEAD.size)
    while _receive_into(out, memoryview(head)):
        size, kind = _HEAD.unpack(head)
        if kind not in _KINDS or size > _MOST_BYTES:
            yield _BROKEN, None  # not a frame: what follows cannot be read either
            return
        body = pyarrow.allocate_buffer(size) if kind == b"T" else bytearray(size)
        if not _receive_into(out, memoryview(body)):
            return
        yield kind, body


def _receive_into(out: socket.socket, view: memoryview) -> bool:
    """Fill ``view`` from ``out``; False at its end first. ``MSG_WAITALL``: the whole of it in one
    call, which waits in the kernel with the GIL released (a pipe gives at most its size per call,
    and each next call waits for the GIL, which the exporting thread holds while it builds: the
    worker then waited for room to send, about a sixth of its time)."""
    got = 0
    while got < len(view):
        count = out.recv_into(view[got:], len(view) - got, socket.MSG_WAITALL)
        if not count:
            return False
        got += count
    return True


def _send(out: IO[bytes], kind: bytes, body: Any) -> None:
    out.write(_HEAD.pack(len(body), kind))
    out.write(body)
    out.flush()


def _stream(schema: Any, tables: list[Any]) -> Any:
    """``tables`` as one Arrow IPC stream, in a buffer of its size, measured first (a growing buffer
    copies the rows again each time it grows)."""
    import pyarrow
    import pyarrow.ipc

    size = pyarrow.MockOutputStream()
    with pyarrow.ipc.new_stream(size, schema) as stream:
        for table in tables:
            stream.write_table(table)
    body = pyarrow.allocate_buffer(size.size())
    with pyarrow.ipc.new_stream(pyarrow.FixedSizeBufferWriter(body), schema) as stream:
        for table in tables:
            stream.write_table(table)
    return body


def main() -> None:
    """A worker: reads its job on stdin, sends each piece's rows on stdout (module docstring)."""
    # The frames' socket moves to a descriptor of its own and descriptor 1 becomes stderr: nothing
    # else (a print, a library writing to descriptor 1, a profiler's output) lands among the frames.
    sys.stdout.flush()
    out = open(os.dup(1), "wb")  # for the worker's whole life
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    if WITHOUT_NUMPY in sys.argv[1:]:  # an import of numpy fails: pyarrow goes without it (``_without_numpy``)
        sys.modules["numpy"] = None  # type: ignore[assignment]
    try:
        import pyarrow
        import pyarrow.ipc

        from eventbatch.export import bulk, parquet

        _send(out, b"R", b"")
        lines = sys.stdin.buffer
        job = msgspec.json.decode(lines.readline(), type=Job)
        builder = parquet.Builder(since=job.since, until=job.until)
        empty = pyarrow.Table.from_batches([], schema=builder.schema)
        given = ((int(low), int(high)) for low, high in map(bytes.split, lines))  # pieces given after the job
        for run in bulk.pieces(Path(job.path), job.url, job.first, itertools.chain(job.pieces, given)):
            tables = [empty]
            if run is not None:
                first, datas = run
                tables = builder.tables(builder.run_positions(first, len(datas)), datas) or [empty]
            _send(out, b"T", _stream(builder.schema, tables))
    except BaseException as exc:
        from eventbatch.log.port import LogTruncated

        with contextlib.suppress(OSError):
            _send(out, b"E", msgspec.json.encode(_Failure(isinstance(exc, LogTruncated), f"{exc}")))
        sys.exit(1)


if __name__ == "__main__":
    main()
