"""network-topology-aware: a job inside one switch/spine domain — required (hard) or preferred (soft)."""

from __future__ import annotations

import pytest

from handlers.scheduler.conf import ConfError, load_conf
from schemas import events as ev
from schemas.quantity import to_resources
from schemas.resources import NetworkTopologySpec, ObjectMeta, PodGroup, PodGroupSpec
from tests.unit.scheduler.tables import Cluster, bound, of

SWITCH, SPINE = "topology.kubernetes.io/switch", "topology.kubernetes.io/spine"
CONF = load_conf(
    f"""
actions: "enqueue, allocate"
tiers:
- plugins: [{{name: priority}}, {{name: gang}}]
- plugins:
  - name: predicates
  - name: nodeorder
  - name: network-topology-aware
    arguments:
      tiers: [{SWITCH}, {SPINE}]
"""
)
# switch s0: n0 n1, s1: n2 n3, s2: n4 n5; spine p0: n0..n3, p1: n4 n5
LAYOUT = {f"n{i}": {SWITCH: f"s{i // 2}", SPINE: "p0" if i < 4 else "p1"} for i in range(6)}


def cluster() -> Cluster:
    c = Cluster(CONF).queue("default")
    for name, labels in LAYOUT.items():
        c.node(name, cpu="4", labels=labels)
    return c


def topology_job(c: Cluster, name: str, pods: int, mode: str | None, tier: int | None = None) -> None:
    key = f"default/{name}"
    topology = NetworkTopologySpec(mode=mode, highest_tier_allowed=tier) if mode else None
    group = PodGroup(
        metadata=ObjectMeta(name=name, namespace="default"),
        spec=PodGroupSpec(min_member=pods, queue="default", network_topology=topology),
    )
    need = to_resources({"cpu": str(2 * pods)})
    c.add(ev.PodGroupCreated(podgroup=key, job=key, manifest=group, min_resources=need))
    c.pods(name, {"w": (pods, {"cpu": "2"})})


def domains(decisions, label: str) -> set[str]:
    return {LAYOUT[node][label] for node in bound(decisions).values()}


@pytest.mark.parametrize(
    ("pods", "mode", "tier", "bound_pods", "label", "within"),
    [
        (4, None, None, 4, SWITCH, {"s0", "s1"}),
        (4, "hard", 1, 4, SWITCH, {"s0"}),
        (6, "hard", 1, 0, SWITCH, set()),
        (6, "hard", 2, 6, SPINE, {"p0"}),
        (6, "soft", 1, 6, SWITCH, {"s0", "s1", "s2"}),
        (8, "hard", None, 8, SPINE, {"p0"}),
    ],
    ids=["no-topology-spreads", "hard-one-switch", "hard-too-big-for-a-switch-waits", "hard-one-spine",
         "soft-spills-over", "hard-highest-tier-unset-means-any-tier"],
)
def test_a_job_stays_within_one_domain_of_its_allowed_tier(pods, mode, tier, bound_pods, label, within):
    c = cluster()
    topology_job(c, "job", pods, mode, tier)
    decisions = c.schedule()
    assert len(bound(decisions)) == bound_pods
    if within:
        assert domains(decisions, label) == within if mode != "soft" else domains(decisions, label) <= within
    if bound_pods == 0:
        [verdict] = of(decisions, ev.PodGroupUnschedulable)
        assert "outside the job's network domain" in verdict.message


def test_a_busy_switch_is_passed_over_for_one_that_holds_the_whole_job():
    c = cluster()
    c.job("other", {"w": (1, {"cpu": "2"})})  # lands on n0: switch s0 has 6 cpus left
    assert bound(c.schedule()) == {"default/other-w-0": "n0"}
    topology_job(c, "job", 4, "hard", 1)
    assert domains(c.schedule(), SWITCH) == {"s1"}


def test_soft_mode_prefers_the_domain_when_it_fits():
    c = cluster()
    topology_job(c, "job", 3, "soft", 1)
    assert domains(c.schedule(), SWITCH) == {"s0"}


def test_tiers_must_be_label_names():
    bad = load_conf(
        """
actions: "allocate"
tiers:
- plugins: [{name: network-topology-aware, arguments: {tiers: {a: b}}}]
"""
    )
    from handlers.scheduler.session import Session
    from projections.cluster_model import ClusterState

    with pytest.raises(ConfError, match="tiers of network-topology-aware"):
        Session(ClusterState(), bad, 0)
