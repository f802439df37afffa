"""RuntimeClass objects on the log: a pod's ``runtimeClassName`` adds the class's overhead to its requests
and the class's scheduling constraints to its placement, as Kubernetes does; the predicates plugin's
``runtimeClasses`` argument (constraints only) decides the same."""

from __future__ import annotations

import pytest

from schemas import events as ev
from schemas.runtimeclass import RuntimeClassError, load_runtime_class, runtime_class_added
from tests.unit.scheduler.tables import Cluster, bound, of

CONF = 'actions: "enqueue, allocate, backfill"\ntiers:\n- plugins:\n  - name: gang\n  - name: predicates{args}\n'
ARGUMENT = """
    arguments:
      runtimeClasses:
        singularity:
          nodeSelector: {runtime: singularity}
          tolerations: [{key: hpc, operator: Exists}]"""


def _class(name: str = "singularity", *, overhead: dict | None = None, scheduling: bool = True) -> ev.RuntimeClassAdded:
    raw: dict = {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": name},
                 "handler": "runsc"}
    if scheduling:
        raw["scheduling"] = {"nodeSelector": {"runtime": "singularity"},
                             "tolerations": [{"key": "hpc", "operator": "Exists"}]}
    if overhead is not None:
        raw["overhead"] = {"podFixed": overhead}
    return runtime_class_added(load_runtime_class(raw))


def _cluster(args: str = "") -> Cluster:
    c = Cluster(CONF.format(args=args)).queue("default")
    c.node("hpc", cpu="8", labels={"runtime": "singularity"}, taints=[("hpc", "", "NoSchedule")])
    return c.node("plain", cpu="8")


def _decisions(c: Cluster) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for job, runtime in (("a", "singularity"), ("b", ""), ("c", "kata"), ("d", "singularity")):
        c.job(job, {"w": (2, {"cpu": "1"})}, min_resources=False, runtime_class=runtime)
    for e in c.schedule():
        if isinstance(e, ev.PodBound):
            out.append((e.pod, e.node))
        elif isinstance(e, ev.PodGroupUnschedulable):
            out.append((e.podgroup, e.message))
    return out


def test_a_runtime_class_on_the_log_decides_as_the_scheduler_argument() -> None:
    by_argument = _decisions(_cluster(ARGUMENT))
    by_object = _decisions(_cluster().add(_class()))
    assert by_object == by_argument
    placed = dict(p for p in by_object if p[0].startswith("default/a-") or p[0].startswith("default/b-"))
    assert placed == {"default/a-w-0": "hpc", "default/a-w-1": "hpc", "default/b-w-0": "plain", "default/b-w-1": "plain"}
    assert any('runtime class "kata" not found' in message for _, message in by_object)


def test_the_class_overhead_is_added_to_each_pods_requests() -> None:
    # 2 cpu asked + 1 cpu overhead: 3 pods need 9 cpu, the 8-cpu node takes two
    c = _cluster().add(_class(overhead={"cpu": "1", "memory": "128Mi"}))
    c.job("o", {"w": (3, {"cpu": "2"})}, min_member=1, min_resources=False, runtime_class="singularity")
    assert sorted(bound(c.schedule()).values()) == ["hpc", "hpc"]
    state = c.state()
    assert state.pods["default/o-w-0"].requests == {"cpu": 3000, "memory": 128 * 2**20, "pods": 1}
    assert state.nodes["hpc"].used["cpu"] == 6000
    # the same job without overhead: all three fit (3 x 2 = 6 <= 8)
    c = _cluster().add(_class())
    c.job("o", {"w": (3, {"cpu": "2"})}, min_member=1, min_resources=False, runtime_class="singularity")
    assert sorted(bound(c.schedule()).values()) == ["hpc", "hpc", "hpc"]


def test_a_class_added_after_its_pods_prices_and_places_them() -> None:
    c = _cluster()
    c.job("late", {"w": (3, {"cpu": "2"})}, min_member=1, min_resources=False, runtime_class="singularity")
    assert bound(c.schedule()) == {}
    [verdict] = of([e.payload for e in c.log], ev.PodGroupUnschedulable)
    assert 'runtime class "singularity" not found' in verdict.message
    c.add(_class(overhead={"cpu": "1"}))
    assert len(bound(c.schedule())) == 2  # the overhead applies to pods still pending
    c.add(ev.RuntimeClassRemoved(name="singularity"))
    assert c.state().pods["default/late-w-2"].requests["cpu"] == 2000  # a pending pod gives the overhead back
    assert c.state().pods["default/late-w-0"].requests["cpu"] == 3000  # a bound one keeps what it took


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "x"}}, "handler"),
        ({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "x"}, "handler": "h",
          "overhead": {"podFixed": {"cpu": "lots"}}}, "overhead.podFixed.cpu"),
        ({"apiVersion": "node.k8s.io/v1beta1", "kind": "RuntimeClass", "metadata": {"name": "x"}, "handler": "h"},
         "node.k8s.io/v1"),
    ],
)
def test_a_bad_runtime_class_is_refused_naming_the_field(raw: dict, reason: str) -> None:
    with pytest.raises(RuntimeClassError) as refused:
        load_runtime_class(raw)
    assert reason in str(refused.value)
