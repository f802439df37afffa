"""``eventbatch demo``: the pipeline end to end on the embedded defaults.

Where it sits: the first thing a new user runs. It appends a small cluster
(nodes, queues) and two Volcano jobs to a log of its own, then steps the real
handlers (job controller, scheduler), timer service and scheduling trigger
on a virtual clock until nothing moves, and prints the log and a summary:
which pods were bound where, each podgroup's phase, and why a gang could not
be placed. Every line it prints is read back from the log.

The log is never the default one that ``serve`` and ``job submit`` use:
without ``--log`` each run takes a new file, ``var/eventbatch/demo.db``,
then ``demo-2.db``, ... (``eventbatch.cli.logfiles``); a log given with
``--log`` must be empty, else the demo is refused. No log is deleted or
rewritten.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import msgspec
import yaml

from eventbatch.app import build_pipeline, default_handlers, scheduling_relevance
from eventbatch.cli import CliError
from eventbatch.cli.events import format_line
from eventbatch.cli.intents import intent_for
from eventbatch.cli.logfiles import fresh_log, require_empty
from eventbatch.cli.output import table
from eventbatch.clock import VirtualClock
from eventbatch.follow import read_to_tail
from eventbatch.log.factory import open_log
from eventbatch.log.sole_writer import SoleWriterLog
from eventbatch.sim.report import build_report
from schemas.envelope import Envelope
from schemas.events import NodeAdded, PodBound, PodRequested
from schemas.events.base import Event
from schemas.loaders import ManifestError, load_file
from schemas.resources import Manifest, Node

HORIZON_MS = 3_600_000  # the demo stops after one virtual hour
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "demo"
DEMO_DIR = Path("var/eventbatch")  # demo.db, demo-2.db, ...: beside the default log, never it


def register(commands) -> None:
    demo = commands.add_parser(
        "demo", help="run the whole pipeline on an example cluster and two jobs, print the log"
    )
    demo.add_argument("--examples", default=str(EXAMPLES), help="folder with cluster.yaml, queues.yaml, *-job.yaml")
    demo.set_defaults(run=_demo)


def load_nodes(path: Path) -> list[Node]:
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        return [msgspec.convert(d, Node) for d in docs]
    except (yaml.YAMLError, msgspec.ValidationError) as exc:
        raise CliError(f"{path}: {exc}") from None


def load_examples(folder: Path) -> tuple[list[Node], list[Manifest], list[Manifest]]:
    """The nodes, queues and jobs of an examples folder (read before the pipeline starts)."""
    if not (folder / "cluster.yaml").exists():
        raise CliError(f"{folder}: no cluster.yaml (pass --examples FOLDER)")
    try:
        queues = load_file(folder / "queues.yaml")
        jobs = [m for p in sorted(folder.glob("*-job.yaml")) for m in load_file(p)]
    except ManifestError as exc:
        raise CliError(str(exc)) from None
    return load_nodes(folder / "cluster.yaml"), queues, jobs


async def _demo(args, settings) -> int:
    nodes, queues, jobs = load_examples(Path(args.examples))
    url = settings.log_url if args.log_url_given else fresh_log(DEMO_DIR, "demo")

    clock = VirtualClock()
    async with SoleWriterLog(open_log(url), command="demo") as log:  # the demo is the log's only writer
        await require_empty(log, "demo")
        pipeline = build_pipeline(
            log=log,
            clock=clock,
            handlers=default_handlers(settings),
            settings=settings,
            is_relevant=scheduling_relevance(),
            cluster="sim",
        )
        start = await log.end_position()
        observed: list[Event] = [NodeAdded(node=n.metadata.name, manifest=n) for n in nodes]
        await log.append([Envelope.wrap(e, recorded_at=clock.now()) for e in observed + [intent_for(q) for q in queues]])
        await pipeline.settle()
        clock.advance_to(1_000)
        await log.append([Envelope.wrap(intent_for(j), recorded_at=clock.now()) for j in jobs])
        await pipeline.settle()
        while (deadline := pipeline.next_deadline()) is not None and deadline <= HORIZON_MS:
            clock.advance_to(deadline)
            await pipeline.settle()

        history: list[Envelope] = []
        await read_to_tail(log, start, history.append)
    _report(history, url)
    return 0


def _report(history: list[Envelope], url: str) -> None:
    print(f"== the log ({len(history)} events, {url}) ==")
    for envelope in history:
        print(format_line(envelope))

    binds = [e.payload for e in history if isinstance(e.payload, PodBound)]
    print("\n== pods bound ==")
    table(["POD", "NODE", "RULE"], [(b.pod, b.node, b.rule) for b in binds])
    per_node = Counter(b.node for b in binds)
    print("\n== pods per node ==")
    table(["NODE", "PODS"], sorted(per_node.items()))

    requested = {e.payload.pod for e in history if isinstance(e.payload, PodRequested)}
    report = build_report(history, end=history[-1].recorded_at if history else 0)
    print("\n== podgroups ==")
    table(
        ["PODGROUP", "PHASE", "WHY NOT SCHEDULED"],
        [(pg, phase, report.unschedulable.get(pg, "")) for pg, phase in report.podgroups.items()],
    )
    print(f"\n{len(requested)} pod(s) requested, {len(binds)} bound.")
    print("Replay it: eventbatch --log", url, "events tail")
