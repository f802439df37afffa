"""Inter-pod affinity and anti-affinity in the scheduler, as scenario tables (kube-scheduler's InterPodAffinity).

Each row is a small cluster on a real log (``tables.Cluster``: real events,
the scheduler's own fold, one session with the default conf): nodes with
hostname and zone labels, pods already running with their labels and terms,
and one pending job whose pods carry labels and terms; the row says where its
pods must (or must not) land, or that the job must wait and why.

The nodes are shaped so that, without the terms, the pods would go
elsewhere (one node far larger than the rest draws them): what a row checks
is the terms' doing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest

from handlers.scheduler.conf import DEFAULT_CONF_TEXT, load_conf
from schemas import events as ev
from schemas.quantity import to_resources
from schemas.resources import Affinity, ObjectMeta, Pod, PodGroup, PodGroupSpec, PodSpec
from tests.unit.scheduler.tables import Cluster, bound, of

HOST = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"


def _term(labels: dict[str, str], key: str, **extra: Any) -> dict[str, Any]:
    return {"labelSelector": {"matchLabels": labels}, "topologyKey": key, **extra}


def required(kind: str, *terms: dict[str, Any]) -> dict[str, Any]:
    """``spec.affinity`` with required terms; kind: podAffinity or podAntiAffinity."""
    return {kind: {"requiredDuringSchedulingIgnoredDuringExecution": list(terms)}}


def preferred(kind: str, *weighted: tuple[int, dict[str, Any]]) -> dict[str, Any]:
    return {
        kind: {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": w, "podAffinityTerm": t} for w, t in weighted
            ]
        }
    }


@dataclass(frozen=True)
class N:
    name: str
    zone: str
    cpu: str = "8"


@dataclass(frozen=True)
class Running:
    """A pod already running on ``node`` (its own one-pod job)."""

    name: str
    node: str
    labels: dict[str, str]
    affinity: dict[str, Any] = field(default_factory=dict)
    namespace: str = "default"


@dataclass(frozen=True)
class Row:
    name: str
    nodes: tuple[N, ...]
    running: tuple[Running, ...]
    replicas: int  # the pending job: this many 1-cpu pods, all of them its gang minimum
    labels: dict[str, str]
    affinity: dict[str, Any]
    # pod index -> a set of nodes it may land on; None: the job waits (nothing bound)
    expect: tuple[frozenset[str], ...] | None
    distinct: str = ""  # "node" or "zone": the pods land on different nodes / zones; "one zone": all in one
    reason: str = ""  # when the job waits: a phrase its verdict's message holds
    namespace: str = "default"
    conf: str = ""  # extra nodeorder arguments (YAML mapping text)


def _pod(c: Cluster, job: str, name: str, index: int, labels: dict[str, str], affinity: dict[str, Any], ns: str) -> str:
    key = f"{ns}/{name}"
    spec = PodSpec(affinity=msgspec.convert(affinity, Affinity) if affinity else None)
    manifest = Pod(metadata=ObjectMeta(name=name, namespace=ns, labels=labels), spec=spec)
    c.add(
        ev.PodRequested(
            pod=key, job=job, podgroup=job, task="worker", index=index, manifest=manifest,
            requests=to_resources({"cpu": "1", "memory": "1Gi"}) | {"pods": 1},
        )
    )
    return key


def _group(c: Cluster, key: str, members: int) -> None:
    ns, name = key.split("/")
    manifest = PodGroup(metadata=ObjectMeta(name=name, namespace=ns), spec=PodGroupSpec(min_member=members, queue="default"))
    c.add(ev.PodGroupCreated(podgroup=key, job=key, manifest=manifest, min_resources={}))


def build(row: Row) -> Cluster:
    text = DEFAULT_CONF_TEXT
    if row.conf:
        text = text.replace("  - name: nodeorder\n", f"  - name: nodeorder\n    arguments: {row.conf}\n")
    c = Cluster(load_conf(text))
    for n in row.nodes:
        c.node(n.name, cpu=n.cpu, memory="64Gi", labels={HOST: n.name, ZONE: n.zone})
    c.queue("default")
    for r in row.running:
        key = f"{r.namespace}/{r.name}-job"
        _group(c, key, 1)
        pod = _pod(c, key, r.name, 0, r.labels, r.affinity, r.namespace)
        c.add(ev.PodBound(pod=pod, job=key, node=r.node, rule="allocate"), ev.PodStarted(pod=pod, job=key, node=r.node))
    key = f"{row.namespace}/job"
    _group(c, key, row.replicas)
    for i in range(row.replicas):
        _pod(c, key, f"job-{i}", i, row.labels, row.affinity, row.namespace)
    return c


def placed(row: Row) -> tuple[dict[str, str], list[ev.Event]]:
    c = build(row)
    decisions = c.schedule()
    decisions += c.schedule()  # enqueue admits, allocate places (one session may do both)
    ns = row.namespace
    return {p: n for p, n in bound(decisions).items() if p.startswith(f"{ns}/job-")}, decisions


# Nodes: "big" draws pods without terms (32 cpu against 8); zones a, b, c.
ZONES = (N("big", "a", "32"), N("a2", "a"), N("b1", "b"), N("b2", "b"), N("c1", "c"))
W = {"app": "worker"}
# Nodes alike: without terms, pods spread over them (least requested first).
EQUAL = (N("a1", "a"), N("a2", "a"), N("b1", "b"), N("b2", "b"), N("c1", "c"))

ROWS = [
    Row(
        "required anti-affinity on hostname spreads a gang one pod per node",
        ZONES, (), 4, W, required("podAntiAffinity", _term(W, HOST)),
        expect=(frozenset({"big", "a2", "b1", "b2", "c1"}),) * 4, distinct="node",
    ),
    Row(
        "required anti-affinity on hostname: more pods than nodes, the gang waits",
        (N("big", "a", "32"), N("a2", "a")), (), 3, W, required("podAntiAffinity", _term(W, HOST)),
        expect=None, reason="didn't match pod anti-affinity rules",
    ),
    Row(
        "required anti-affinity on zone spreads a gang one pod per zone",
        ZONES, (), 3, W, required("podAntiAffinity", _term(W, ZONE)),
        expect=(frozenset({"big", "a2", "b1", "b2", "c1"}),) * 3, distinct="zone",
    ),
    Row(
        "required anti-affinity on zone: a zone already holding a worker is refused",
        ZONES, (Running("old", "b1", W),), 2, W, required("podAntiAffinity", _term(W, ZONE)),
        expect=(frozenset({"big", "a2", "c1"}),) * 2, distinct="zone",
    ),
    Row(
        "required affinity places every pod in the zone of the pod it follows",
        ZONES, (Running("db", "b2", {"app": "db"}),), 3, W, required("podAffinity", _term({"app": "db"}, ZONE)),
        expect=(frozenset({"b1", "b2"}),) * 3,
    ),
    Row(
        "required affinity to a pod in another namespace, named by the term",
        ZONES, (Running("db", "c1", {"app": "db"}, namespace="data"),), 2, W,
        required("podAffinity", _term({"app": "db"}, ZONE, namespaces=["data"])),
        expect=(frozenset({"c1"}),) * 2,
    ),
    Row(
        "required affinity without namespaces looks in the pod's own namespace only",
        ZONES, (Running("db", "c1", {"app": "db"}, namespace="data"),), 1, W,
        required("podAffinity", _term({"app": "db"}, ZONE)),
        expect=None, reason="didn't match pod affinity rules",
    ),
    Row(
        "required affinity with an empty namespaceSelector looks in every namespace",
        ZONES, (Running("db", "c1", {"app": "db"}, namespace="data"),), 1, W,
        required("podAffinity", _term({"app": "db"}, ZONE, namespaceSelector={})),
        expect=(frozenset({"c1"}),),
    ),
    Row(
        "required affinity of a gang to itself: the first pod goes anywhere, the rest follow its zone",
        EQUAL, (), 3, W, required("podAffinity", _term(W, ZONE)),
        expect=(frozenset(n.name for n in EQUAL),) * 3, distinct="one zone",
    ),
    Row(
        "the symmetric rule: a running pod's anti-affinity keeps matching pods out of its node",
        ZONES, (Running("guard", "big", {"app": "guard"}, required("podAntiAffinity", _term(W, HOST))),), 2, W, {},
        expect=(frozenset({"a2", "b1", "b2", "c1"}),) * 2,
    ),
    Row(
        "the symmetric rule on zone: the whole zone of the running pod is refused",
        ZONES, (Running("guard", "big", {"app": "guard"}, required("podAntiAffinity", _term(W, ZONE))),), 2, W, {},
        expect=(frozenset({"b1", "b2", "c1"}),) * 2,
    ),
    Row(
        "the symmetric rule: with every node in the guarded zone, the job waits and says why",
        (N("big", "a", "32"), N("a2", "a")),
        (Running("guard", "a2", {"app": "guard"}, required("podAntiAffinity", _term(W, ZONE))),), 1, W, {},
        expect=None, reason="didn't satisfy existing pods anti-affinity rules",
    ),
    Row(
        "preferred affinity draws the pods to the zone of the pod they prefer",
        ZONES, (Running("cache", "c1", {"app": "cache"}),), 2, W,
        preferred("podAffinity", (100, _term({"app": "cache"}, ZONE))),
        expect=(frozenset({"c1"}),) * 2,
    ),
    Row(
        "preferred anti-affinity pushes the pods out of the zone of the pod they avoid",
        (N("big", "a", "32"), N("big2", "a", "32"), N("c1", "c", "16")), (Running("noisy", "big", {"app": "noisy"}),),
        1, W, preferred("podAntiAffinity", (100, _term({"app": "noisy"}, ZONE))),
        expect=(frozenset({"c1"}),),
    ),
    Row(
        "a running pod's preferred affinity for the incoming pods draws them to its zone",
        ZONES, (Running("hub", "b1", {"app": "hub"}, preferred("podAffinity", (100, _term(W, ZONE)))),), 2, W, {},
        expect=(frozenset({"b1", "b2"}),) * 2,
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_pod_affinity_scenarios(row: Row) -> None:
    binds, decisions = placed(row)
    if row.expect is None:
        assert binds == {}
        verdicts = of(decisions, ev.PodGroupUnschedulable)
        assert verdicts and row.reason in verdicts[-1].message
        return
    pods = sorted(binds)
    assert len(pods) == len(row.expect), binds
    for pod, allowed in zip(pods, row.expect, strict=True):
        assert binds[pod] in allowed, binds
    if row.distinct == "node":
        assert len(set(binds.values())) == len(binds), binds
    if row.distinct == "zone":
        zones = {n.name: n.zone for n in row.nodes}
        assert len({zones[n] for n in binds.values()}) == len(binds), binds
    if row.distinct == "one zone":
        zones = {n.name: n.zone for n in row.nodes}
        assert len({zones[n] for n in binds.values()}) == 1, binds


def test_a_gang_placed_in_one_session_counts_its_own_pods() -> None:
    """Anti-affinity between the pods of one gang, all pending in the same session: each pod sees where
    the ones before it went (four pods on two zones of two nodes each: two per zone would break it)."""
    row = Row("gang", (N("a1", "a", "32"), N("a2", "a"), N("b1", "b")), (), 2, W, required("podAntiAffinity", _term(W, ZONE)),
              expect=None)
    c = build(row)
    decisions = c.schedule() + c.schedule()
    binds = bound(decisions)
    assert sorted(binds.values()) in (["a1", "b1"], ["a2", "b1"]), binds


def _where(row: Row) -> set[str]:
    return set(placed(row)[0].values())


def test_the_symmetric_rule_refuses_only_pods_its_term_selects() -> None:
    """The same running guard, once selecting the workers, once selecting other pods: only the first
    keeps them off its node."""
    def guard(selects: dict[str, str]) -> Row:
        anti = required("podAntiAffinity", _term(selects, HOST))
        return Row("guard", ZONES, (Running("guard", "big", {"app": "guard"}, anti),), 2, W, {}, expect=None)

    assert "big" not in _where(guard(W))
    assert _where(guard({"app": "other"})) == {"big"}


def test_podaffinity_weight_scales_the_preferred_terms() -> None:
    """nodeorder's podaffinity.weight: the default (2) lets a preferred term draw the pods to the small
    node of the zone it names; 0 leaves them where the other scores put them."""
    def row(conf: str) -> Row:
        prefer = preferred("podAffinity", (100, _term({"app": "cache"}, ZONE)))
        return Row("cache", ZONES, (Running("cache", "c1", {"app": "cache"}),), 2, W, prefer, expect=None, conf=conf)

    assert _where(row("")) == {"c1"}
    assert _where(row('{"podaffinity.weight": 2}')) == {"c1"}
    assert _where(row('{"podaffinity.weight": 0}')) == {"big"}


def test_predicate_pod_affinity_enable_false_leaves_required_terms_out() -> None:
    """predicates' ``predicate.PodAffinityEnable``: true (the default) spreads the gang; false places it
    as if it had no terms (all on the large node)."""
    anti = required("podAntiAffinity", _term(W, HOST))

    def where(enable: str) -> list[str]:
        text = DEFAULT_CONF_TEXT
        if enable:
            text = text.replace("  - name: predicates\n", f"  - name: predicates\n    arguments: {{predicate.PodAffinityEnable: {enable}}}\n")
        c = Cluster(load_conf(text))
        for n in ZONES:
            c.node(n.name, cpu=n.cpu, memory="64Gi", labels={HOST: n.name, ZONE: n.zone})
        c.queue("default")
        _group(c, "default/job", 3)
        for i in range(3):
            _pod(c, "default/job", f"job-{i}", i, W, anti, "default")
        return sorted(bound(c.schedule() + c.schedule()).values())

    assert len(set(where(""))) == 3
    assert len(set(where("true"))) == 3
    assert where("false") == ["big", "big", "big"]


def test_same_input_same_decisions() -> None:
    """Determinism: a gang spread by anti-affinity decides the same events, in the same order, every time."""
    row = Row("spread", ZONES, (), 5, W, required("podAntiAffinity", _term(W, HOST)), expect=None)
    first = [msgspec.json.encode(e) for e in placed(row)[1]]
    for _ in range(3):
        assert [msgspec.json.encode(e) for e in placed(row)[1]] == first
    assert sorted(placed(row)[0].values()) == sorted(n.name for n in ZONES)


def test_a_job_waiting_for_its_affinity_is_tried_again_when_a_matching_pod_is_placed() -> None:
    """A job whose required affinity no pod meets waits, with kube-scheduler's reason; once a pod it
    follows is bound (nothing else changed: no capacity freed), the next session places it in that
    pod's zone."""
    row = Row("follow", ZONES, (), 2, W, required("podAffinity", _term({"app": "db"}, ZONE)), expect=None)
    c = build(row)
    decisions = c.schedule() + c.schedule()
    assert bound(decisions) == {}
    verdicts = of(decisions, ev.PodGroupUnschedulable)
    assert verdicts and "didn't match pod affinity rules" in verdicts[-1].message
    assert not bound(c.schedule()) and not of(c.schedule(), ev.PodGroupUnschedulable)  # not asked again
    _group(c, "default/db-job", 1)
    db = _pod(c, "default/db-job", "db", 0, {"app": "db"}, {}, "default")
    c.add(ev.PodBound(pod=db, job="default/db-job", node="b2", rule="allocate"))
    binds = {p: n for p, n in bound(c.schedule() + c.schedule()).items() if p.startswith("default/job-")}
    assert len(binds) == 2 and set(binds.values()) <= {"b1", "b2"}, binds


