"""``eventbatch trace import``: a production trace as a scenario; ``trace experiment``: the
fragmentation experiment on it.

Where it sits: in front of ``eventbatch simulate``. ``import`` writes the scenario
(JSON) and, beside it, ``<scenario>.trace.json`` with what the trace itself
recorded; ``simulate`` prints the two side by side when it finds that file.
``experiment`` runs the workload-inflation experiment of the openb paper in
memory (``eventbatch.trace_experiment``) with the scheduler's GPU placement
policies and prints, or writes as JSON and SVG, what each policy leaves unallocated.
"""

from __future__ import annotations

import json
from pathlib import Path

from eventbatch.cli import CliError
from eventbatch.trace import import_openb
from schemas.limits import INT32, IntArg

DEFAULT_TRACE = Path(__file__).resolve().parents[3] / "shared" / "traces" / "alibaba-openb-2023"


def register(commands) -> None:
    trace = commands.add_parser(
        "trace", help="a production trace: import it as a scenario, or run the GPU fragmentation experiment on it"
    )
    sub = trace.add_subparsers(dest="trace_command", required=True, metavar="ACTION")
    imp = sub.add_parser("import", help="import the Alibaba openb GPU trace (CSV folder) as a scenario")
    imp.add_argument("folder", nargs="?", default=str(DEFAULT_TRACE), help="folder with the openb CSVs")
    imp.add_argument("-o", "--output", default="var/eventbatch/openb.json", help="scenario file to write (.json)")
    imp.add_argument("--pods", default="openb_pod_list_default.csv", help="pod list CSV in the folder")
    imp.add_argument("--limit", type=IntArg(1, INT32[1]), help="only the first N pods")
    imp.set_defaults(run=_import)
    _register_experiment(sub)


def _register_experiment(sub) -> None:
    import argparse

    from eventbatch.cli.logcheck import NONE

    exp = sub.add_parser(
        "experiment",
        help="the openb paper's workload-inflation experiment: unallocated GPUs and fragmentation per placement policy",
        description=(
            "Tasks drawn from the pod list arrive one by one, never leaving, until their GPU requests reach "
            "RATIO x the cluster's GPU capacity; each policy places them over per-device GPU state on the node list's "
            "GPU nodes (nodes without GPU are left out, as in the paper's simulator). Reports per "
            "policy the unallocated GPU share and the fragmentation rate every STEP % of arrival (mean and "
            "spread over the seeds) and at 100 % arrival. In memory: no log is opened or written, unless --log "
            "asks to record one run (one policy, one seed) through the real pipeline as well."
        ),
    )
    exp.add_argument("folder", nargs="?", default=str(DEFAULT_TRACE), help="folder with the openb CSVs")
    exp.add_argument("--pods", default="openb_pod_list_default.csv",
                     help="pod list CSV: a path, or a name in the folder (e.g. openb_pod_list_multigpu50.csv)")
    exp.add_argument("--nodes", default="openb_node_list_all_node.csv", help="node list CSV: a path, or a name in the folder")
    exp.add_argument("--policies", default="all",
                     help="comma-separated placement policies (fgd, bestfit, dotproduct, gpupacking, gpuclustering, random) or all")
    exp.add_argument("--ratio", type=_ratio, default=1.3, help="arrived GPU requests to stop at, x GPU capacity (default 1.3)")
    exp.add_argument("--seeds", type=IntArg(1, 100), default=5, help="how many seeds (default 5)")
    exp.add_argument("--first-seed", type=IntArg(0, INT32[1]), default=42, help="the first seed; the others follow it (default 42)")
    exp.add_argument("--step", type=_step, default=5.0, help="record every STEP %% of arrival (default 5)")
    exp.add_argument("--ties", choices=["shuffled", "lowest", "random"], default="shuffled",
                     help="equal scores: the first node in a shuffle of the node list drawn from the seed, as the paper's "
                     "simulator names its nodes (default); the first node in the list; or one drawn per task, as upstream "
                     "kube-scheduler does")
    exp.add_argument("--json", action="store_true", help="print the whole result as JSON")
    exp.add_argument("--plot", metavar="FILE.svg", help="write an SVG plot: one curve per policy, unallocated GPU and fragmentation rate")
    exp.add_argument(
        "--log", dest="log_url", metavar="URL", default=argparse.SUPPRESS,
        help="also record the run on this new, empty log (as the global --log; EVENTBATCH_LOG does not turn it on): "
        "one policy and one seed (--policies P --seeds 1) through the real pipeline as simulate runs a scenario, "
        "on virtual time; prints the in-memory figure and the one read back from the log",
    )
    exp.set_defaults(run=_experiment, log_access=NONE)


