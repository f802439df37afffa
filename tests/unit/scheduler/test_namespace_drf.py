"""drf has no namespace order (as Volcano since 2023): namespaces share a queue through their jobs, and a conf
asking for namespace fair share is refused with the reason.

Volcano removed drf's namespace order (``NamespaceOrderFn``, ``enableNamespaceOrder``) in commit 4ee689ac2
("Refactor namespace fairshare function", 2023-03-29); current Volcano ignores the old switch and the
``namespaceWeights`` argument without a word. eventbatch refuses them (issue 16, rule 5): a conf that asks for
namespace fair share would otherwise run without it, unseen.
"""

from __future__ import annotations

import pytest

from handlers.scheduler.conf import ConfError, load_conf
from schemas import events as ev
from schemas.quantity import to_resources
from schemas.resources import ObjectMeta, Pod, PodGroup, PodGroupSpec, PodSpec
from tests.unit.scheduler.tables import Cluster, bound


def conf(arguments: str = "", switch: str = ""):
    return load_conf(
        f"""
actions: "enqueue, allocate"
tiers:
- plugins: [{{name: priority}}, {{name: gang}}]
- plugins:
  - name: drf
    {switch}
    {arguments}
  - name: predicates
"""
    )


def job_in(c: Cluster, namespace: str, name: str, cpu: str = "1") -> None:
    key = f"{namespace}/{name}"
    group = PodGroup(
        metadata=ObjectMeta(name=name, namespace=namespace), spec=PodGroupSpec(min_member=1, queue="default")
    )
    c.add(ev.PodGroupCreated(podgroup=key, job=key, manifest=group, min_resources=to_resources({"cpu": cpu})))
    requests = to_resources({"cpu": cpu}) | {"pods": 1}
    pod = f"{namespace}/{name}-w-0"
    manifest = Pod(metadata=ObjectMeta(name=f"{name}-w-0", namespace=namespace), spec=PodSpec())
    c.add(ev.PodRequested(pod=pod, job=key, podgroup=key, task="w", index=0, manifest=manifest, requests=requests))


def per_namespace(decisions) -> dict[str, int]:
    counts: dict[str, int] = {}
    for pod in bound(decisions):
        ns = pod.split("/")[0]
        counts[ns] = counts.get(ns, 0) + 1
    return dict(sorted(counts.items()))


def test_namespaces_share_a_queue_through_their_jobs():
    """Volcano: pkg/scheduler/plugins/drf/drf.go, ``jobOrderFn`` (lines 370-386), the only order drf adds between
    jobs: the namespace with more jobs takes more (12 and 2 one-pod jobs on 12 cpu: 10 and 2)."""
    c = Cluster(conf()).nodes(3, cpu="4").queue("default")
    for j in range(12):
        job_in(c, "team-a", f"job{j:02d}")
        if j < 2:
            job_in(c, "team-b", f"job{j:02d}")
    assert per_namespace(c.schedule()) == {"team-a": 10, "team-b": 2}


@pytest.mark.parametrize(
    ("switch", "arguments", "named"),
    [
        ("enabledNamespaceOrder: true", "", "enabledNamespaceOrder of 'drf'"),
        ("", "arguments: {namespaceWeights: {team-a: 2}}", "argument namespaceWeights of 'drf'"),
        ("enabledNamespaceOrder: true", "arguments: {namespaceWeights: {team-a: 2}}", "enabledNamespaceOrder"),
    ],
    ids=["switch", "weights", "both"],
)
def test_a_conf_asking_for_namespace_fair_share_is_refused_with_the_reason(switch, arguments, named):
    with pytest.raises(ConfError) as refused:
        conf(arguments, switch=switch)
    message = str(refused.value)
    assert message.startswith(f"tier 2: {named}")
    assert "removed from Volcano's drf plugin in 2023" in message
    assert "remove " in message


def test_the_switch_turned_off_still_loads():
    """``enabledNamespaceOrder: false`` asks for nothing: a conf written for an old Volcano keeps loading."""
    c = Cluster(conf(switch="enabledNamespaceOrder: false")).nodes(1, cpu="4").queue("default")
    job_in(c, "team-a", "job00")
    assert per_namespace(c.schedule()) == {"team-a": 1}