def test_preempt_makes_room_only_where_the_terms_allow() -> None:
    """A high-priority gang of two with anti-affinity on hostname, two full nodes of low-priority pods:
    preempt evicts one pod on each node and pipelines one gang pod per node, not both on the first
    (where the first pipelined pod already sits)."""
    c = Cluster(load_conf(DEFAULT_CONF_TEXT.replace('actions: "enqueue, allocate, backfill"', 'actions: "enqueue, allocate, preempt"')))
    for n in ("n0", "n1"):
        c.node(n, cpu="4", memory="16Gi", labels={HOST: n})
    c.queue("default")
    c.priority_class("low", 1)
    c.priority_class("high", 100)
    for j in range(8):
        key = f"default/low{j}"
        _group(c, key, 1)
        pod = _pod(c, key, f"low{j}", 0, {}, {}, "default")
        c.add(ev.PodBound(pod=pod, job=key, node=f"n{j % 2}", rule="allocate"), ev.PodStarted(pod=pod, job=key, node=f"n{j % 2}"))
    manifest = PodGroup(
        metadata=ObjectMeta(name="high", namespace="default"),
        spec=PodGroupSpec(min_member=2, queue="default", priority_class_name="high"),
    )
    c.add(ev.PodGroupCreated(podgroup="default/high", job="default/high", manifest=manifest, min_resources={}))
    for i in range(2):
        _pod(c, "default/high", f"high-{i}", i, W, required("podAntiAffinity", _term(W, HOST)), "default")
    decisions = c.schedule()
    pipelined = {d.pod: d.node for d in of(decisions, ev.PodPipelined)}
    assert sorted(pipelined.values()) == ["n0", "n1"], pipelined
    assert len(of(decisions, ev.PodEvictionRequested)) == 2
