"""Time travel (``replay --to/--at``) from the read models' past fold states.

The read-model projector keeps the fold state every ``past_every`` events in
``past_views``; ``state_at`` starts from the nearest one at or below the
moment asked for and reads only the log after it. These tests record a real
simulation into a real SQLite log, build the read models with a small
interval, and check that the state from a kept fold state plus the tail is
the state folded from position 0 (before the first kept state, exactly at
one, between two, at the end; by position and by time), that only the tail
is read (counted by the records the log hands out, not timed), and that the
number kept stays bounded and spread over the log.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from eventbatch.follow import read_to_tail
from eventbatch.log.factory import open_log
from eventbatch.log.port import LogTruncated
from eventbatch.log.wrapper import LogWrapper
from eventbatch.readmodels import Projector, ReadModelStore
from eventbatch.readmodels.projector import PAST_EVERY, PAST_KEEP, thin
from eventbatch.replay import Travel, state_at
from eventbatch.settings import Settings
from eventbatch.sim.driver import run_scenario
from schemas.envelope import Envelope
from tests.integration.test_readmodels import workload

EVERY = 90  # events between two kept fold states in these tests


class CountingLog(LogWrapper):
    """A real log that counts the records it hands to readers, and where they started."""

    def __init__(self, inner) -> None:
        super().__init__(inner)
        self.records = 0
        self.starts: list[int] = []

    async def read_records(self, from_position: int = 0, *, follow: bool = False) -> AsyncIterator:
        self.starts.append(from_position)
        async for chunk in self.inner.read_records(from_position, follow=follow):
            self.records += len(chunk)
            yield chunk


async def recorded(tmp_path: Path, jobs: int = 16) -> str:
    url = f"sqlite:///{tmp_path / 'events.db'}?chunk=50"
    async with open_log(url) as log:
        await run_scenario(workload(tmp_path, jobs=jobs, ttl=True), log=log, settings=Settings())
    return url


async def build_views(log, path: Path, *, every: int = EVERY, keep: int = PAST_KEEP, chunk: int = 40,
                      per_event: int | None = None) -> list[int]:
    """The read models of ``log`` at ``path``, keeping fold states every ``every`` events (or
    spaced by their size: one event per ``per_event`` bytes); returns the positions kept."""
    async with ReadModelStore(path) as store:
        projector = Projector(log=log, store=store, chunk=chunk, past_every=every, past_keep=keep,
                              kept_bytes_per_event=per_event)
        await projector.catch_up()
        await projector.checkpoint()
        return [position for position, _ in await store.past_positions()]


def rows(views) -> dict:
    """Every row the time-travel output is made of (and the podgroups and priority classes)."""
    changes = views.snapshot_rows()
    return {"position": changes.position, "queues": changes.queues, "jobs": changes.jobs, "nodes": changes.nodes,
            "podgroups": changes.podgroups, "priority_classes": changes.priority_classes}


async def test_the_state_from_a_kept_fold_state_and_its_tail_is_the_state_folded_from_zero(tmp_path: Path) -> None:
    url = await recorded(tmp_path)
    async with open_log(url) as log:
        end = await log.end_position()
        kept = await build_views(log, tmp_path / "views.db")
        assert len(kept) >= 4, kept  # the log spans several kept states: the cases below are not vacuous
        first, second = kept[0], kept[1]
        cases = [first // 2, first - 1, first, first + 1, (first + second) // 2, second, kept[-1] + 7, end - 2,
                 end - 1]
        async with ReadModelStore(tmp_path / "views.db") as store:
            kept.append(await store.snapshot_position())  # the checkpoint at the end is one too
            for position in cases:
                travel = Travel()
                from_store = await state_at(log, to=position, store=store, travel=travel)
                from_zero = await state_at(log, to=position)
                # the read models as a projector leaves them at that position (timelines and all)
                async with ReadModelStore(tmp_path / f"ref-{position}.db") as ref:
                    await Projector(log=log, store=ref, chunk=37, past_every=None).catch_up(to=position + 1)
                    stored = await ref.all_rows()
                assert rows(from_store) == rows(from_zero), position
                assert rows(from_store)["position"] == position
                assert rows(from_store)["queues"] == stored["queue_view"]
                assert rows(from_store)["jobs"] == stored["job_view"]
                assert rows(from_store)["nodes"] == stored["node_view"]
                assert rows(from_store)["podgroups"] == stored["podgroup_view"]
                nearest = max((p for p in kept if p <= position), default=-1)
                assert travel.snapshot == nearest, position
                assert rows(from_zero)["jobs"], position  # jobs exist at every position checked


async def test_replay_to_on_a_long_log_reads_only_the_tail_since_a_kept_state(tmp_path: Path) -> None:
    url = await recorded(tmp_path, jobs=30)
    async with open_log(url) as inner:
        end = await inner.end_position()
        kept = await build_views(inner, tmp_path / "views.db")
        log = CountingLog(inner)
        async with ReadModelStore(tmp_path / "views.db") as store:
            for position in (kept[len(kept) // 2] + 60, end - 20):
                nearest = max(p for p in kept if p <= position)
                log.records, log.starts = 0, []
                travel = Travel()
                await state_at(log, to=position, store=store, travel=travel)
                assert log.starts == [nearest + 1]
                # the tail, and at most the rest of the log's last chunk (50 records) beyond it
                assert position - nearest <= log.records < position - nearest + 50, (position, nearest)
                assert travel.read == log.records
                assert log.records < end // 4  # a small part of the log
        # without the read models there is nothing to start from: everything up to there is read
        log.records, log.starts = 0, []
        await state_at(log, to=end - 20)
        assert log.starts == [0] and log.records >= end - 20


async def test_a_large_fold_state_is_kept_less_often_in_proportion_to_its_size(tmp_path: Path) -> None:
    """Keeping a fold state costs in proportion to its size (every job the read models still
    show), so a state is kept again only once its size / ``per_event`` events were folded:
    spread over those events, keeping costs the same per event however large the state grows."""
    url = await recorded(tmp_path, jobs=30)
    async with open_log(url) as log:
        fixed = await build_views(log, tmp_path / "fixed.db", every=20, keep=10_000)
        spaced = await build_views(log, tmp_path / "spaced.db", every=20, keep=10_000, per_event=256)
        async with ReadModelStore(tmp_path / "spaced.db") as store:
            sizes = {position: len(await store.past_state(position) or b"") for position in spaced}
    assert len(spaced) < len(fixed) // 2, (len(spaced), len(fixed))  # fewer states kept
    for before, after in zip(spaced, spaced[1:], strict=False):
        # each one only after as many events as the previous one's bytes / 256 (or 20)
        assert after - before >= max(20, sizes[before] // 256), (before, after, sizes[before])


async def test_replay_at_a_time_starts_from_a_state_folded_before_that_time(tmp_path: Path) -> None:
    url = await recorded(tmp_path)
    async with open_log(url) as log:
        events: list[Envelope] = []
        await read_to_tail(log, 0, events.append)
        kept = await build_views(log, tmp_path / "views.db")
        async with ReadModelStore(tmp_path / "views.db") as store:
            checked = 0
            for fraction in (0.3, 0.6, 0.9):
                moment = events[int(len(events) * fraction)].recorded_at
                travel = Travel()
                from_store = await state_at(log, at=moment, store=store, travel=travel)
                from_zero = await state_at(log, at=moment)
                first_later = next(e.position for e in events if e.recorded_at > moment)
                assert rows(from_store) == rows(from_zero)
                assert from_store.position == first_later - 1
                # it started from a kept state none of whose events is later than the moment
                usable = [p for p in kept if max(e.recorded_at for e in events[:p + 1]) <= moment]
                assert travel.snapshot == max(usable, default=-1)
                checked += travel.snapshot >= 0
            assert checked >= 2


async def test_a_store_of_another_log_is_not_started_from(tmp_path: Path) -> None:
    url = await recorded(tmp_path, jobs=8)
    async with open_log(url) as log:
        await build_views(log, tmp_path / "views.db")
    async with open_log(f"sqlite:///{tmp_path / 'short.db'}") as short:
        await run_scenario(workload(tmp_path, jobs=1), log=short, settings=Settings())
        end = await short.end_position()
        async with ReadModelStore(tmp_path / "views.db") as store:
            travel = Travel()
            views = await state_at(short, to=end - 1, store=store, travel=travel)
        assert travel.snapshot == -1 and rows(views) == rows(await state_at(short, to=end - 1))


async def test_the_kept_states_stay_bounded_and_spread_over_the_log_across_restarts(tmp_path: Path) -> None:
    url = await recorded(tmp_path, jobs=30)
    async with open_log(url) as log:
        end = await log.end_position()
        # the read models brought up to date little by little, by one process after another
        path = tmp_path / "views.db"
        for stop in range(EVERY // 3, end + EVERY // 3, EVERY // 3):
            async with ReadModelStore(path) as store:
                projector = Projector(log=log, store=store, chunk=40, past_every=EVERY // 2, past_keep=6)
                await projector.catch_up(to=min(stop, end))
                await projector.checkpoint()
        async with ReadModelStore(path) as store:
            kept = [position for position, _ in await store.past_positions()]
    assert len(kept) == 6
    assert kept[-1] >= end - 1 - EVERY // 2  # the newest is kept
    gaps = [b - a for a, b in zip([-1, *kept], kept, strict=False)]
    assert max(gaps) <= 2.5 * end / len(kept), (kept, end)  # spread over the whole log, not bunched at its end


def test_thinning_drops_the_state_whose_neighbours_are_closest_and_never_the_newest() -> None:
    assert thin([10, 20, 30], 3) == []
    assert thin([10, 20, 30, 100], 3) == [20]  # 10..30 is the smallest gap a removal leaves
    assert thin([10, 40, 45, 100], 3) == [40]
    kept = list(range(PAST_EVERY - 1, 200 * PAST_EVERY, PAST_EVERY))
    left = sorted(set(kept) - set(thin(kept, PAST_KEEP)))
    assert len(left) == PAST_KEEP and left[-1] == kept[-1]
    assert max(b - a for a, b in zip(left, left[1:], strict=False)) <= 2 * len(kept) * PAST_EVERY / PAST_KEEP


async def test_a_compacted_log_still_travels_to_a_moment_after_a_kept_state(tmp_path: Path) -> None:
    url = await recorded(tmp_path, jobs=24)
    async with open_log(url) as log:
        end = await log.end_position()
        kept = await build_views(log, tmp_path / "views.db")
        middle = kept[len(kept) // 2]
        async with ReadModelStore(tmp_path / "views.db") as store:
            before = rows(await state_at(log, to=end - 3, store=store))
            await log.truncate(middle + 1)  # what compact does: the log now starts after that state
            assert rows(await state_at(log, to=end - 3, store=store)) == before
            assert rows(await state_at(log, to=middle, store=store))["position"] == middle
            try:
                await state_at(log, to=middle - 1, store=store)
            except LogTruncated as exc:
                assert f"(the log starts at {middle + 1})" in str(exc)
            else:
                raise AssertionError("a moment before every state the log can continue was shown")
