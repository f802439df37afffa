"""``eventbatch simulate SCENARIO.yaml``: the whole pipeline on a simulated cluster.

Where it sits: the main job. It loads the scenario (errors name the entry
and the field), runs it through the real log, handlers and projections with
the simulated kubelet on a virtual clock, and prints the report read back
from the log: a table for people, ``--json`` for machines. ``--cycles N``
stops after N scheduling sessions and prints what they decided. ``--html
REPORT.html`` also writes the report as one self-contained HTML page
(``eventbatch.sim.html_report``); a path that cannot be written is refused
before the run starts.

Each run writes a new log: without ``--log``, the first free one of
``var/eventbatch/simulations/<scenario>.db``, ``<scenario>-2.db``, ... (an
earlier run's log is never deleted or rewritten; the report names the one
used); a log given with ``--log`` must be empty, else the run is refused.

A run whose log gained a ``HandlerFailed`` (a handler raised instead of
deciding) or a quarantined record did not run as the scenario says: each is
listed on one line after the report (``failures`` in ``--json``) and the
exit status is 1.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import msgspec

from eventbatch.cli import CliError
from eventbatch.cli.logfiles import fresh_log, require_empty
from eventbatch.cli.output import table
from eventbatch.clock import VirtualClock
from eventbatch.follow import read_to_tail
from eventbatch.log.factory import open_log
from eventbatch.log.sole_writer import SoleWriterLog
from eventbatch.sim.report import Report, build_report, duration
from eventbatch.verify import Failure, describe_quarantined, quarantined_between
from schemas.envelope import Envelope
from schemas.limits import INT32, IntArg
from schemas.scenario import ScenarioError, load_scenario

SIM_DIR = Path("var/eventbatch/simulations")


def register(commands) -> None:
    sim = commands.add_parser("simulate", help="run a scenario on the simulated cluster and print the report")
    sim.add_argument("scenario", help="scenario YAML (nodes, queues, workload, until)")
    sim.add_argument("--json", action="store_true", help="print the report as JSON")
    sim.add_argument("--cycles", type=IntArg(1, INT32[1]), help="stop after N scheduling sessions and show their decisions")
    sim.add_argument("--all-pods", action="store_true", help="list every pod (default: the first 40)")
    sim.add_argument(
        "--html", metavar="REPORT.html",
        help="also write the report as one self-contained HTML file (plots inline; opens offline)",
    )
    sim.set_defaults(run=_simulate)


class Bar:
    """A one-line progress bar on a terminal; silent when output is piped."""

    def __init__(self, until: int | None) -> None:
        self.until = until
        self.on = sys.stderr.isatty()

    def __call__(self, now: int, position: int) -> None:
        if not self.on:
            return
        if self.until:
            done = min(now / self.until, 1.0)
            bar = "#" * int(done * 30)
            sys.stderr.write(f"\r[{bar:<30}] {done:4.0%}  t={duration(now)}  events={position:,}")
        else:
            sys.stderr.write(f"\rt={duration(now)}  events={position:,}")
        sys.stderr.flush()

    def close(self) -> None:
        if self.on:
            sys.stderr.write("\n")


async def _simulate(args, settings) -> int:
    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as exc:
        raise CliError(str(exc)) from None
    from eventbatch.sim.driver import run_scenario  # the handlers load only when a simulation runs
    from handlers.scheduler.conf import ConfError, load_conf

    if scenario.scheduler_conf is not None:
        try:
            load_conf(scenario.scheduler_conf)
        except ConfError as exc:
            raise CliError(f"{scenario.source}: scheduler: {exc}") from None

    html = _html_target(args.html)
    url = settings.log_url if args.log_url_given else fresh_log(SIM_DIR, Path(args.scenario).stem)
    bar = Bar(scenario.until_ms)
    async with SoleWriterLog(open_log(url)) as log:  # the simulation is the log's only writer
        await require_empty(log, "simulate")
        result = await run_scenario(
            scenario, log=log, settings=settings, clock=VirtualClock(), cycles=args.cycles, on_progress=bar
        )
        bar.close()
        events: list[Envelope] = []
        await read_to_tail(log, result.start, events.append)
        quarantined = await quarantined_between(log, result.start, result.end)
    failures = [failure for envelope in events if (failure := Failure.of(envelope)) is not None]
    report = build_report(events, end=result.now)
    meta = {
        "scenario": scenario.source,
        "log": url,
        "events": result.end - result.start,
        "virtual_time_ms": result.now,
        "sessions": result.sessions,
        "stopped": result.stopped,
    }
    recorded = _recorded(args.scenario)
    if html is not None:
        from eventbatch.sim.html_report import render

        partial = html.with_name(f".{html.name}.partial")
        partial.write_text(render(report, meta, events), encoding="utf-8")
        partial.replace(html)
    if args.json:
        payload = {**meta, **msgspec.to_builtins(_cycles_view(report) if args.cycles else report)}
        if recorded is not None:
            payload["trace_recorded"] = recorded
        payload["failures"] = [f.__dict__ for f in failures]
        payload["quarantined"] = [{"position": q.position, "error": q.error} for q in quarantined]
        print(json.dumps(payload, indent=2))
    elif args.cycles:
        _print_cycles(report, meta)
    else:
        _print_report(report, meta, all_pods=args.all_pods)
        if recorded is not None:
            _print_trace_comparison(report, recorded)
    if not failures and not quarantined:
        return 0
    if not args.json:
        lines = [f.describe() for f in failures] + [describe_quarantined(q) for q in quarantined]
        print(f"\n== failures: {len(lines)}; the simulation did not run as the scenario says ==")
        print("\n".join(lines))
    return 1


def _html_target(path: str | None) -> Path | None:
    """Where ``--html`` writes, refused before the run (one line, nothing created) when it cannot be written."""
    if path is None:
        return None
    target = Path(path)
    if target.is_dir():
        raise CliError(f"--html {path}: is a directory")
    parent = target.parent
    if not parent.is_dir():
        raise CliError(f"--html {path}: no such directory: {parent}")
    if not os.access(parent, os.W_OK | os.X_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise CliError(f"--html {path}: permission denied")
    return target


def _recorded(scenario: str) -> dict | None:
    """What the imported trace itself recorded, when ``trace import`` left it beside the scenario."""
    from eventbatch.cli.trace import sidecar

    path = sidecar(scenario)
    return json.loads(path.read_text()) if path.exists() else None


def _print_trace_comparison(report: Report, recorded: dict) -> None:
    print("\n== simulated vs recorded in the trace ==")
    rows: list[tuple[str, object, object]] = [("pods that never ran", len(report.never_ran), recorded["never_ran"])]
    peak = max((ratio for _, ratio in report.gpu_series), default=0.0)
    rows.append(("GPU allocation, mean", f"{report.utilisation.get('nvidia.com/gpu', 0.0):.2%}", f"{recorded['gpu_allocation_mean']:.2%}"))
    rows.append(("GPU allocation, peak", f"{peak:.2%}", f"{recorded['gpu_allocation_peak']:.2%}"))
    for queue, trace_wait in recorded["waits_ms"].items():
        sim_wait = report.waits.get(queue, {})
        for q in ("p50", "p90", "p99"):
            rows.append((f"wait {queue} {q}", duration(sim_wait.get(q)), duration(trace_wait.get(q))))
    table(["FIGURE", "SIMULATED", "TRACE"], rows)


def _cycles_view(report: Report) -> dict:
    return {
        "binds": [{"pod": p, "node": n, "rule": r} for p, n, r in report.binds],
        "pipelined": [{"pod": p, "node": n, "rule": r} for p, n, r in report.pipelined],
        "evictions": msgspec.to_builtins(report.evictions),
        "podgroups": report.podgroups,
        "unschedulable": report.unschedulable,
    }


def _print_cycles(report: Report, meta: dict) -> None:
    print(f"{meta['sessions']} scheduling session(s), {meta['events']} events ({meta['log']})\n")
    print("== binds ==")
    table(["POD", "NODE", "RULE"], report.binds)
    print("\n== pipelined ==")
    table(["POD", "NODE", "RULE"], report.pipelined)
    print("\n== evictions ==")
    table(["POD", "REASON", "PREEMPTOR", "RULE"], [(e.pod, e.reason, e.preemptor, e.rule) for e in report.evictions])
    print("\n== podgroups ==")
    table(["PODGROUP", "PHASE", "WHY NOT SCHEDULED"], [(pg, ph, report.unschedulable.get(pg, "")) for pg, ph in report.podgroups.items()])


def _print_report(report: Report, meta: dict, *, all_pods: bool) -> None:
    print(
        f"simulated {duration(meta['virtual_time_ms'])} of cluster time: {meta['events']:,} events, "
        f"{meta['sessions']} scheduling sessions; stopped: {meta['stopped']}\nlog: {meta['log']}\n"
    )
    print("== jobs ==")
    table(
        ["JOB", "QUEUE", "SUBMITTED", "WAIT", "PHASE", "TIMELINE"],
        [
            (j.job, j.queue, duration(j.submitted), duration(j.wait), j.phase,
             " > ".join(f"{p}@{duration(t)}" for t, p in j.phases))
            for j in report.jobs
        ],
    )
    pods = report.pods if all_pods else report.pods[:40]
    print(f"\n== pods ({len(report.pods)}{'' if all_pods or len(report.pods) <= 40 else ', first 40; --all-pods for every one'}) ==")
    table(
        ["POD", "NODE", "BOUND", "STARTED", "FINISHED", "RESULT"],
        [(p.pod, p.node or "-", duration(p.bound), duration(p.started), duration(p.finished), p.result or "-") for p in pods],
    )
    print("\n== evictions ==")
    table(
        ["AT", "POD", "REASON", "PREEMPTOR", "RULE"],
        [(duration(e.at), e.pod, e.reason, e.preemptor or "-", e.rule) for e in report.evictions],
    )
    print("\n== queues (podgroups at the end; changes over time with --json) ==")
    last: dict[str, dict] = {}
    for point in report.queue_series:
        last[point["queue"]] = point
    table(
        ["QUEUE", "PENDING", "INQUEUE", "RUNNING", "COMPLETED"],
        [(q, p["Pending"], p["Inqueue"], p["Running"], p["Completed"]) for q, p in sorted(last.items())],
    )
    print("\n== wait until Running, per queue ==")
    table(
        ["QUEUE", "JOBS", "P50", "P90", "P99", "MAX"],
        [(q, w["jobs"], duration(w["p50"]), duration(w["p90"]), duration(w["p99"]), duration(w["max"])) for q, w in report.waits.items()],
    )
    print("\n== utilisation (allocated / capacity, time-weighted) ==")
    table(["RESOURCE", "UTILISATION"], [(r, f"{v:.1%}") for r, v in report.utilisation.items()])
    print(f"\nmakespan: {duration(report.makespan)}")
    if report.never_ran:
        print(f"jobs that never ran: {len(report.never_ran)} ({', '.join(report.never_ran[:10])}{' ...' if len(report.never_ran) > 10 else ''})")
