"""``eventbatch events tail``: the stream, raw.

Where it sits: read-only views of the log. ``tail`` prints one line per
event (position, time, type, key, causation). ``eventbatch schema`` (the
contract other systems consume the stream by) lives in
``eventbatch.cli.schema`` and is registered here.
"""

from __future__ import annotations

import sys
from contextlib import aclosing
from datetime import UTC, datetime

import msgspec

from eventbatch.cli import export, schema
from eventbatch.log.factory import open_log
from schemas.envelope import Envelope
from schemas.limits import INT64, IntArg

WALL_CLOCK_FLOOR = 1_000_000_000_000  # 2001-09-09 in ms: anything later is wall-clock time


def register(commands) -> None:
    events = commands.add_parser("events", help="show the event stream")
    sub = events.add_subparsers(dest="events_command", required=True, metavar="ACTION")
    tail = sub.add_parser("tail", help="print events from the log")
    tail.add_argument("--follow", "-f", action="store_true", help="keep printing new events")
    tail.add_argument("--job", help="only events correlated with this job (NAMESPACE/NAME or NAME)")
    tail.add_argument(
        "--from", dest="from_position", type=IntArg(0, INT64[1]), default=0, help="first position"
    )
    tail.add_argument("-o", "--output", choices=["text", "json"], default="text")
    tail.set_defaults(run=_tail)
    export.register(sub)

    schema.register(commands)  # eventbatch schema: its own module (the published contract)


def _matches_job(envelope: Envelope, job: str | None) -> bool:
    if job is None:
        return True
    wanted = job if "/" in job else f"default/{job}"
    return envelope.correlation == wanted


def format_time(ms: int) -> str:
    """Wall-clock stamps as UTC ISO time; virtual ones (from 0) as seconds."""
    if ms >= WALL_CLOCK_FLOOR:
        return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"
    return f"{ms / 1000:>10.3f}s"


def format_line(envelope: Envelope) -> str:
    cause = envelope.causation
    because = f"  <- #{cause.position} {cause.handler}" if cause else ""
    when = format_time(envelope.recorded_at)
    return f"#{envelope.position:<6} {when}  {envelope.type:<24} {envelope.key}{because}"


async def _tail(args, settings) -> int:
    async with open_log(settings.log_url) as log:
        async with aclosing(log.read(args.from_position, follow=args.follow)) as events:
            async for envelope in events:
                if not _matches_job(envelope, args.job):
                    continue
                if args.output == "json":
                    sys.stdout.write(msgspec.json.encode(envelope).decode() + "\n")
                else:
                    sys.stdout.write(format_line(envelope) + "\n")
                sys.stdout.flush()
        if log.stats.unknown or log.stats.quarantined:
            print(
                f"({log.stats.unknown} unknown event(s) skipped, "
                f"{log.stats.quarantined} record(s) quarantined)",
                file=sys.stderr,
            )
    return 0
