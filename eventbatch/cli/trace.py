"""``eventbatch trace import``: a production trace as a scenario.

Where it sits: in front of ``eventbatch simulate``. It writes the scenario
(JSON) and, beside it, ``<scenario>.trace.json`` with what the trace itself
recorded; ``simulate`` prints the two side by side when it finds that file.
"""

from __future__ import annotations

import json
from pathlib import Path

from eventbatch.cli import CliError
from eventbatch.trace import import_openb
from schemas.limits import INT32, IntArg

DEFAULT_TRACE = Path(__file__).resolve().parents[3] / "shared" / "traces" / "alibaba-openb-2023"


def register(commands) -> None:
    trace = commands.add_parser("trace", help="turn a production trace into a scenario")
    sub = trace.add_subparsers(dest="trace_command", required=True, metavar="ACTION")
    imp = sub.add_parser("import", help="import the Alibaba openb GPU trace (CSV folder) as a scenario")
    imp.add_argument("folder", nargs="?", default=str(DEFAULT_TRACE), help="folder with the openb CSVs")
    imp.add_argument("-o", "--output", default="var/eventbatch/openb.json", help="scenario file to write (.json)")
    imp.add_argument("--pods", default="openb_pod_list_default.csv", help="pod list CSV in the folder")
    imp.add_argument("--limit", type=IntArg(1, INT32[1]), help="only the first N pods")
    imp.set_defaults(run=_import)


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
