"""kubelet-sim moves bound pods as the simulated cluster does, from the pod objects alone."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from eventbatch.kube.backoff import Backoff
from eventbatch.kube.client import Kube, connect
from eventbatch.kube.kubelet_sim import KubeletSim
from tests.kube.apiserver import ApiServer
from tests.kube.conftest import eventually
from tests.kube.support import running

STATUS = "/pods/p/status"  # the path of the status writes to pod "p"


@pytest.fixture
async def fast(kubeconfig: Path) -> AsyncIterator[Kube]:
    """A client whose transient retries give up within a second (the shipped ones take seconds)."""
    kube = Kube(await connect(str(kubeconfig)), backoff=Backoff(base=0.01, cap=0.05, attempts=3), request_timeout=2.0)
    yield kube
    await kube.close()


def bound_pod(name: str, annotations: dict[str, str], node: str = "n1") -> dict:
    return {
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"nodeName": node, "containers": [{"name": "main", "image": "busybox"}]},
    }


async def phase(kube: Kube, name: str) -> tuple[str, int | None]:
    pod = await kube.call(kube.core.read_namespaced_pod, name, "default")
    status = pod.get("status") or {}
    codes = [((c.get("state") or {}).get("terminated") or {}).get("exitCode") for c in status.get("containerStatuses") or []]
    return status.get("phase", ""), codes[0] if codes else None


@pytest.mark.parametrize(
    "annotations, expected",
    [
        ({"eventbatch.io/sim-duration": "0s"}, ("Succeeded", 0)),
        ({"eventbatch.io/sim-duration": "0s", "eventbatch.io/sim-exit-code": "3"}, ("Failed", 3)),
        ({}, ("Running", None)),
    ],
    ids=["succeeds", "fails-with-its-exit-code", "runs-until-deleted"],
)
async def test_bound_pods_run_and_end(kube: Kube, annotations: dict, expected: tuple) -> None:
    await kube.call(kube.core.create_namespaced_pod, "default", bound_pod("p", annotations))
    await kube.call(kube.core.create_namespaced_pod, "default", {"metadata": {"name": "unbound"}, "spec": {"containers": [{"name": "m", "image": "x"}]}})
    sim = KubeletSim(kube=kube, startup_s=0.05, watch_timeout_s=2)
    async with running(sim):
        await eventually(lambda: _phase_is(kube, "p", expected), what=str(expected))
    assert await phase(kube, "unbound") == ("Pending", None)


async def _phase_is(kube: Kube, name: str, expected: tuple) -> bool:
    return await phase(kube, name) == expected


async def test_a_terminating_pod_is_removed(kube: Kube) -> None:
    await kube.call(kube.core.create_namespaced_pod, "default", bound_pod("p", {}))
    sim = KubeletSim(kube=kube, startup_s=0.05, watch_timeout_s=2)
    async with running(sim):
        await eventually(lambda: _phase_is(kube, "p", ("Running", None)))
        await kube.call(kube.core.delete_namespaced_pod, "p", "default")  # graceful: only marked

        async def gone() -> bool:
            listed = await kube.call(kube.core.list_namespaced_pod, "default")
            return listed["items"] == []

        await eventually(gone, what="the pod to be removed")


async def test_a_restarted_kubelet_sim_finishes_what_the_last_one_started(kube: Kube) -> None:
    await kube.call(kube.core.create_namespaced_pod, "default", bound_pod("p", {"eventbatch.io/sim-duration": "1s"}))
    first = KubeletSim(kube=kube, startup_s=0.05, watch_timeout_s=2)
    async with running(first):
        await eventually(lambda: _phase_is(kube, "p", ("Running", None)))
    assert await phase(kube, "p") == ("Running", None)
    second = KubeletSim(kube=kube, startup_s=0.05, watch_timeout_s=2)
    async with running(second):
        await eventually(lambda: _phase_is(kube, "p", ("Succeeded", 0)), timeout=5)
    assert second.stats.started == 0  # it did not start the pod again


async def test_a_pod_runs_for_its_whole_duration(kube: Kube) -> None:
    # status.startTime has whole seconds: measured from it, a 1s pod marked Running at hh:mm:ss.97 ended 30 ms later
    await kube.call(kube.core.create_namespaced_pod, "default", bound_pod("p", {"eventbatch.io/sim-duration": "1s"}))
    loop = asyncio.get_running_loop()
    sim = KubeletSim(kube=kube, startup_s=0.05, watch_timeout_s=2)
    last_pending = loop.time()
    async with running(sim):
        while True:
            began = loop.time()
            if (await phase(kube, "p"))[0] != "Pending":
                break
            last_pending = began  # the pod was marked Running after this read began
            await asyncio.sleep(0.01)
        await eventually(lambda: _phase_is(kube, "p", ("Succeeded", 0)), timeout=5)
    # 10 ms for the sim's wall clock against the loop's monotonic one; the whole-second start lost up to 1 s
    assert loop.time() - last_pending >= 0.99


@pytest.mark.parametrize("conflicts", [1, 3])
async def test_a_conflict_on_a_status_write_is_met_by_reading_the_pod_again(
    apiserver: ApiServer, kube: Kube, conflicts: int
) -> None:
    await kube.call(kube.core.create_namespaced_pod, "default", bound_pod("p", {}))
    apiserver.fail_next(conflicts, code=409, path_contains=STATUS)
    sim = KubeletSim(kube=kube, startup_s=0.05, watch_timeout_s=2)
    async with running(sim):
        await eventually(lambda: _phase_is(kube, "p", ("Running", None)), what="the pod to run despite the conflict")
    assert (sim.stats.conflicts, sim.stats.errors) == (conflicts, 0)
    writes = [c.code for c in apiserver.audit if c.resource == "pods/status"]
    assert writes[: conflicts + 1] == [409] * conflicts + [200]


async def test_conflicts_without_end_are_surfaced(
    apiserver: ApiServer, kube: Kube, caplog: pytest.LogCaptureFixture
) -> None:
    await kube.call(kube.core.create_namespaced_pod, "default", bound_pod("p", {}))
    apiserver.fail_next(100, code=409, path_contains=STATUS)
    sim = KubeletSim(kube=kube, startup_s=0.05, watch_timeout_s=2, conflict_retries=2)
    with caplog.at_level(logging.ERROR, logger="eventbatch.kube.kubelet_sim"):
        async with running(sim):
            await eventually(lambda: sim.stats.errors == 1, what="the give-up to be counted")
    assert len([c for c in apiserver.audit if c.resource == "pods/status"]) == 3  # the write and 2 retries
    assert [(r.levelname, getattr(r, "pod", "")) for r in caplog.records] == [("ERROR", "default/p")]
    assert await phase(kube, "p") == ("Pending", None)


@pytest.mark.parametrize("code", [503, 403], ids=["transient-outlasting-retries", "forbidden"])
async def test_an_error_it_cannot_handle_is_surfaced(
    apiserver: ApiServer, fast: Kube, code: int, caplog: pytest.LogCaptureFixture
) -> None:
    await fast.call(fast.core.create_namespaced_pod, "default", bound_pod("p", {}))
    apiserver.fail_next(100, code=code, path_contains=STATUS)
    sim = KubeletSim(kube=fast, startup_s=0.05, watch_timeout_s=2)
    with caplog.at_level(logging.ERROR, logger="eventbatch.kube.kubelet_sim"):
        async with running(sim):
            await eventually(lambda: sim.stats.errors == 1, what="the error to be counted")
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert [getattr(r, "pod", "") for r in errors] == ["default/p"]
    assert errors[0].exc_info is not None and f"({code})" in str(errors[0].exc_info[1])
    assert await phase(fast, "p") == ("Pending", None)
