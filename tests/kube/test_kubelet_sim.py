"""kubelet-sim moves bound pods as the simulated cluster does, from the pod objects alone."""

from __future__ import annotations

import pytest

from eventbatch.kube.client import Kube
from eventbatch.kube.kubelet_sim import KubeletSim
from tests.kube.conftest import eventually
from tests.kube.support import running


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
