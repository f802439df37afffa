"""Scheduler rules checked against Volcano's source: one scenario per rule, its expectation from Volcano.

Each test builds a small cluster with the scheduler tables (``tables.Cluster``)
and asserts what Volcano decides there, naming the Volcano source line the
expectation comes from (volcano-sh/volcano at commit
ed72c7c815a9fd547a787134676f73d42e9d049c, the repository's head on
2026-08-20; release v1.15.1 has the same rules, its gang.go and
proportion.go at other line numbers).

These tests were written as ``xfail(strict=True)`` where eventbatch decided
differently; each mark came off with the change that made the rule decide as
Volcano does (issue 16, rules 1-5). A rule eventbatch decides differently on
purpose is listed in docs/scheduler.md, "Differences from Volcano".
"""

from __future__ import annotations

import pytest

from handlers.scheduler.conf import ConfError, load_conf
from schemas import events as ev
from schemas.quantity import to_resources
from schemas.resources import Guarantee, ObjectMeta, Pod, PodGroup, PodGroupSpec, PodSpec, Queue, QueueSpec
from tests.unit.scheduler.tables import Cluster, bound, default_conf_with, of

# Volcano's default tiers (priority, gang, conformance | overcommit, drf, predicates, proportion, nodeorder, binpack)
# with reclaim among the actions, as a Volcano user enables it.
RECLAIM_CONF = default_conf_with("enqueue, allocate, reclaim, backfill")

# The same with gang's and conformance's reclaim votes off, so that proportion (second tier) decides the victims:
# Volcano's Session.Reclaimable (pkg/scheduler/framework/session_plugins.go lines 225-270) returns the first
# tier whose plugins name victims, so with gang voting proportion's rule is never asked.
PROPORTION_DECIDES = RECLAIM_CONF.replace(
    "  - name: gang\n", "  - name: gang\n    enabledReclaimable: false\n"
).replace("  - name: conformance\n", "  - name: conformance\n    enabledReclaimable: false\n")


def _queue(c: Cluster, name: str, *, weight: int = 1) -> None:
    manifest = Queue(
        metadata=ObjectMeta(name=name),
        spec=QueueSpec(weight=weight, reclaimable=True, guarantee=Guarantee(resource={})),
    )
    c.add(ev.QueueCreated(queue=name, manifest=manifest), ev.QueueStateChanged(queue=name, state="Open"))


def _victims(decisions: list[ev.Event]) -> list[str]:
    return sorted(d.pod for d in of(decisions, ev.PodEvictionRequested))


def test_reclaim_takes_a_victim_while_its_queue_is_above_its_deserved_share():
    """Volcano: pkg/scheduler/plugins/proportion/proportion.go, ``AddReclaimableFn`` (lines 288-318), line 312:
    ``if !allocated.LessEqual(attr.deserved, api.Zero) { allocated.Sub(reclaimee.Resreq); victims = append(...) }``.

    A reclaimee is a victim while its queue's allocation, less the victims
    already taken, is not within its deserved share in every dimension: the
    last victim may take the queue below its share. batch holds 6 of 8 cpu
    in two 3-cpu pods and deserves 4 (prod asks 4, equal weights); prod's
    4-cpu pod needs 2 more than the 2 idle. Volcano evicts one batch pod
    (6 > 4, then 3 <= 4 stops) and pipelines prod's pod (reclaim.go
    ``reclaimForTask``, lines 180-260: idle 2 + 3 reclaimed >= 4).
    eventbatch refused before: batch would hold 3 < 4 after the eviction. Gang's
    and conformance's votes are off (``enableReclaimable: false`` in
    Volcano), as with them on the first tier decides and proportion is not
    asked (both agree then: one victim).
    """
    assert PROPORTION_DECIDES != RECLAIM_CONF
    c = Cluster(PROPORTION_DECIDES).node("n0", cpu="8")
    _queue(c, "batch")
    _queue(c, "prod")
    c.job("b", {"w": (2, {"cpu": "3"})}, queue="batch", min_member=1)
    assert len(bound(c.schedule())) == 2
    # Admitted already, as Volcano's reclaim tests build their podgroups Inqueue: reclaim takes no Pending
    # podgroup (rule 2), and overcommit keeps this one Pending (8 x 1.2 - 6 used < 4).
    c.job("p", {"w": (1, {"cpu": "4"})}, queue="prod", min_member=1, inqueue=True)
    decisions = c.schedule()
    victims = _victims(decisions)
    assert len(victims) == 1 and victims[0].startswith("default/b-w-")
    assert [d.pod for d in of(decisions, ev.PodPipelined)] == ["default/p-w-0"]


