"""``eventbatch replay``: rebuild the read models, rewind them, or verify the log.

Where it sits: the read side's maintenance command (``eventbatch.replay`` and
``eventbatch.verify`` do the work).

- no option: every read model rebuilt from position 0 into a fresh database;
- ``--to POSITION`` / ``--at TIME``: queue, job and node status as they were
  then, folded in memory from the nearest fold state the read-model store
  keeps at or below that moment (position 0 without one) and the log after
  it; the store is read, never written, and not created;
- ``--verify``: every handler, the scheduler included, re-run over the log,
  and the effects of the timers and the simulated kubelet reproduced
  (``eventbatch.verify_effects``); each divergence, duplicated or lost effect
  is listed and the exit status is 1 if there is any, or if the log is empty. Each
  ``HandlerFailed``, each quarantined record and the count of records of
  unknown event types are listed too, and also make the exit status 1
  unless ``--allow-failures`` accepts them.

On a terminal a progress bar with the events/s figure runs on stderr.
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import AsyncExitStack

from eventbatch.cli import CliError
from eventbatch.cli.output import table
from eventbatch.cli.views import add_views_flag, queue_status, views_path
from eventbatch.log.factory import open_log
from eventbatch.log.port import LogTruncated
from eventbatch.readmodels import ReadModelStore
from eventbatch.replay import Travel, parse_time, rebuild, state_at
from eventbatch.snapshots import SnapshotStore
from eventbatch.verify import describe_quarantined, verify


def register(commands) -> None:
    replay = commands.add_parser(
        "replay", help="rebuild the read models from the log, show a past moment, or verify every decision"
    )
    when = replay.add_mutually_exclusive_group()
    when.add_argument("--to", type=int, metavar="POSITION", help="show the status after the event at POSITION")
    when.add_argument("--at", metavar="TIME", help="show the status at TIME (RFC 3339, ms, or a duration like 10m)")
    when.add_argument("--verify", action="store_true", help="re-run every handler and reproduce every component's effects; exit 1 on a divergence, "
        "a duplicated or lost effect, or an empty log")
    replay.add_argument("--scheduler-conf", help="Volcano scheduler conf the log was made with (for --verify)")
    replay.add_argument("--scenario", help="take the scheduler conf from this simulation scenario (for --verify)")
    replay.add_argument(
        "--snapshots", help="handler snapshot store: --verify checks the tail after each handler's snapshot"
    )
    replay.add_argument(
        "--allow-failures", action="store_true",
        help="--verify: list HandlerFailed, quarantined and unknown-type records but exit 0 for them",
    )
    replay.add_argument("-o", "--output", choices=["text", "json"], default="text")
    add_views_flag(replay)
    replay.set_defaults(run=_replay)


class Progress:
    """``[#####.....] 45%  450,000/1,000,000 events  98,000 events/s`` on a terminal."""

    def __init__(self, total: int, label: str) -> None:
        self.total = max(total, 1)
        self.label = label
        self.on = sys.stderr.isatty()
        self.started = time.perf_counter()
        self.last_draw = 0.0

    def __call__(self, done: int, total: int | None = None) -> None:
        if not self.on:
            return
        now = time.perf_counter()
        if now - self.last_draw < 0.1 and done < self.total:
            return
        self.last_draw = now
        ratio = min(done / self.total, 1.0)
        rate = done / max(now - self.started, 1e-9)
        bar = "#" * int(ratio * 30)
        sys.stderr.write(f"\r{self.label} [{bar:<30}] {ratio:4.0%}  {done:,}/{self.total:,} events  {rate:,.0f} events/s")
        sys.stderr.flush()

    def close(self) -> None:
        if self.on:
            sys.stderr.write("\n")


async def _replay(args, settings) -> int:
    try:
        return await _replay_or_verify(args, settings)
    except LogTruncated as exc:
        if args.to is not None or args.at is not None:
            raise CliError(
                f"{exc}: the log was compacted, and the read models keep no fold state between the log's start "
                "and that moment to start from; a later moment can be shown, an earlier one needs the archived "
                "segment"
            ) from None
        raise CliError(
            f"{exc}: the log was compacted, so it cannot be folded from position 0; the read models keep "
            "the history (job list/view, audit), and --verify --snapshots F checks what the log still holds"
        ) from None


async def _replay_or_verify(args, settings) -> int:
    if args.verify:
        return await _verify(args, settings)
    async with open_log(settings.log_url) as log:
        end = await log.end_position()
        if args.to is None and args.at is None:
            return await _rebuild(args, settings, log, end)
        try:
            at = parse_time(args.at) if args.at is not None else None
        except ValueError as exc:
            raise CliError(str(exc)) from None
        if args.to is not None and args.to < 0:
            raise CliError("--to: a position is 0 or more")
        bar = Progress(end if args.to is None else min(args.to + 1, end), "replay")
        travel = Travel()
        async with AsyncExitStack() as stack:
            path = views_path(settings, args.views)
            store = await stack.enter_async_context(ReadModelStore(path)) if path.is_file() else None
            views = await state_at(log, to=args.to, at=at, store=store, on_progress=bar, travel=travel)
        bar.close()
    _show_state(views, args.output, travel)
    return 0


async def _rebuild(args, settings, log, end: int) -> int:
    path = views_path(settings, args.views)
    bar = Progress(end, "rebuild")
    started = time.perf_counter()
    projector = await rebuild(log, path, on_progress=bar)
    bar.close()
    seconds = time.perf_counter() - started
    rate = end / seconds if seconds > 0 else 0.0
    if args.output == "json":
        print(json.dumps({"events": end, "views": str(path), "seconds": round(seconds, 3), "events_per_s": round(rate)}))
    else:
        print(f"rebuilt every read model from {end:,} events into {path} in {seconds:.2f}s ({rate:,.0f} events/s)")
    del projector
    return 0


def _show_state(views, output: str, travel: Travel) -> None:
    rows = views.snapshot_rows()
    if output == "json":
        print(json.dumps({
            "position": rows.position,
            "from_snapshot": travel.snapshot,
            "records_read": travel.read,
            "queues": {r.name: queue_status(r) for r in rows.queues},
            "jobs": {r.key: json.loads(r.status) for r in rows.jobs},
            "nodes": {r.name: {"allocatable": json.loads(r.allocatable), "idle": json.loads(r.idle),
                               "used": json.loads(r.used), "pods": r.pods} for r in rows.nodes},
        }, indent=2))
        return
    start = f"the read models' snapshot at #{travel.snapshot:,}" if travel.snapshot >= 0 else "position 0"
    print(f"== as of #{rows.position} (from {start}, {travel.read:,} records read) ==\n")
    print("== queues ==")
    table(["NAME", "STATE", "PENDING", "INQUEUE", "RUNNING", "COMPLETED", "UNKNOWN", "ALLOCATED"],
          [[r.name, r.state, r.pending, r.inqueue, r.running, r.completed, r.unknown, _q(r.allocated)]
           for r in rows.queues])
    print("\n== jobs ==")
    table(["JOB", "QUEUE", "PHASE", "PENDING", "RUNNING", "SUCCEEDED", "FAILED", "RETRIES"],
          [[r.key, r.queue, r.phase, r.pending, r.running, r.succeeded, r.failed, r.retry_count] for r in rows.jobs])
    print("\n== nodes ==")
    table(["NODE", "PODS", "USED", "IDLE"], [[r.name, r.pods, _q(r.used), _q(r.idle)] for r in rows.nodes])


def _q(text: str) -> str:
    return ",".join(f"{k}={v}" for k, v in json.loads(text).items()) or "-"


def _handlers(args, settings):
    from handlers.job import JobHandler
    from handlers.queue import QueueHandler
    from handlers.scheduler import SchedulerHandler, load_conf, load_conf_file
    from schemas.scenario import ScenarioError, load_scenario

    conf = None
    try:
        if args.scenario:
            text = load_scenario(args.scenario).scheduler_conf
            conf = load_conf(text) if text else None
        elif args.scheduler_conf or settings.scheduler_conf:
            conf = load_conf_file(args.scheduler_conf or settings.scheduler_conf)
    except (ScenarioError, OSError, ValueError) as exc:
        raise CliError(str(exc)) from None
    from eventbatch.app import cluster_handlers

    scheduler = SchedulerHandler(conf) if conf is not None else SchedulerHandler()
    return cluster_handlers(settings.cluster, [QueueHandler(), JobHandler(), scheduler])


async def _verify(args, settings) -> int:
    handlers = _handlers(args, settings)
    async with open_log(settings.log_url) as log, AsyncExitStack() as stack:
        snapshots = None
        if args.snapshots:
            snapshots = await stack.enter_async_context(SnapshotStore(args.snapshots))
        bar = Progress(await log.end_position(), "verify")
        report = await verify(
            log, handlers, on_progress=bar, snapshots=snapshots, sim_startup_ms=settings.sim_startup_ms
        )
        bar.close()
    failed = not report.ok or (not report.clean and not args.allow_failures)
    if args.output == "json":
        print(json.dumps({
            "events": report.end,
            "ok": report.ok,
            "clean": report.clean,
            "handlers": {n: {"triggers": c.triggers, "decisions_matched": c.decisions_matched}
                         for n, c in report.checks.items()},
            "not_verified": report.not_verified,
            "divergences": [d.__dict__ for d in report.divergences],
            "effects_verified": report.effects_verified,
            "effects": {n: {"answers": c.answers, "reproduced": c.reproduced} for n, c in report.effect_checks.items()},
            "effect_divergences": [d.__dict__ for d in report.effects],
            "failures": [f.__dict__ for f in report.failures],
            "quarantined": [{"position": q.position, "error": q.error} for q in report.quarantined],
            "unknown_types": report.unknown_types,
        }, indent=2))
        return 1 if failed else 0
    for check in report.checks.values():
        print(f"{check.name}: {check.triggers:,} triggers, {check.decisions_matched:,} recorded decisions reproduced")
    for effect in report.effect_checks.values():
        print(f"{effect.name}: {effect.answers:,} effects, {effect.reproduced:,} checked")
    if not report.effects_verified and not report.empty:
        print("effects of timers, the simulated kubelet, the trigger and the actuator: not verified "
              "(the check reads the log from position 0; this one is read from a snapshot or compacted)")
    if report.not_verified:
        skipped = ", ".join(f"{n} ({c:,})" for n, c in sorted(report.not_verified.items()))
        print(f"not verified (records of components this build does not check): {skipped}")
    if report.empty:
        print("the log holds no events: nothing to verify")
    elif report.ok:
        also = "" if report.clean else "; the log also holds what no handler answered or read (below)"
        print(f"verified {report.end:,} events: every recorded decision and effect is reproduced, "
              f"none is missing, none is doubled{also}")
    else:
        if report.divergences:
            print(f"\n{len(report.divergences)} divergence(s):")
            for divergence in report.divergences:
                print(f"  {divergence.describe()}")
        if report.effects:
            print(f"\n{len(report.effects)} effect(s) that do not check out:")
            for mismatch in report.effects:
                print(f"  {mismatch.describe()}")
    _print_failures(report, allowed=args.allow_failures)
    return 1 if failed else 0


def _print_failures(report, *, allowed: bool) -> None:
    """What the log holds that no decision check passes: dead letters, quarantined and unknown records."""
    if report.clean:
        return
    if report.failures:
        print(f"\n{len(report.failures)} handler failure(s) (HandlerFailed: the trigger was not answered):")
        for failure in report.failures:
            print(f"  {failure.describe()}")
    if report.quarantined:
        print(f"\n{len(report.quarantined)} quarantined record(s) (undecodable: no handler saw them):")
        for record in report.quarantined:
            print(f"  {describe_quarantined(record)}")
    if report.unknown_types:
        total = sum(report.unknown_types.values())
        kinds = ", ".join(f"{kind} ({count:,})" for kind, count in report.unknown_types.items())
        print(f"\n{total:,} record(s) of event types this build does not know (skipped, not verified): {kinds}")
    found = ", ".join(
        f"{count:,} {what}"
        for count, what in (
            (len(report.failures), "handler failure(s)"),
            (len(report.quarantined), "quarantined record(s)"),
            (sum(report.unknown_types.values()), "record(s) of unknown types"),
        )
        if count
    )
    if allowed:
        print(f"\nthe log holds {found}: accepted (--allow-failures)")
    else:
        print(f"\nthe log holds {found}: exit status 1 (--allow-failures accepts them)")