def _ratio(text: str) -> float:
    return _float_in(text, 0.01, 10.0)


def _step(text: str) -> float:
    return _float_in(text, 0.1, 100.0)


def _float_in(text: str, low: float, high: float) -> float:
    import argparse
    import math

    try:
        value = float(text[:40])
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a number") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise argparse.ArgumentTypeError(f"{text[:40]} is out of range {low:g}..{high:g}")
    return value


def sidecar(scenario: str | Path) -> Path:
    path = Path(scenario)
    return path.with_name(path.stem + ".trace.json")


async def _import(args, settings) -> int:
    return import_trace(args)


def import_trace(args) -> int:
    """``trace import``: nothing else runs meanwhile, so its files are read and written directly."""
    folder = Path(args.folder)
    if not (folder / "openb_node_list_all_node.csv").exists():
        raise CliError(f"{folder}: no openb_node_list_all_node.csv (give the trace folder)")
    if not (folder / args.pods).exists():
        raise CliError(f"{folder / args.pods}: not found")
    scenario, recorded = import_openb(folder, pods_file=args.pods, limit=args.limit)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(scenario))
    sidecar(out).write_text(json.dumps(recorded, indent=2))
    print(
        f"{out}: {len(scenario['nodes']):,} nodes, {len(scenario['workload']):,} jobs, "
        f"{len(scenario['queues'])} queues; recorded trace figures in {sidecar(out)}"
    )
    return 0


def _csv(folder: Path, name: str) -> Path:
    given = Path(name)
    path = given if given.exists() or given.is_absolute() or len(given.parts) > 1 else folder / given
    if not path.is_file():
        raise CliError(f"{path}: not found")
    return path


async def _experiment(args, settings) -> int:
    if getattr(args, "log_url", None):
        return await record_experiment(args, settings)
    return run_experiment(args)


def run_experiment(args) -> int:
    """``trace experiment``: everything is checked before the run; the plot is written last."""
    from eventbatch import trace_experiment as te

    folder = Path(args.folder)
    nodes_path, pods_path = _csv(folder, args.nodes), _csv(folder, args.pods)
    plot = Path(args.plot) if args.plot else None
    if plot is not None:
        if plot.suffix.lower() != ".svg":
            raise CliError(f"{plot}: the plot is written as SVG (give a .svg file)")
        if not plot.parent.is_dir():
            raise CliError(f"{plot.parent}: no such directory")
        if plot.is_dir():
            raise CliError(f"{plot}: is a directory")
    engine = te.scheduler_engine()
    policies = _policies(args, list(engine.policies))
    nodes, tasks = _lists(nodes_path, pods_path)
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    result = te.experiment(nodes, tasks, engine, policies=policies, seeds=seeds, ratio=args.ratio, step=args.step, ties=args.ties)
    summary = result.summary()
    summary["pods_file"], summary["nodes_file"] = str(pods_path), str(nodes_path)
    if plot is not None:
        title = f"{pods_path.name}: {summary['gpus']:,} GPUs, {len(seeds)} seed(s), arrivals to {args.ratio:g}x capacity"
        plot.write_text(te.svg(summary, title))
    if args.json:
        import sys

        from eventbatch.cli.output import emit

        emit(summary, "json", sys.stdout)
    else:
        _print_experiment(summary, plot)
    return 0