def test_reclaim_leaves_a_pending_podgroup_pending():
    """Volcano: pkg/scheduler/actions/reclaim/reclaim.go, ``Execute``, lines 72-75:
    ``for _, job := range ssn.Jobs { if job.IsPending() { continue } ...``, with
    ``IsPending`` (pkg/scheduler/api/job_info.go lines 1288-1293) true for a
    podgroup in phase Pending or with no phase.

    Only enqueue moves a podgroup from Pending to Inqueue (enqueue.go); the
    cluster is full (batch holds all 4 cpu), so enqueue refuses prod's
    2-cpu podgroup (overcommit: 4 x 1.2 - 4 idle < 2), and reclaim does not
    look at it: it stays Pending, no pod is evicted. eventbatch's reclaim
    admitted it before (``PodGroupEnqueued`` with rule ``reclaim.enqueue``),
    bypassing enqueue's own checks; preempt did the same (``preempt.enqueue``).
    """
    c = Cluster(RECLAIM_CONF).node("n0", cpu="4")
    _queue(c, "batch")
    _queue(c, "prod", weight=3)
    c.job("b", {"w": (4, {"cpu": "1"})}, queue="batch", min_member=1)
    assert len(bound(c.schedule())) == 4
    c.job("p", {"w": (2, {"cpu": "1"})}, queue="prod", min_member=2, pods=False)
    decisions = c.schedule()
    assert of(decisions, ev.PodGroupEnqueued) == []
    assert _victims(decisions) == []


def test_allocate_admits_a_pending_podgroup_when_enqueue_is_not_configured():
    """Volcano: pkg/scheduler/actions/allocate/allocate.go, ``buildAllocateContext``, lines 152-164:
    ``if job.IsPending() { if conf.EnabledActionMap["enqueue"] { continue } else {
    ... "no enqueue action is configured" ...; job.PodGroup.Status.Phase = scheduling.PodGroupInqueue } }``.

    With actions "allocate, backfill" a new podgroup is moved to Inqueue by
    allocate in its first session (the session writes the phase back at
    close), so the job controller creates its pods. Here the podgroup has no
    pods yet (as when a Job is just submitted: pods come after Inqueue):
    Volcano admits it, and so does eventbatch (rule ``allocate.no-enqueue``;
    before, it decided nothing and the Job stayed Pending for ever).
    """
    c = Cluster(default_conf_with("allocate, backfill")).node("n0", cpu="4")
    _queue(c, "default")
    c.job("j", {"w": (2, {"cpu": "1"})}, min_member=2, pods=False)
    decisions = c.schedule()
    assert [d.podgroup for d in of(decisions, ev.PodGroupEnqueued)] == ["default/j"]


def test_an_elastic_job_runs_what_fits_when_min_available_is_below_the_task_minimums():
    """Volcano: pkg/scheduler/api/job_info.go, ``CheckTaskReady`` (lines 1104-1117), ``CheckTaskPipelined``
    (1119-1150), ``CheckTaskValid`` (1072-1102): each starts with
    ``if ji.MinAvailable < ji.TaskMinAvailableTotal { return true }``; gang's
    JobReady (pkg/scheduler/plugins/gang/gang.go line 193) is
    ``ji.CheckTaskReady() && ji.CheckSubJobReady() && ji.IsReady()``.

    Volcano's admission webhook sets a task's minAvailable to its replicas
    when it is not given (pkg/webhooks/admission/jobs/mutate/mutate_job.go
    lines 205-217) and the job controller copies them into the podgroup's
    minTaskMember, so a job with minAvailable 1 and 6 one-cpu replicas has
    minTaskMember {w: 6}: 1 < 6, the task checks are skipped, and on a 4-cpu
    node Volcano binds 4 pods (gang: 1 ready >= minAvailable 1). eventbatch
    binds none: its gang wants 6 of w.
    """
    c = Cluster().node("n0", cpu="4")
    _queue(c, "default")
    c.job("elastic", {"w": (6, {"cpu": "1"})}, min_member=1, min_task_member={"w": 6})
    assert len(bound(c.schedule())) == 4


