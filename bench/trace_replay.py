"""The Alibaba openb GPU trace through the whole pipeline, timed.

Where it sits: a benchmark of ``eventbatch simulate`` on a real production
trace (1,523 nodes, 8,152 pods): trace import, then the real log (SQLite),
handlers, scheduler and simulated kubelet on a virtual clock until every job
has finished. It prints the wall time and events/s, next to the limit
measured in the same run: appending and reading back the very same events
on a fresh SQLite log with no handler at all (what the log alone costs).

    python bench/trace_replay.py [--limit N] [--trace FOLDER]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import msgspec  # noqa: E402

from eventbatch.clock import VirtualClock  # noqa: E402
from eventbatch.follow import read_to_tail  # noqa: E402
from eventbatch.log.factory import open_log  # noqa: E402
from eventbatch.log.sole_writer import SoleWriterLog  # noqa: E402
from eventbatch.settings import Settings  # noqa: E402
from eventbatch.sim.driver import run_scenario  # noqa: E402
from eventbatch.sim.report import build_report  # noqa: E402
from eventbatch.trace import import_openb  # noqa: E402
from schemas.envelope import Envelope  # noqa: E402
from schemas.scenario import load_scenario  # noqa: E402

TRACE = ROOT.parent / "shared" / "traces" / "alibaba-openb-2023"


async def raw_log_limit(events: list[Envelope], folder: Path) -> float:
    """events/s to append the same events in batches of 100 and read them back."""
    copies = [Envelope.wrap(e.payload, recorded_at=e.recorded_at, causation=e.causation) for e in events]
    async with open_log(f"sqlite:///{folder}/raw.db") as log:
        t0 = time.perf_counter()
        for i in range(0, len(copies), 100):
            await log.append(copies[i : i + 100])
        seen: list[Envelope] = []
        await read_to_tail(log, 0, seen.append)
        elapsed = time.perf_counter() - t0
    assert len(seen) == len(copies)
    return len(copies) / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, help="only the first N pods of the trace")
    parser.add_argument("--trace", default=str(TRACE))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        scenario_dict, recorded = import_openb(Path(args.trace), limit=args.limit)
        scenario_path = folder / "openb.json"
        scenario_path.write_bytes(msgspec.json.encode(scenario_dict))
        scenario = load_scenario(scenario_path)
        async with SoleWriterLog(open_log(f"sqlite:///{folder}/sim.db")) as log:
            t0 = time.perf_counter()
            result = await run_scenario(scenario, log=log, settings=Settings(), clock=VirtualClock())
            wall = time.perf_counter() - t0
            events: list[Envelope] = []
            await read_to_tail(log, result.start, events.append)
        limit = await raw_log_limit(events, folder)
    report = build_report(events, end=result.now)
    rate = len(events) / wall
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    jobs = len(scenario.steps)
    print(
        f"trace replay: {jobs:,} jobs on {sum(n.count if n.prefix else 1 for n in scenario.nodes):,} nodes, "
        f"{len(events):,} events, {result.sessions:,} scheduling sessions, {result.now / 3_600_000:,.0f} h of cluster time"
    )
    print(
        f"trace replay: wall {wall:,.1f} s = {rate:,.0f} events/s = {rate / limit:.3f} x the SQLite log alone "
        f"({limit:,.0f} events/s appending and reading the same events); peak RSS {peak_mb:,.0f} MiB"
    )
    print(
        f"outcome: {len(report.never_ran)} job(s) never ran (trace: {recorded['never_ran']}), "
        f"GPU allocation mean {report.utilisation.get('nvidia.com/gpu', 0):.2%} (trace {recorded['gpu_allocation_mean']:.2%}), "
        f"stopped: {result.stopped}"
    )


if __name__ == "__main__":
    asyncio.run(main())