def _policies(args, known: list[str]) -> list[str]:
    policies = known if args.policies == "all" else [p.strip() for p in args.policies.split(",") if p.strip()]
    unknown = [p for p in policies if p not in known]
    if unknown or not policies:
        raise CliError(f"unknown policy {', '.join(unknown) or repr(args.policies)} (one of {', '.join(known)}, or all)")
    return list(dict.fromkeys(policies))


def _lists(nodes_path: Path, pods_path: Path):
    from eventbatch import trace_experiment as te

    try:
        return te.load_nodes(nodes_path), te.load_tasks(pods_path)
    except te.TraceError as exc:
        raise CliError(str(exc)) from None


def _scenario(raw: dict, name: str):
    """The recorded run's scenario, read back as ``simulate`` reads a scenario file (the same checks)."""
    import tempfile

    from schemas.scenario import load_scenario

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_text(json.dumps(raw))
        return load_scenario(path)


async def record_experiment(args, settings) -> int:
    """``trace experiment --log URL``: one policy, one seed, in memory and through the real
    pipeline onto the log (as ``simulate`` runs a scenario, on virtual time); both figures
    at 100 % arrival are printed. Every refusal comes before the log is created."""
    from eventbatch import trace_experiment as te
    from eventbatch.cli.logfiles import require_empty
    from eventbatch.clock import VirtualClock
    from eventbatch.follow import read_to_tail
    from eventbatch.log.factory import is_default_path, open_log, sqlite_path
    from eventbatch.log.sole_writer import SoleWriterLog
    from eventbatch.settings import redact_url
    from eventbatch.sqlitefile import LOG, require
    from projections import cluster
    from schemas.envelope import Envelope

    folder = Path(args.folder)
    nodes_path, pods_path = _csv(folder, args.nodes), _csv(folder, args.pods)
    engine = te.scheduler_engine()
    policies = _policies(args, list(engine.policies))
    if len(policies) != 1 or args.seeds != 1:
        raise CliError(
            f"--log records one run: give one policy and one seed (--policies fgd --seeds 1), not "
            f"{len(policies)} policies and {args.seeds} seed(s)"
        )
    if args.plot or args.json:
        raise CliError("--log prints the two figures as text: leave out --plot and --json (run without --log for them)")
    nodes, tasks = _lists(nodes_path, pods_path)
    url = args.log_url
    open_log(url)  # the URL checked before anything is created
    if url.startswith("sqlite:"):
        path = sqlite_path(url)
        require(path, LOG, must_exist=False, create_dirs=is_default_path(path))
    policy, seed = policies[0], args.first_seed
    result = te.experiment(nodes, tasks, engine, policies=[policy], seeds=[seed], ratio=args.ratio, step=args.step, ties=args.ties)
    curve = result.curves[policy][0]
    at = te._index_of(curve.arrival_pct, 100.0)
    scenario_dict, order, full = te.recorded_run(nodes, tasks, policy, seed=seed, ratio=args.ratio, ties=args.ties)
    from eventbatch.sim.driver import run_scenario

    scenario = _scenario(scenario_dict, f"{pods_path.stem}-{policy}-{seed}.json")
    conf_file = Path(f"{sqlite_path(url)}.scheduler.yaml") if url.startswith("sqlite:") else None
    async with SoleWriterLog(open_log(url)) as log:
        await require_empty(log, "trace experiment --log")
        if conf_file is not None:  # replay --verify needs the conf the run was made with
            _write(conf_file, scenario.scheduler_conf or "")
        run = await run_scenario(scenario, log=log, settings=settings, clock=VirtualClock())
        events: list[Envelope] = []
        await read_to_tail(log, run.start, events.append)
    cutoff = (full + 2) * te.SPACING_MS  # the next arrival's moment: the state the 100 % arrival left
    from schemas.events import JobSubmitRequested, PodBound, SchedulingRequested

    state = cluster.initial()
    at_full = None
    bound = len({e.payload.pod for e in events if isinstance(e.payload, PodBound)})
    batched = arrived = 0  # sessions that saw more than one arrival since the one before
    for envelope in events:
        if isinstance(envelope.payload, JobSubmitRequested):
            arrived += 1
        elif isinstance(envelope.payload, SchedulingRequested):
            batched += arrived > 1
            arrived = 0
    for envelope in events:
        if at_full is None and envelope.recorded_at >= cutoff:
            at_full = te.unallocated_pct(state)
        state = cluster.fold(state, envelope)
    at_end = te.unallocated_pct(state)
    if at_full is None:
        at_full = at_end
    memory_full = curve.unallocated_pct[at] if at is not None else None
    memory_end = curve.unallocated_pct[-1]
    print(
        f"{pods_path}: policy {policy}, seed {seed}: {len(order):,} arrivals to {args.ratio:g}x the GPU capacity on "
        f"{result.nodes:,} nodes, {result.gpus:,} GPUs\nlog: {redact_url(url)}: {run.end - run.start:,} events, "
        f"{run.sessions:,} scheduling sessions, {at_end[1]:,} pods holding GPU devices at the end"
    )
    rows = [
        ["at 100 % arrival", "-" if memory_full is None else f"{memory_full:.2f}", f"{at_full[0]:.2f}"],
        [f"at {args.ratio * 100:g} % (the end)", f"{memory_end:.2f}", f"{at_end[0]:.2f}"],
    ]
    placed = [["tasks placed at the end", f"{curve.placed:,} of {len(order):,}", f"{bound:,} of {len(order):,}"]]
    print("\n== unallocated GPU % ==")
    from eventbatch.cli.output import table

    table(["arrived", "in memory", "read back from the log"], rows)
    print()
    table(["", "in memory", "on the log"], placed)
    print(
        "\nThe two may differ a little: a session places every pod pending when it opens, and a session may "
        f"see several arrivals at once (one every {te.SPACING_MS} ms of virtual time; here {batched:,} of "
        f"{run.sessions:,} sessions saw more than one new arrival), where the in-memory run places one at a time; "
        "and the fgd plugin learns its task types from the pods submitted so far, the in-memory run from the whole list."
    )
    if conf_file is not None:
        print(f"\nscheduler conf of the run: {conf_file} (eventbatch --log {redact_url(url)} replay --verify --scheduler-conf {conf_file})")
    else:
        print(f"\nscheduler conf of the run (replay --verify --scheduler-conf FILE with this text):\n{scenario.scheduler_conf}")
    return 0


