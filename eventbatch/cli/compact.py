"""``eventbatch compact``: remove the log below what every component has snapshotted.

Where it sits: the retention command of an installation that runs ``serve``
with snapshots (``EVENTBATCH_SNAPSHOTS``). It brings the read models up to the
tail and snapshots them, takes the lowest snapshot position of every component
that reads the log (handlers, timers, the simulated kubelet, the scheduling
trigger, the read models): the horizon (``eventbatch.snapshots``). The log
below it is removed with ``EventLog.truncate``. Finished jobs keep their last
status (``job_history``) and their whole timeline (``audit_view``, whose
records below the horizon are copied into the store first) in the
read-model store. The Kubernetes adapter keeps no snapshot (its components
rebuild from position 0), so with ``--cluster kube`` nothing is removed.
A snapshot this eventbatch would not load (saved by code whose state had
another shape, ``eventbatch.snapshots.unfit``) makes it refuse in one line
(``UnusableSnapshot``): its component needs the log from the start until
``serve`` snapshots it again.
"""

from __future__ import annotations

import json

from eventbatch.app import build_pipeline, default_handlers, scheduling_relevance
from eventbatch.cli import CliError
from eventbatch.cli.views import add_views_flag, current_store
from eventbatch.clock import SystemClock
from eventbatch.log.factory import open_log
from eventbatch.snapshots import SnapshotStore, retention_needs


def register(commands) -> None:
    compact = commands.add_parser(
        "compact", help="remove the log below every component's snapshot (serve with EVENTBATCH_SNAPSHOTS)"
    )
    compact.add_argument("--snapshots", help="the snapshot store serve keeps (default: env EVENTBATCH_SNAPSHOTS)")
    compact.add_argument("--cluster", choices=["sim", "kube", "none"], help="what serve runs (env EVENTBATCH_CLUSTER)")
    compact.add_argument("--dry-run", action="store_true", help="say what would be removed; remove nothing")
    compact.add_argument("-o", "--output", choices=["text", "json"], default="text")
    add_views_flag(compact)
    compact.set_defaults(run=_compact)


def components(settings, cluster: str, log) -> dict[str, bool]:
    """Every component serve runs on this log, and whether it keeps a snapshot."""
    if cluster == "kube":
        raise CliError(
            "the Kubernetes adapter keeps no snapshot (it rebuilds from position 0): nothing can be compacted"
        )
    pipeline = build_pipeline(
        log=log, clock=SystemClock(), handlers=default_handlers(settings), settings=settings,
        is_relevant=scheduling_relevance(), cluster=cluster,
    )
    return pipeline.snapshot_names()


async def _compact(args, settings) -> int:
    path = args.snapshots or settings.snapshots
    if not path:
        raise CliError("compact needs the snapshots serve keeps: set EVENTBATCH_SNAPSHOTS or pass --snapshots")
    cluster = args.cluster or settings.cluster
    async with current_store(settings, args.views) as store, open_log(settings.log_url) as log, \
            SnapshotStore(path) as snapshots:
        names = components(settings, cluster, log)
        views = await store.snapshot()
        views_at = views[0] if views is not None else None
        needs = await retention_needs(snapshots=snapshots, handlers=list(names), views_position=views_at)
        horizon = min(needs.values())
        held_by = sorted(name for name, position in needs.items() if position == horizon)
        start, end = await log.start_position(), await log.end_position()
        cut = max(start, min(horizon, end - 1))
        removed = 0
        if cut > start and not args.dry_run:
            await store.keep_records(log, horizon)  # the timelines' records, before they leave the log
            try:
                cut = await log.truncate(horizon)
            except RuntimeError as exc:
                raise CliError(str(exc)) from None
        if cut > start:
            removed = cut - start
    if args.output == "json":
        print(json.dumps({
            "start": start, "end": end, "horizon": horizon, "removed": removed, "dry_run": args.dry_run,
            "held_by": held_by, "needs": needs,
        }))
        return 0
    if removed == 0:
        print(f"nothing to remove: the log starts at #{start} and {', '.join(held_by)} still need it from #{horizon}")
        return 0
    verb = "would remove" if args.dry_run else "removed"
    starts = "would start" if args.dry_run else "now starts"
    print(f"{verb} #{start}..#{cut - 1} ({removed:,} records); the log {starts} at #{cut} of {end:,}")
    print(f"held at #{horizon} by: {', '.join(held_by)}")
    return 0
