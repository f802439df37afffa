"""The pipeline's shared reader (``eventbatch.follow.SharedReads``) on a real SQLite log:
every component follows the log as its own read would, but each record is read and
decoded once, however many components follow it."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import aclosing
from pathlib import Path

import pytest

from eventbatch.app import build_pipeline, cluster_handlers, default_handlers, scheduling_relevance
from eventbatch.clock import SystemClock
from eventbatch.follow import SharedReads
from eventbatch.log.codec import MAX_RECORD_BYTES, RecordTooLarge
from eventbatch.log.factory import open_log
from eventbatch.settings import Settings
from eventbatch.sim.inputs import nodes_of
from eventbatch.verify import verify
from schemas.envelope import Envelope
from schemas.events import JobPhaseChanged, JobSubmitRequested, NodeAddRequested, QueueCreateRequested
from schemas.loaders import load_manifests
from schemas.scenario import NodeEntry
from tests.contract.log_contract import unknown_record
from tests.support.events import mixed_batch, pod_requested, wrap
from tests.support.workloads import JOB, QUEUE


async def follow(log, start: int, until: int, *, pause: float = 0.0) -> list[int]:
    """Positions a follower from ``start`` is given, until it has passed ``until``."""
    seen: list[int] = []
    async with asyncio.timeout(30), aclosing(log.read(start, follow=True)) as events:
        async for envelope in events:
            seen.append(envelope.position)
            if pause:
                await asyncio.sleep(pause)
            if envelope.position >= until:
                return seen
    return seen


async def test_followers_see_what_their_own_read_sees_and_each_record_is_decoded_once(tmp_path: Path) -> None:
    async with open_log(f"sqlite:///{tmp_path}/events.db") as backend:
        await backend.append(mixed_batch("a", 30))
        await backend.append_raw([unknown_record("PodTeleported"), b"{not json"])  # skipped, quarantined
        await backend.append(mixed_batch("b", 30, start=30))
        end = await backend.end_position()
        own = [e.position async for e in backend.read(0)]  # what a plain read yields
        shared = SharedReads(backend)
        # Three followers starting at different places, one of them slow; the last
        # records are appended while they follow.
        followers = [
            asyncio.create_task(follow(shared, start, end + 9, pause=pause))
            for start, pause in ((20, 0.0), (0, 0.0), (45, 0.002))
        ]
        await asyncio.sleep(0.05)
        await shared.append(mixed_batch("c", 10, start=60))
        results = await asyncio.gather(*followers)
        tail = [e.position async for e in backend.read(end)]
        for start, seen in zip((20, 0, 45), results, strict=True):
            assert seen == [p for p in own + tail if p >= start]
        assert 30 not in results[1] and 31 not in results[1]  # the unknown and the broken record
        # The shared reader decoded each record from where it started once; only the gap
        # below it (the follower from 0) was read again.
        assert shared.decoded <= end + 10 - 20 + 1
        assert [q.position for q in await backend.quarantined()] == [31]


async def test_a_slow_follower_holds_at_most_the_window_in_memory(tmp_path: Path) -> None:
    async with open_log(f"sqlite:///{tmp_path}/events.db?chunk=10") as backend:
        await backend.append(mixed_batch("a", 200))
        shared = SharedReads(backend, window=40)
        held: list[int] = []

        async def slow() -> list[int]:
            seen = []
            async with aclosing(shared.read(0, follow=True)) as events:
                async for envelope in events:
                    seen.append(envelope.position)
                    held.append(shared._buffered)
                    await asyncio.sleep(0)
                    if envelope.position >= 199:
                        return seen
            return seen

        fast = asyncio.create_task(follow(shared, 0, 199))
        assert await slow() == list(range(200))
        assert await fast == list(range(200))
        assert max(held) <= 40 + 10  # the window plus the chunk being read


async def test_serve_reads_each_record_once_whatever_the_number_of_components(tmp_path: Path) -> None:
    """The full pipeline (queue, job, node controllers, scheduler, timers, simulated kubelet,
    trigger) runs jobs to Running while the log's handle decodes each record once."""
    await burst_answered_by_chunks(f"sqlite:///{tmp_path}/events.db")


@pytest.mark.kafka
async def test_a_burst_on_kafka_answered_by_chunks_is_what_replay_reproduces(kafka_bootstrap: str) -> None:
    """The same on Kafka, where a chunk's decisions are one append per trigger, grouped by
    the shared log into record batches: every job runs, each decision once, replay agrees."""
    await burst_answered_by_chunks(f"kafka://{kafka_bootstrap}/burst-{uuid.uuid4().hex[:8]}")