def _write(path: Path, text: str) -> None:
    path.write_text(text)


def _print_experiment(summary: dict, plot: Path | None) -> None:
    from eventbatch.cli.output import table

    names = list(summary["policies"])
    seeds = summary["seeds"]
    print(
        f"{summary['pods_file']}: {summary['nodes']:,} nodes, {summary['gpus']:,} GPUs; "
        f"{summary['pod_list_tasks']:,} tasks in the list, {min(summary['arrived_tasks']):,}..{max(summary['arrived_tasks']):,} "
        f"arriving (to {summary['ratio']:g}x GPU capacity); seeds {seeds[0]}..{seeds[-1]}"
    )
    print("\n== unallocated GPU % (mean over seeds) by arrived workload (% of GPU capacity) ==")
    first = summary["policies"][names[0]]
    rows = []
    for i, pct in enumerate(first["arrival_pct"]):
        rows.append([f"{pct:g}", *(f"{summary['policies'][n]['unallocated_pct']['mean'][i]:.2f}" for n in names)])
    table(["arrived %", *names], rows)
    print("\n== at 100 % arrival ==")
    rows = []
    for name in names:
        at = summary["policies"][name]["at_100"]
        if at is None:
            continue
        rows.append([
            name, f"{at['unallocated_pct']['mean']:.2f} ± {at['unallocated_pct']['std']:.2f}",
            f"{at['unallocated_gpus']['mean']:.0f}", f"{at['frag_rate_pct']['mean']:.2f} ± {at['frag_rate_pct']['std']:.2f}",
        ])
    table(["policy", "unallocated GPU %", "unallocated GPUs", "fragmentation rate %"], rows)
    if plot is not None:
        print(f"\nplot: {plot}")
