"""``eventbatch why JOB`` keeps a job's wait for admission once it is admitted.

The story is read from a log the scheduler wrote (``tables.Cluster``: the real
handler, its decisions appended as the runtime does): a job refused by
enqueue (overcommit, the cluster too small) and admitted when a node joins.
While it waits ``why`` quotes the refusal; once admitted, the refusal is
history, kept as a ``waited:`` line as evictions are.
"""

from __future__ import annotations

from eventbatch.cli.why import Story, explain
from schemas import events as ev
from schemas.resources import Job, JobSpec, ObjectMeta
from tests.unit.scheduler.tables import Cluster


def _story(c: Cluster) -> list[str]:
    story = Story("default/urgent")
    for envelope in c.log:
        story.observe(envelope)
    return explain(story)


def test_why_keeps_the_refusal_a_job_waited_past_once_it_is_admitted() -> None:
    c = Cluster().node("n0", cpu="2", memory="8Gi").queue("default")
    manifest = Job(metadata=ObjectMeta(name="urgent", namespace="default"), spec=JobSpec(queue="default"))
    c.add(ev.JobCreated(job="default/urgent", manifest=manifest))
    c.job("urgent", {"main": (1, {"cpu": "4", "memory": "1Gi"})}, pods=False)
    c.schedule()
    waiting = _story(c)
    assert any(line.startswith("why: NotEnqueueable: resource in cluster is overused") for line in waiting), waiting
    assert not any(line.startswith("waited:") for line in waiting)
    refused_at = next(e.position for e in c.log if isinstance(e.payload, ev.PodGroupUnschedulable))

    c.node("n1", cpu="4", memory="8Gi")
    c.schedule()
    admitted_at = next(e.position for e in c.log if isinstance(e.payload, ev.PodGroupEnqueued))
    after = _story(c)
    assert not any(line.startswith("why:") for line in after), after
    waited = [line for line in after if line.startswith("waited:")]
    assert len(waited) == 1, after
    assert waited[0].startswith(f"waited: refused from #{refused_at} (")
    assert f"until admitted at #{admitted_at} (" in waited[0]
    assert "NotEnqueueable: resource in cluster is overused: cpu needs 4" in waited[0]
    assert waited[0].endswith("[rule enqueue/overcommit]")