async def burst_answered_by_chunks(url: str) -> None:
    settings = Settings(log_url=url, sim_startup_ms=10, debounce_ms=5)
    async with open_log(url) as log:
        pipeline = build_pipeline(
            log=log, clock=SystemClock(), handlers=default_handlers(settings), settings=settings,
            is_relevant=scheduling_relevance(), cluster="sim",
        )
        components = len(pipeline.runners) + len(pipeline.components())
        assert components >= 6
        running = asyncio.create_task(pipeline.run())
        try:
            shared = pipeline.runners[0].log
            async with asyncio.timeout(10):  # every component has caught up and follows
                while len(getattr(shared, "_cursors", ())) < components:  # noqa: ASYNC110 - internal state, polled to a deadline
                    await asyncio.sleep(0.01)
            start, reads_at_start = await log.end_position(), log.stats.read
            now = SystemClock().now()
            nodes = nodes_of(NodeEntry(prefix="n-", count=3, allocatable={"cpu": 8, "memory": "16Gi"}))
            await log.append(
                [Envelope.wrap(NodeAddRequested(node=n.metadata.name, manifest=n), recorded_at=now) for n in nodes]
                + [Envelope.wrap(QueueCreateRequested(queue="default", manifest=load_manifests(QUEUE)[0]),
                                 recorded_at=now)]
            )
            jobs = [f"default/train-{i}" for i in range(5)]
            for job in jobs:
                manifest = load_manifests(JOB.replace("name: train", f"name: {job.split('/')[1]}"))[0]
                await log.append([Envelope.wrap(JobSubmitRequested(job=job, manifest=manifest), recorded_at=now)])
            seen: set[str] = set()
            async with asyncio.timeout(30), open_log(url) as watcher, aclosing(watcher.read(0, follow=True)) as events:
                async for envelope in events:
                    event = envelope.payload
                    if isinstance(event, JobPhaseChanged) and event.phase == "Running":
                        seen.add(event.job)
                        if seen == set(jobs):
                            break
            end = await log.end_position()
            reads = log.stats.read - reads_at_start
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
        # Every record appended while the components follow was decoded once for all of
        # them (it would be once per component, {components} times, without the shared reader).
        assert end - start > 50
        assert reads <= end - start, (reads, end - start)


async def test_a_follower_joining_below_what_the_others_dropped_reads_the_gap_itself(tmp_path: Path) -> None:
    """A component that starts late, below what the others already passed (their chunks are
    dropped), misses nothing: it reads the gap alone, then joins."""
    async with open_log(f"sqlite:///{tmp_path}/events.db?chunk=10") as backend:
        await backend.append(mixed_batch("a", 60))
        shared = SharedReads(backend)
        first = asyncio.create_task(follow(shared, 0, 89))
        async with asyncio.timeout(10):
            # the first follower passed (and dropped) most chunks: internal state, polled to a deadline
            while shared._trimmed < 5:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        late = asyncio.create_task(follow(shared, 25, 89))
        await asyncio.sleep(0.1)
        await shared.append(mixed_batch("b", 30, start=60))
        assert await first == list(range(90))
        assert await late == list(range(25, 90))


async def test_a_follower_ahead_of_the_others_skips_what_they_drop_while_it_waits(tmp_path: Path) -> None:
    async with open_log(f"sqlite:///{tmp_path}/events.db?chunk=10") as backend:
        await backend.append(mixed_batch("a", 60))
        shared = SharedReads(backend)
        ahead = asyncio.create_task(follow(shared, 75, 89))  # starts the shared reader, waits past the end
        await asyncio.sleep(0.05)
        behind = asyncio.create_task(follow(shared, 0, 89, pause=0.001))  # reads 0-74 alone, then joins
        await asyncio.sleep(0.3)
        await shared.append(mixed_batch("b", 30, start=60))
        assert await behind == list(range(90))
        assert await ahead == list(range(75, 90))


