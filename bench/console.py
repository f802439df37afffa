"""Benchmark: the console's jobs page over a read-model store of 100,000 jobs.

Where it sits: beside the console (``eventbatch.ui``). It writes a generated
read-model store (``job_view`` rows of N jobs over 8 queues, 4 namespaces and
the Volcano phases, through ``ReadModelStore.apply`` as the projector writes
them) next to an empty SQLite log, serves it with ``eventbatch.ui.app`` on
loopback and times whole HTTP requests of ``/jobs`` (first page, a far page,
each filter) as a browser would make them. Run:

    python bench/console.py --jobs 100000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp

from eventbatch.log.factory import open_log
from eventbatch.readmodels import ReadModelStore
from eventbatch.ui.app import Console, UiServer
from projections.views import Changes
from projections.views.rows import JobRow, QueueRow

PHASES = ("Pending", "Running", "Completed", "Failed", "Restarting")


async def generate(store: ReadModelStore, jobs: int) -> None:
    queues = [QueueRow(name=f"q{i}", state="Open", pending=0, inqueue=0, running=0, completed=0, unknown=0,
                       allocated="{}", deserved="{}", guarantee="{}", capability="{}", share=0.0, weight=1, parent="")
              for i in range(8)]
    rows = []
    for i in range(jobs):
        namespace = f"ns{i % 4}"
        phase = PHASES[i % len(PHASES)]
        rows.append(JobRow(
            key=f"{namespace}/job-{i:06d}", namespace=namespace, name=f"job-{i:06d}", queue=f"q{i % 8}",
            phase=phase, min_available=1, pending=int(phase == "Pending"), running=int(phase == "Running"),
            succeeded=int(phase == "Completed"), failed=int(phase == "Failed"), terminating=0, unknown=0,
            retry_count=0, version=1, submitted_at=i * 1000,
            status=json.dumps({"state": {"phase": phase}, "minAvailable": 1}),
        ))
    # tracking -1: the store has folded nothing of the (empty) log it is served with
    await store.apply(Changes(position=-1, queues=queues, jobs=rows))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        log_path, views = Path(tmp) / "events.db", Path(tmp) / "events.views.db"
        started = time.perf_counter()
        async with ReadModelStore(views) as store:
            await generate(store, args.jobs)
        print(f"generated {args.jobs:,} jobs in {time.perf_counter() - started:.1f}s")
        async with open_log(f"sqlite:///{log_path}") as log, ReadModelStore(views) as store:
            server = UiServer(Console(log, store), port=0)
            await server.start()
            try:
                async with aiohttp.ClientSession() as session:
                    for label, path in (
                        ("first page", "/jobs"),
                        ("page 500", "/jobs?page=500"),
                        ("last page", f"/jobs?page={(args.jobs - 1) // 100}"),
                        ("queue filter", "/jobs?queue=q3"),
                        ("phase filter, page 100", "/jobs?phase=Running&page=100"),
                        ("text filter", "/jobs?text=job-09"),
                        ("all filters", "/jobs?queue=q1&namespace=ns1&phase=Running&text=9"),
                    ):
                        times = []
                        for _ in range(args.repeat):
                            t = time.perf_counter()
                            async with session.get(f"http://127.0.0.1:{server.port}{path}") as response:
                                body = await response.read()
                                assert response.status == 200, (path, response.status)
                            times.append(time.perf_counter() - t)
                        print(f"{label:>24}: median {statistics.median(times) * 1000:7.1f} ms, "
                              f"max {max(times) * 1000:7.1f} ms, {len(body):,} bytes, "
                              f"{body.count(b'data-job='):,} rows")
            finally:
                await server.stop()


if __name__ == "__main__":
    asyncio.run(main())
