"""What a session reuses from earlier ones decides exactly what computing it afresh decides.

Sessions one after another mostly repeat what the one before computed: the
same queues asking for the same amounts (``proportion``'s water-filling is
kept by its inputs) and the same settled podgroups holding the same
resources (``proportion`` and ``overcommit`` read per queue sums over their
kept copies, brought up to date from the copies dropped and added). These tests check each reuse against a fresh
computation, and that the reuse really happens, or the comparison would
prove nothing.
"""

from __future__ import annotations

from handlers.scheduler.actions import ACTIONS
from handlers.scheduler.api import QueueInfo
from handlers.scheduler.plugins import proportion
from handlers.scheduler.plugins.proportion import QueueAttr, water_fill
from handlers.scheduler.session import Session
from schemas import events as ev
from tests.unit.scheduler.tables import bound
from tests.unit.scheduler.test_kept_jobs import TwinCluster, view


def _attrs(requests: dict[str, float], weights: dict[str, int] | None = None) -> list[QueueAttr]:
    attrs = []
    for name, cpu in requests.items():
        attr = QueueAttr(QueueInfo(name))
        attr.weight = (weights or {}).get(name, 1)
        attr.request = {"cpu": cpu, "memory": cpu * 2.0}
        attrs.append(attr)
    return attrs


def _filled(attrs: list[QueueAttr]) -> dict[str, tuple[dict, dict]]:
    return {a.name: (dict(a.real_capability), dict(a.deserved)) for a in attrs}


def _fresh(requests, weights=None):
    saved = dict(proportion._FILLED)
    proportion._FILLED.clear()
    try:
        attrs = _attrs(requests, weights)
        water_fill(attrs, TOTAL)
        return _filled(attrs)
    finally:
        proportion._FILLED.clear()
        proportion._FILLED.update(saved)


TOTAL = {"cpu": 100.0, "memory": 200.0}


def test_a_water_filling_asked_for_again_gives_the_shares_of_a_fresh_one():
    asks = [
        ({"a": 80.0, "b": 80.0}, None),
        ({"a": 10.0, "b": 80.0}, None),
        ({"a": 80.0, "b": 80.0}, {"a": 3}),  # the same requests, other weights
        ({"a": 80.0, "b": 80.0}, None),  # asked for before: taken again
        ({"a": 10.0, "b": 80.0}, None),
    ]
    for requests, weights in asks:
        attrs = _attrs(requests, weights)
        water_fill(attrs, TOTAL)
        assert _filled(attrs) == _fresh(requests, weights)
        # A session changes its copies freely: the next one asking gets clean ones.
        for a in attrs:
            a.deserved["cpu"] = -1.0
            a.real_capability.clear()
    again = _attrs({"a": 80.0, "b": 80.0})
    water_fill(again, TOTAL)
    assert {a.name: a.deserved["cpu"] for a in again} == {"a": 50.0, "b": 50.0}


def test_the_kept_water_fillings_are_few_and_really_taken():
    proportion._FILLED.clear()
    for k in range(3 * proportion._FILLED_KEPT):
        water_fill(_attrs({"a": float(k), "b": 80.0}), TOTAL)
    kept = set(proportion._FILLED)
    assert len(kept) == proportion._FILLED_KEPT
    water_fill(_attrs({"a": float(3 * proportion._FILLED_KEPT - 1), "b": 80.0}), TOTAL)
    assert set(proportion._FILLED) == kept  # taken again, nothing filled anew
    water_fill(_attrs({"a": 0.0, "b": 80.0}), TOTAL)  # long forgotten: filled again
    assert len(proportion._FILLED) == proportion._FILLED_KEPT and set(proportion._FILLED) != kept


def _admitted(jobs) -> dict[str, dict[str, int]]:
    """Per queue, what is admitted and not placed yet, podgroup by podgroup: the minResources
    of Inqueue podgroups and what Running ones (at their gang minimum) still miss of theirs."""
    out: dict[str, dict[str, int]] = {}
    for job in jobs:
        into = out.setdefault(job.queue, {})
        if job.phase == "Inqueue":
            missing = job.min_resources
        elif job.phase == "Running" and job.allocated_num() >= job.min_member:
            missing = {d: v - job.allocated.get(d, 0) for d, v in job.min_resources.items()}
        else:
            continue
        for d, v in missing.items():
            if v > 0:
                into[d] = into.get(d, 0) + v
    return out


