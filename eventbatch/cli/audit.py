"""``eventbatch audit job NAME`` and ``eventbatch audit queue NAME``: the timeline.

Where it sits: reads AuditView (``eventbatch.readmodels``), caught up with the
log first. Each event is listed with its position and time; a decision also
shows its causation chain, and what made it: the scheduler plugin or rule,
the lifecycle policy, or the reason, e.g.

    #813  10.0s  JobPhaseChanged(Restarting, RestartJob)  [job-controller]
          PodFailed(exit 3) at #812 -> policy PodFailed exitCode 3 -> RestartJob -> JobPhaseChanged(...) at #813
"""

from __future__ import annotations

import json

from eventbatch.cli import CliError
from eventbatch.cli.events import format_time
from eventbatch.cli.views import add_views_flag, current_store, job_key
from projections.views.rows import AuditRow

CHAIN_DEPTH = 4


def register(commands) -> None:
    audit = commands.add_parser("audit", help="the timeline of a job or a queue, with every decision's cause")
    sub = audit.add_subparsers(dest="audit_command", required=True, metavar="WHAT")
    job = sub.add_parser("job", help="every event of a job, with causation chains")
    job.add_argument("name", help="job name or NAMESPACE/NAME")
    job.add_argument("-n", "--namespace", default="default")
    queue = sub.add_parser("queue", help="every event of a queue, with causation chains")
    queue.add_argument("name")
    for parser, scope in ((job, "job"), (queue, "queue")):
        parser.add_argument("-o", "--output", choices=["text", "json"], default="text")
        add_views_flag(parser)
        parser.set_defaults(run=_audit, scope=scope)


def chain(row: AuditRow, by_position: dict[int, AuditRow]) -> str:
    """``Trigger at #T -> rule -> Decision at #P``, following causes the timeline holds."""
    links = [f"{row.detail} at #{row.position}"]
    current = row
    for _ in range(CHAIN_DEPTH):
        if current.cause_position is None:
            break
        if current.rule:
            links.append(current.rule)
        cause = by_position.get(current.cause_position)
        detail = cause.detail if cause is not None else (current.cause_detail or "an event")
        links.append(f"{detail} at #{current.cause_position}")
        if cause is None:
            break
        current = cause
    return " -> ".join(reversed(links))


async def _audit(args, settings) -> int:
    name = job_key(args.name, args.namespace) if args.scope == "job" else args.name
    async with current_store(settings, args.views) as store:
        rows = await store.audit(args.scope, name)
    if not rows:
        raise CliError(f"no events for {args.scope} {name}")
    by_position = {r.position: r for r in rows}
    if args.output == "json":
        for row in rows:
            print(json.dumps({
                "position": row.position, "type": row.type, "recorded_at": row.recorded_at, "detail": row.detail,
                "causation": None if row.cause_position is None else {
                    "position": row.cause_position, "handler": row.cause_handler, "trigger": row.cause_detail},
                "rule": row.rule, "chain": chain(row, by_position) if row.cause_position is not None else "",
            }))
        return 0
    print(f"{args.scope} {name}: {len(rows)} event(s)\n")
    for row in rows:
        by = f"  [{row.cause_handler}]" if row.cause_handler else ""
        print(f"#{row.position:<7} {format_time(row.recorded_at).strip():>10}  {row.detail}{by}")
        if row.cause_position is not None:
            print(f"{'':19}{chain(row, by_position)}")
    return 0
