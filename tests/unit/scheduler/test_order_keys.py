"""Orders by key tuples decide what the order functions decide.

When every function of an order family (job, queue, task) comes with an order
key, the session sorts and heaps by one tuple per item instead of calling the
functions per comparison. The order must be the very one the functions give,
and a whole session must decide the same events either way: jobs of several
priorities, shares and gang states in queues of several weights, with sla
deadlines, and confs whose queue order has no key (``capacity``'s tree) next
to ones where every order has one.
"""

from __future__ import annotations

from functools import cmp_to_key

import pytest

from handlers.scheduler import load_conf
from handlers.scheduler.actions import ACTIONS
from handlers.scheduler.conf import DEFAULT_CONF_TEXT
from handlers.scheduler.session import Session
from schemas import events as ev
from tests.unit.scheduler.tables import Cluster

SLA = DEFAULT_CONF_TEXT.replace(
    "  - name: conformance\n", "  - name: conformance\n  - name: sla\n    arguments: {sla-waiting-time: 30s}\n"
)
CAPACITY = DEFAULT_CONF_TEXT.replace("  - name: proportion\n", "  - name: capacity\n")
CONFS = {"default": DEFAULT_CONF_TEXT, "sla": SLA, "capacity": CAPACITY}


def busy_cluster(conf: str) -> Cluster:
    """Two queues, jobs of three priorities, some holding pods (dominant shares and gang
    states differ), some with their own sla waiting time; more pods pending than fit."""
    c = Cluster(load_conf(conf)).queue("q0", weight=2).queue("q1", weight=1)
    c.priority_class("high", 100).priority_class("low", 1)
    c.nodes(6, cpu="8", memory="32Gi")
    for j in range(24):
        name = f"j{j:02d}"
        klass = ("high", "low", "")[j % 3]
        annotations = {"sla-waiting-time": "1s"} if j % 5 == 0 else None
        size = (1, 2, 3)[j % 3]
        c.job(
            name,
            {"w": (2 + j % 4, {"cpu": str(size), "memory": f"{size}Gi"})},
            queue=f"q{j % 2}",
            min_member=1 + j % 2,
            priority_class=klass,
            annotations=annotations,
            inqueue=j % 4 != 3,
        )
        if j % 4 == 0:  # some of its pods hold a node already: a share, and a gang maybe ready
            for k in range(1 + (j // 4) % 2):
                c.add(ev.PodBound(pod=f"default/{name}-w-{k}", job=f"default/{name}", node=f"n{(j + k) % 6}"))
    return c


@pytest.mark.parametrize("conf", list(CONFS), ids=list(CONFS))
def test_key_orders_equal_the_order_functions(conf):
    c = busy_cluster(CONFS[conf])
    ssn = Session(c.state(), load_conf(CONFS[conf]), now=c.clock + 1)
    jobs = list(ssn.jobs.values())
    assert isinstance(ssn.job_key(jobs[0]), tuple)  # every job order function here has a key
    assert sorted(jobs, key=ssn.job_key) == sorted(jobs, key=cmp_to_key(ssn.job_compare))
    queues = list(ssn.queues.values())
    assert isinstance(ssn.queue_key(queues[0]), tuple) is (conf != "capacity")
    assert sorted(queues, key=ssn.queue_key) == sorted(queues, key=cmp_to_key(ssn.queue_compare))
    tasks = [t for job in jobs for t in job.tasks]
    assert sorted(tasks, key=ssn.task_key) == sorted(tasks, key=cmp_to_key(ssn.task_compare))


def _decide(c: Cluster, conf: str, *, by_functions: bool) -> list[ev.Event]:
    parsed = load_conf(conf)
    ssn = Session(c.state(), parsed, now=c.clock + 1)
    if by_functions:
        ssn.job_key = cmp_to_key(ssn.job_compare)
        ssn.queue_key = cmp_to_key(ssn.queue_compare)
        ssn.task_key = cmp_to_key(ssn.task_compare)
    for action in parsed.actions:
        ACTIONS[action](ssn)
    return ssn.close()


@pytest.mark.parametrize("conf", list(CONFS), ids=list(CONFS))
def test_a_session_by_keys_decides_what_one_by_order_functions_decides(conf):
    c = busy_cluster(CONFS[conf])
    keyed = _decide(c, CONFS[conf], by_functions=False)
    assert sum(isinstance(d, ev.PodBound) for d in keyed) >= 10  # queues and jobs took turns
    assert keyed == _decide(c, CONFS[conf], by_functions=True)
