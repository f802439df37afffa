"""The read-model fold agrees with the handlers' own projections.

``projections.views`` keeps lean records of its own so that a replay folds a
few attributes per event; the scheduler and the job controller decide on
``projections.cluster`` and ``projections.jobs``. Every example and a random
workload run through the real pipeline, and after every stretch of events the
rows the views show must equal the rows rendered from the handlers'
projections (``tests.support.oracle``), and so must the status the kube
status writer (``eventbatch.kube.status``) writes back to every Job,
PodGroup and Queue object.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventbatch.clock import SystemClock
from eventbatch.kube.client import Connection
from eventbatch.kube.status import KubeStatusWriter
from eventbatch.log.codec import decode
from eventbatch.log.memory import MemoryLog
from eventbatch.settings import Settings
from eventbatch.sim.driver import run_scenario
from projections.views import ViewSet
from projections.views.render import job_status_object, podgroup_status_object, queue_status_object
from schemas.scenario import load_scenario
from tests.integration.test_readmodels import workload
from tests.support.oracle import Oracle, view_rows

EXAMPLES = sorted(p.name for p in (Path(__file__).parents[2] / "examples").glob("*.yaml"))


async def records_of(scenario) -> list[tuple[int, bytes]]:
    log = MemoryLog()
    async with log:
        await run_scenario(scenario, log=log, settings=Settings())
        return [item async for chunk in log.read_records(0) for item in chunk]


TABLES = {"queues": "queue_view", "nodes": "node_view", "podgroups": "podgroup_view", "jobs": "job_view"}


def compare(records: list[tuple[int, bytes]], every: int) -> int:
    """Fold through both; every ``every`` events, the rows the views have written so far
    (their flushes applied in order, as the store applies them) must equal the oracle's."""
    views, oracle, checks = ViewSet(), Oracle(), 0
    writer = KubeStatusWriter(log=MemoryLog(), clock=SystemClock(), connection=Connection())
    stored: dict[str, dict] = {table: {} for table in TABLES}
    for position, data in records:
        assert views.fold_records([(position, data)]) == []
        envelope = decode(position, data)
        oracle.fold(envelope)
        if envelope.type == "JobCreated":  # as if every job and queue had its object on the API server
            writer.api_jobs[envelope.payload.job] = ""
        elif envelope.type == "PodGroupCreated":
            writer.api_podgroups.add(envelope.payload.podgroup)
        elif envelope.type == "QueueCreated":
            writer.api_queues.add(envelope.payload.queue)
        writer.fold(envelope)
        if (position + 1) % every == 0 or position == len(records) - 1:
            changes = views.flush()
            for table, name in TABLES.items():
                for row in getattr(changes, table):
                    stored[table][msgspec.structs.astuple(row)[0]] = row
                for key in changes.deleted.get(name, []):
                    stored[table].pop(key, None)
            assert stored == oracle.rows(views), f"rows differ after #{position}"
            assert view_rows(views) == stored
            expected = oracle.rows(views)
            statuses = {kind: {key: writer.status_of(kind, key) for key in rows} for kind, rows in expected.items()
                        if kind != "nodes"}
            assert statuses == {
                "jobs": {k: job_status_object(row) for k, row in expected["jobs"].items()},
                "podgroups": {k: podgroup_status_object(row, expected["jobs"].get(row.job),
                                                        list(writer.conditions.get(k, {}).values()))
                              for k, row in expected["podgroups"].items()},
                "queues": {k: queue_status_object(row) for k, row in expected["queues"].items()},
            }, f"statuses differ after #{position}"
            checks += 1
    return checks


@pytest.mark.parametrize("example", EXAMPLES)
async def test_every_example_folds_to_the_rows_of_the_handlers_projections(example: str) -> None:
    records = await records_of(load_scenario(str(Path(__file__).parents[2] / "examples" / example)))
    kinds = {decode(p, d).type for p, d in records}
    assert "PodBound" in kinds
    assert compare(records, every=max(1, len(records) // 8)) >= 8


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(jobs=st.integers(2, 14), seed=st.integers(0, 20), ttl=st.booleans(), every=st.integers(1, 60))
async def test_a_random_workload_folds_to_the_rows_of_the_handlers_projections(
    tmp_path: Path, jobs, seed, ttl, every
) -> None:
    records = await records_of(workload(tmp_path, jobs=jobs, seed=seed, ttl=ttl))
    assert compare(records, every) >= 1
