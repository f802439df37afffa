"""drf namespace fair share: namespaces share one queue by weighted dominant share."""

from __future__ import annotations

import pytest

from handlers.scheduler.conf import ConfError, load_conf
from schemas import events as ev
from schemas.quantity import to_resources
from schemas.resources import ObjectMeta, Pod, PodGroup, PodGroupSpec, PodSpec
from tests.unit.scheduler.tables import Cluster, bound


def conf(arguments: str = "", switch: str = "enabledNamespaceOrder: true"):
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


@pytest.mark.parametrize(
    ("plugin_conf", "jobs", "expected"),
    [
        (conf(), {"team-a": 12, "team-b": 4, "team-c": 12}, {"team-a": 4, "team-b": 4, "team-c": 4}),
        (conf("arguments: {namespaceWeights: {team-a: 2}}"), {"team-a": 12, "team-b": 12}, {"team-a": 8, "team-b": 4}),
        (conf("arguments: {namespaceWeights: {team-b: 3}}", switch=""), {"team-a": 12, "team-b": 12},
         {"team-a": 3, "team-b": 9}),
    ],
    ids=["equal-weights", "team-a-weighs-2", "weights-alone-turn-it-on"],
)
def test_namespaces_share_a_queue_by_weight_whatever_number_of_jobs(plugin_conf, jobs, expected):
    c = Cluster(plugin_conf).nodes(3, cpu="4").queue("default")
    for j in range(12):  # submitted interleaved by creation time; the busiest namespace first
        for ns, count in jobs.items():
            if j < count:
                job_in(c, ns, f"job{j:02d}")
    assert per_namespace(c.schedule()) == expected


def test_without_namespace_fair_share_the_namespace_with_more_jobs_takes_more():
    c = Cluster(conf(switch="")).nodes(3, cpu="4").queue("default")
    for j in range(12):
        job_in(c, "team-a", f"job{j:02d}")
        if j < 2:
            job_in(c, "team-b", f"job{j:02d}")
    assert per_namespace(c.schedule()) == {"team-a": 10, "team-b": 2}


@pytest.mark.parametrize(
    "arguments",
    ["arguments: {namespaceWeights: [a, b]}", "arguments: {namespaceWeights: {a: zero}}",
     "arguments: {namespaceWeights: {a: 0}}"],
    ids=["not-a-map", "not-a-number", "not-positive"],
)
def test_bad_namespace_weights_are_refused(arguments):
    from handlers.scheduler.session import Session
    from projections.cluster_model import ClusterState

    with pytest.raises(ConfError, match="namespaceWeights"):
        Session(ClusterState(), conf(arguments), 0)