async def test_appends_made_together_land_as_one_and_each_batch_stays_whole(tmp_path: Path) -> None:
    """While the pipeline follows the log, the batches its components append at the same time
    go to the log as one append (group commit): each batch's records stay together, in the
    order the batches were asked for, and each caller gets the positions of its own."""
    async with open_log(f"sqlite:///{tmp_path}/events.db") as backend:
        await backend.append(mixed_batch("before", 3))
        shared = SharedReads(backend)
        shared.group_appends = True
        batches = [mixed_batch(f"job-{i}", size) for i, size in enumerate((1, 4, 2, 7, 3))]
        results = await asyncio.gather(*(shared.append(batch) for batch in batches))
        assert shared.grouped >= 1  # they went together
        expected = 3
        for batch, positions in zip(batches, results, strict=True):
            assert positions == list(range(expected, expected + len(batch)))
            expected += len(batch)
        stored = [e async for e in backend.read(3)]
        assert [e.payload for e in stored] == [e.payload for batch in batches for e in batch]


async def test_a_refused_batch_in_a_group_fails_alone(tmp_path: Path) -> None:
    """One component's batch the log refuses (a record over the limit) fails for that
    component only: the batches appended with it still land, whole and in order."""
    async with open_log(f"sqlite:///{tmp_path}/events.db") as backend:
        shared = SharedReads(backend)
        shared.group_appends = True
        good = [mixed_batch("a", 3), mixed_batch("b", 2)]
        bad = [wrap(pod_requested("huge", 0, annotation_bytes=MAX_RECORD_BYTES + 1))]
        outcomes = await asyncio.gather(
            shared.append(good[0]), shared.append(bad), shared.append(good[1]), return_exceptions=True
        )
        assert isinstance(outcomes[1], RecordTooLarge)
        assert outcomes[0] == [0, 1, 2] and outcomes[2] == [3, 4]
        stored = [e async for e in backend.read(0)]
        assert [e.payload for e in stored] == [e.payload for batch in good for e in batch]


async def test_a_burst_answered_a_chunk_at_a_time_is_what_replay_reproduces(tmp_path: Path) -> None:
    """Followed as ``serve`` follows it, the job controller answers a burst of submissions a
    chunk at a time (the decisions to a whole chunk of triggers in one append): every job
    runs, each decision is on the log once, and ``replay --verify`` reproduces every one of
    them, as it does for a log answered one trigger at a time."""
    url = f"sqlite:///{tmp_path}/events.db"
    settings = Settings(log_url=url, sim_startup_ms=10, debounce_ms=5)
    async with open_log(url) as log:
        now = SystemClock().now()
        nodes = nodes_of(NodeEntry(prefix="n-", count=4, allocatable={"cpu": 64, "memory": "256Gi"}))
        jobs = [f"default/burst-{i}" for i in range(40)]
        await log.append(
            [Envelope.wrap(NodeAddRequested(node=n.metadata.name, manifest=n), recorded_at=now) for n in nodes]
            + [Envelope.wrap(QueueCreateRequested(queue="default", manifest=load_manifests(QUEUE)[0]), recorded_at=now)]
            + [
                Envelope.wrap(
                    JobSubmitRequested(job=job, manifest=load_manifests(JOB.replace("name: train", f"name: {job[8:]}"))[0]),
                    recorded_at=now,
                )
                for job in jobs
            ]
        )
        pipeline = build_pipeline(
            log=log, clock=SystemClock(), handlers=default_handlers(settings), settings=settings,
            is_relevant=scheduling_relevance(), cluster="sim",
        )
        running = asyncio.create_task(pipeline.run())
        try:
            seen: set[str] = set()
            async with asyncio.timeout(30), open_log(url) as watcher, aclosing(watcher.read(0, follow=True)) as events:
                async for envelope in events:
                    event = envelope.payload
                    if isinstance(event, JobPhaseChanged) and event.phase == "Running":
                        seen.add(event.job)
                        if seen == set(jobs):
                            break
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
        job_controller = pipeline.runner("job-controller")
        assert job_controller.stats.triggers_answered >= 40
        assert job_controller.stats.appends_of_many > 0  # the submissions came in one chunk
        if url.startswith("kafka:"):
            assert pipeline.shared is not None and pipeline.shared.grouped > 0  # their answers went grouped
        records = [e async for e in log.read(0)]
        created = [e.payload.job for e in records if e.type == "JobCreated"]
        assert sorted(created) == sorted(jobs)  # each once
        report = await verify(log, cluster_handlers("sim", default_handlers(Settings())), sim_startup_ms=10)
        assert report.ok and report.clean, ([d.describe() for d in report.divergences], report.effects, report.failures)
        assert report.checks["job-controller"].decisions_matched > 100
