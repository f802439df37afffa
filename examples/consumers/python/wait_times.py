#!/usr/bin/env python3
"""Each queue's wait-time percentiles (submitted -> Running, per job), from eventbatch's event stream.

Where it sits: an example consumer outside the pipeline, built on
``eventbatch.stream``. It reads two event types, ``JobCreated`` (a job was
accepted into a queue, at ``recorded_at``) and ``JobPhaseChanged`` (the first
move to ``Running`` ends the wait), and prints one line per queue: jobs that
started, jobs still waiting, and the nearest-rank p50, p90, p99 and maximum of
their waits. Times are the log's ``recorded_at`` (milliseconds on the
appender's clock: virtual time for ``eventbatch simulate``).

    python examples/consumers/python/wait_times.py --log sqlite:///var/eventbatch/events.db
    python examples/consumers/python/wait_times.py --log kafka://127.0.0.1:9092/events --follow
    python examples/consumers/python/wait_times.py --since 2026-12-01T00:00:00Z --queue default --json

``--since`` counts jobs accepted at or after that time (an ISO 8601 time, or
milliseconds). ``--follow`` keeps reading and prints the table again each
time a job starts running, until interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NoReturn

from eventbatch.log.factory import LogUrlError, sqlite_path
from eventbatch.stream import Consumer, open_consumer
from schemas.events import JobCreated, JobPhaseChanged

DEFAULT_LOG = "sqlite://var/eventbatch/events.db"


def percentile(values: list[int], q: float) -> int:
    """Nearest-rank percentile: the smallest value with at least q% of the values at or below it."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


@dataclass
class Queue:
    waits: list[int] = field(default_factory=list)
    waiting: set[str] = field(default_factory=set)

    def row(self) -> dict[str, object]:
        row: dict[str, object] = {"jobs": len(self.waits), "waiting": len(self.waiting)}
        if self.waits:
            row.update({f"p{q}": percentile(self.waits, q) for q in (50, 90, 99)})
            row["max"] = max(self.waits)
        return row


class WaitTimes:
    """The fold: job -> (queue, accepted at) until it first runs; then its wait goes to its queue."""

    def __init__(self, queue: str | None) -> None:
        self.only = queue
        self.queues: dict[str, Queue] = {}
        self.accepted: dict[str, tuple[str, int]] = {}

    def apply(self, event: JobCreated | JobPhaseChanged, at: int) -> bool:
        """Fold one event; True when a job started running (the table changed)."""
        if isinstance(event, JobCreated):
            queue = event.manifest.spec.queue or "default"
            if self.only is None or queue == self.only:
                self.accepted[event.job] = (queue, at)
                self.queues.setdefault(queue, Queue()).waiting.add(event.job)
            return False
        if event.phase != "Running" or event.job not in self.accepted:
            return False
        queue, since = self.accepted.pop(event.job)  # a job's first Running ends its wait; later ones don't count
        self.queues[queue].waiting.discard(event.job)
        self.queues[queue].waits.append(at - since)
        return True

    def table(self) -> dict[str, dict[str, object]]:
        return {name: queue.row() for name, queue in sorted(self.queues.items())}


def seconds(ms: object) -> str:
    return "-" if ms is None else f"{int(str(ms)) / 1000:.1f}s"


def print_table(rows: dict[str, dict[str, object]]) -> None:
    header = ("QUEUE", "JOBS", "WAITING", "P50", "P90", "P99", "MAX")
    lines = [header] + [
        (name, str(r["jobs"]), str(r["waiting"]), *(seconds(r.get(k)) for k in ("p50", "p90", "p99", "max")))
        for name, r in rows.items()
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
    sys.stdout.flush()


def since_ms(text: str) -> int:
    if text.isdigit():
        return int(text)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time: {text!r} (an ISO 8601 time or milliseconds)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        fail(message)


def fail(message: str) -> NoReturn:
    print(f"wait_times: error: {message}", file=sys.stderr)
    raise SystemExit(2)


async def run(args: argparse.Namespace) -> None:
    times = WaitTimes(args.queue)
    async with open_consumer(
        args.log, types={"JobCreated", "JobPhaseChanged"}, since=args.since, follow=args.follow
    ) as stream:
        consumer: Consumer = stream
        async for envelope in consumer:
            payload = envelope.payload
            assert isinstance(payload, JobCreated | JobPhaseChanged)  # the filter's two types
            if times.apply(payload, envelope.recorded_at) and args.follow:
                print_table(times.table())
                print()
    if args.json:
        print(json.dumps(times.table(), indent=2))
    else:
        print_table(times.table())


def main(argv: list[str] | None = None) -> None:
    parser = Parser(prog="wait_times", description=__doc__.split("\n\n")[0])
    parser.add_argument("--log", default=os.environ.get("EVENTBATCH_LOG", DEFAULT_LOG), help="event log URL (env EVENTBATCH_LOG)")
    parser.add_argument("--since", type=since_ms, help="only jobs accepted at or after this time (ISO 8601 or ms)")
    parser.add_argument("--queue", help="only this queue")
    parser.add_argument("--follow", action="store_true", help="keep reading; print the table each time a job starts")
    parser.add_argument("--json", action="store_true", help="print the table as JSON (milliseconds)")
    args = parser.parse_args(argv)
    if args.follow and args.json:
        fail("--json prints once, at the end: it does not go with --follow")
    try:
        if args.log.startswith("sqlite:") and not sqlite_path(args.log).is_file():
            fail(f"no log at {sqlite_path(args.log)} (pass --log)")
        asyncio.run(run(args))
    except LogUrlError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