def _namespaced_job(c: Cluster, namespace: str, name: str, pods: int) -> None:
    """A podgroup of ``pods`` one-cpu pods in ``namespace`` that runs with any one of them."""
    key = f"{namespace}/{name}"
    group = PodGroup(
        metadata=ObjectMeta(name=name, namespace=namespace), spec=PodGroupSpec(min_member=1, queue="default")
    )
    c.add(ev.PodGroupCreated(podgroup=key, job=key, manifest=group, min_resources=to_resources({"cpu": "1"})))
    requests = to_resources({"cpu": "1"}) | {"pods": 1}
    for i in range(pods):
        pod = f"{name}-w-{i}"
        manifest = Pod(metadata=ObjectMeta(name=pod, namespace=namespace), spec=PodSpec())
        c.add(
            ev.PodRequested(
                pod=f"{namespace}/{pod}", job=key, podgroup=key, task="w", index=i, manifest=manifest, requests=requests
            )
        )


def _drf_conf():
    return load_conf(
        """
actions: "enqueue, allocate"
tiers:
- plugins: [{name: priority}, {name: gang}]
- plugins: [{name: drf}, {name: predicates}, {name: proportion}]
"""
    )


def _per_namespace(decisions: list[ev.Event]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for pod in bound(decisions):
        namespace = pod.split("/")[0]
        counts[namespace] = counts.get(namespace, 0) + 1
    return dict(sorted(counts.items()))


def test_drf_shares_a_queue_by_job_not_by_namespace():
    """Volcano: pkg/scheduler/plugins/drf/drf.go, ``jobOrderFn`` (lines 370-386) is the only order drf adds
    between jobs (``AddJobOrderFn``, line 388): the smaller job dominant
    share first. Volcano removed the namespace order (``NamespaceOrderFn``, the
    ``enableNamespaceOrder`` option) in commit 4ee689ac2 ("Refactor namespace
    fairshare function", 2023-03-29); ``namespaceOpts`` (line 116) is left
    for logs only, and an unknown plugin option is ignored.

    Namespace a has 3 jobs and namespace b one, each of 8 one-cpu pods that
    run with one; 8 cpu. Allocate puts a job back in its queue's line once it
    is ready and has tasks left (allocate.go ``allocateResources``, lines
    343-356), so the 4 jobs take turns by dominant share: 2 cpu each,
    a:b = 6:2. eventbatch's namespace order (which gave 5:3) is gone with it;
    a conf that still asks for it is refused (``test_namespace_drf.py``).
    """
    c = Cluster(_drf_conf()).nodes(2, cpu="4")
    _queue(c, "default")
    for j in range(3):
        _namespaced_job(c, "a", f"job{j}", 8)
        if j == 0:
            _namespaced_job(c, "b", f"job{j}", 8)
    assert _per_namespace(c.schedule()) == {"a": 6, "b": 2}


def test_drf_namespace_order_is_refused_not_ignored():
    """Volcano ignores the removed ``enabledNamespaceOrder`` (an unknown field); eventbatch refuses it,
    naming why (a deliberate difference, docs/scheduler.md "Differences from Volcano")."""
    text = """
actions: "enqueue, allocate"
tiers:
- plugins: [{name: priority}, {name: gang}]
- plugins: [{name: drf, enabledNamespaceOrder: true}, {name: predicates}, {name: proportion}]
"""
    with pytest.raises(ConfError, match="namespace fair share was removed from Volcano's drf plugin in 2023"):
        load_conf(text)
