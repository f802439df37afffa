"""``eventbatch schema``: the published contract of the event log.

Where it sits: a read-only view of the code, not of a log (it never opens
one). ``schema events`` prints the JSON Schema of every event type (the
payloads); ``schema envelope`` the JSON Schema of a whole log record (the
envelope, its payload one of the event types); ``schema asyncapi`` the
AsyncAPI 3.0 document of the Kafka topic (messages, key, CloudEvents
headers); ``schema export DIR`` writes the last two as the files checked into
``docs/schema/``, and ``--check`` only compares (exit 1 when they differ).
The documents come from ``eventbatch.contract``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from eventbatch import contract
from eventbatch.cli.logcheck import NONE
from schemas.events import json_schema


def register(commands) -> None:
    schema = commands.add_parser(
        "schema",
        help="print the published contract of the log (JSON Schema, AsyncAPI)",
        description="The contract of the event log, generated from the code; the compatibility policy is in "
        "docs/log.md. None of these commands opens a log.",
    )
    sub = schema.add_subparsers(dest="schema_command", required=True, metavar="WHAT")
    events = sub.add_parser("events", help="JSON Schema of every event type (the payloads)")
    events.set_defaults(run=_events, log_access=NONE)
    envelope = sub.add_parser(
        "envelope",
        help="JSON Schema of a log record: the envelope, its payload one of the event types by `type`",
    )
    envelope.set_defaults(run=_envelope, log_access=NONE)
    asyncapi = sub.add_parser(
        "asyncapi",
        help="AsyncAPI 3.0 document of the log's Kafka topic (messages, key, CloudEvents headers), YAML",
    )
    asyncapi.set_defaults(run=_asyncapi, log_access=NONE)
    export = sub.add_parser(
        "export",
        help=f"write {contract.JSON_SCHEMA_FILE} and {contract.ASYNCAPI_FILE} into DIR",
        description=f"Write {contract.JSON_SCHEMA_FILE} (schema envelope) and {contract.ASYNCAPI_FILE} "
        "(schema asyncapi) into DIR, which is made if its parent exists. The project keeps them in "
        f"docs/schema: `{contract.REGENERATE}`.",
    )
    export.add_argument("directory", metavar="DIR", type=Path)
    export.add_argument(
        "--check", action="store_true",
        help="write nothing; exit 1 naming the files that differ from what the code generates",
    )
    export.set_defaults(run=_export, log_access=NONE)


async def _events(args, settings) -> int:
    print(json.dumps(json_schema(), indent=2))
    return 0


async def _envelope(args, settings) -> int:
    sys.stdout.write(contract.render()[contract.JSON_SCHEMA_FILE])
    return 0


async def _asyncapi(args, settings) -> int:
    sys.stdout.write(contract.render_asyncapi())
    return 0


async def _export(args, settings) -> int:
    directory: Path = args.directory
    if args.check:
        stale = contract.stale(directory)
        if stale:
            print(
                f"{', '.join(str(directory / name) for name in stale)}: not what the code generates; "
                f"run `eventbatch schema export {directory}`",
                file=sys.stderr,
            )
            return 1
        print(f"{directory}: {contract.JSON_SCHEMA_FILE} and {contract.ASYNCAPI_FILE} are up to date")
        return 0
    for path in contract.write(directory):
        print(f"wrote {path}")
    return 0