class SumsTwin(TwinCluster):
    """Each session opened twice over one state, with the kept copies and their sums and
    with none: what ``proportion`` and ``overcommit`` count at open must be the same."""

    def __init__(self, conf=None) -> None:
        super().__init__(conf)
        self.summed = 0  # settled podgroups counted from the sums, over all sessions
        self.held = 0
        self.missing = False  # some sums had a Running podgroup missing part of its minResources

    def _run(self, state, now):
        ssn = Session(state, self.handler.conf, now)
        plugins = {p.name: p for p in ssn.plugins}
        shares = plugins["proportion"].attrs
        views = [view(job) for job in ssn.jobs.values()]
        views.append(
            {
                name: (a.allocated, a.request, a.inqueue, a.deserved, a.entitled, a.real_capability, a.share)
                for name, a in shares.items()
            }
        )
        views.append(dict(plugins["overcommit"].inqueue))
        # What the nodes hold, kept as they change, is what they hold at open.
        assert ssn.nodes.used_at_open == ssn.nodes.used.sum(axis=0).tolist()
        self.held = max(self.held, sum(ssn.nodes.used_at_open))
        admitted = _admitted(ssn.jobs.values())
        for name, attr in shares.items():
            assert {d: v for d, v in attr.inqueue.items() if v} == admitted.get(name, {})
        everywhere: dict[str, int] = {}
        for amounts in admitted.values():
            for d, v in amounts.items():
                everywhere[d] = everywhere.get(d, 0) + v
        assert {d: v for d, v in plugins["overcommit"].inqueue.items() if v} == everywhere
        summed = sum(q.jobs for q in ssn.settled.values())
        assert summed + len(ssn.unsettled) == len(ssn.jobs)
        assert summed == sum(1 for job in ssn.jobs.values() if job.settled)
        self.summed += summed
        self.missing = self.missing or any(q.missing for q in ssn.settled.values())
        for action in self.handler.conf.actions:
            ACTIONS[action](ssn)
        return views, ssn.close(), ssn.jobs


def test_the_settled_podgroups_sums_count_what_each_copy_counts_afresh() -> None:
    c = SumsTwin()
    c.queue("qa", weight=1).queue("qb", weight=3)
    c.nodes(3, cpu="4", memory="8Gi")
    for k in range(4):
        c.job(f"a{k}", {"w": (1, {"cpu": "1", "memory": "1Gi"})}, queue="qa")
        c.job(f"b{k}", {"w": (2, {"cpu": "1", "memory": "2Gi"})}, queue="qb", min_member=1)
    # Pods asking less than the podgroup's minResources: Running, it still misses some.
    c.job("short", {"w": (1, {"cpu": "2", "memory": "2Gi"})}, queue="qa", pods=False)
    c.pods("short", {"w": (1, {"cpu": "1", "memory": "1Gi"})})
    placed = bound(c.schedule())
    c.schedule()
    for pod, node in sorted(placed.items()):
        c.add(ev.PodStarted(pod=pod, job=pod.rsplit("-", 2)[0], node=node))
        c.schedule()
    for k in range(4, 8):  # more than fits: some wait, the queues' shares matter
        c.job(f"b{k}", {"w": (2, {"cpu": "1", "memory": "2Gi"})}, queue="qb")
        c.schedule()
    for pod in sorted(placed)[:4]:
        job = pod.rsplit("-", 2)[0]
        c.add(ev.PodSucceeded(pod=pod, job=job))
        c.schedule()
    c.add(ev.PodDeleted(pod=sorted(placed)[-1], job=sorted(placed)[-1].rsplit("-", 2)[0]))
    c.schedule()
    c.schedule()
    assert c.summed >= 20, f"only {c.summed} settled podgroups were counted from the sums"
    assert c.held, "the nodes never held anything"
    assert c.missing, "no settled podgroup missed part of its minResources"
