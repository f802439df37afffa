"""Leader election over a coordination.k8s.io Lease: never two leaders, and a quick takeover.

A candidate takes the Lease only once its record has not changed for the
lease duration; a leader that cannot renew stops leading within the renew
deadline; a clean release hands over at once.
"""

from __future__ import annotations

import asyncio

import pytest

from eventbatch.kube.client import Kube
from eventbatch.kube.leader import LeaderElector
from tests.kube.apiserver import ApiServer


def elector(kube: Kube, identity: str) -> LeaderElector:
    return LeaderElector(
        kube=kube, identity=identity, namespace="default", lease_duration=1.0, renew_deadline=0.6, retry_period=0.1
    )


async def holder(kube: Kube) -> str:
    lease = await kube.call(kube.coordination.read_namespaced_lease, "eventbatch", "default")
    return lease["spec"]["holderIdentity"] or ""


async def test_only_one_candidate_wins(kube: Kube) -> None:
    a, b = elector(kube, "a"), elector(kube, "b")
    results = await asyncio.gather(a.try_acquire_or_renew(), b.try_acquire_or_renew())
    assert sorted(results) == [False, True]
    winner = "a" if results[0] else "b"
    assert await holder(kube) == winner
    # the loser keeps losing while the winner renews
    for _ in range(3):
        assert await (a if winner == "a" else b).try_acquire_or_renew()
        assert not await (b if winner == "a" else a).try_acquire_or_renew()


async def test_a_standby_takes_over_only_after_the_lease_expires(kube: Kube) -> None:
    a, b = elector(kube, "a"), elector(kube, "b")
    assert await a.try_acquire_or_renew()
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.wait_for(b.acquire(), timeout=5)  # a stopped renewing
    waited = loop.time() - started
    assert waited >= 1.0  # the lease duration, measured on b's own clock
    assert await holder(kube) == "b" and b.transitions == 1


async def test_a_clean_release_hands_over_at_once(kube: Kube) -> None:
    a, b = elector(kube, "a"), elector(kube, "b")
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    await a.release()
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.wait_for(b.acquire(), timeout=5)
    assert loop.time() - started < 1.0 + 0.5


async def test_a_leader_that_cannot_renew_stops_leading(apiserver: ApiServer, kube: Kube) -> None:
    a = elector(kube, "a")
    await a.acquire()
    hold = asyncio.create_task(a.hold())
    try:
        await asyncio.sleep(0.3)
        assert not hold.done()  # renewing fine
        apiserver.fail_next(1000, code=500, path_contains="/leases")
        await asyncio.wait_for(hold, timeout=3)
    finally:
        hold.cancel()
        await asyncio.gather(hold, return_exceptions=True)
    assert not a.leading


@pytest.mark.parametrize("replicas", [2, 3])
async def test_candidates_in_a_loop_never_overlap(kube: Kube, replicas: int) -> None:
    electors = [elector(kube, f"r{i}") for i in range(replicas)]
    overlaps = 0
    for _ in range(20):
        await asyncio.gather(*(e.try_acquire_or_renew() for e in electors))
        overlaps += sum(e.leading for e in electors) > 1
    assert overlaps == 0
    assert sum(e.leading for e in electors) == 1
