"""The read-model rows rendered from the handlers' own projections: the oracle
the views fold is checked against.

``projections.views`` keeps its own lean records; the scheduler decides on
``projections.cluster`` and the job controller on ``projections.jobs``. Folding
the same events through those and rendering rows from them
(``projections.views.render``) must give the rows the views wrote.
"""

from __future__ import annotations

from projections import cluster as cluster_fold
from projections import jobs as jobs_fold
from projections.views import ViewSet
from projections.views.render import Aggregates, job_row, node_row, podgroup_row, queue_row
from schemas.envelope import Envelope


class Oracle:
    def __init__(self) -> None:
        self.cluster = cluster_fold.initial()
        self.jobs = jobs_fold.initial_state()
        self.parents: dict[str, str] = {}

    def fold(self, env: Envelope) -> None:
        cluster_fold.fold(self.cluster, env)
        jobs_fold.fold(self.jobs, env)
        if env.type in ("QueueCreated", "QueueUpdated"):
            self.parents[env.payload.queue] = env.payload.manifest.spec.parent

    def rows(self, views: ViewSet) -> dict[str, dict]:
        """Every current row; a job's running time is measured up to its latest event, as the views saw it."""
        agg = Aggregates.of(self.cluster.podgroups, self.cluster.pods)
        return {
            "queues": {n: queue_row(q, self.parents.get(n, ""), agg) for n, q in sorted(self.cluster.queues.items())},
            "nodes": {n: node_row(node, agg) for n, node in sorted(self.cluster.nodes.items())},
            "podgroups": {n: podgroup_row(self.cluster, n) for n in sorted(self.cluster.podgroups)},
            "jobs": {k: job_row(self.jobs, k, views.jobs[k].last_at if k in views.jobs else 0)
                     for k in sorted(self.jobs.jobs)},
        }


def view_rows(views: ViewSet) -> dict[str, dict]:
    """Every current row of the views, by table and key (PodView and AuditView left out)."""
    changes = views.snapshot_rows()
    return {
        "queues": {r.name: r for r in changes.queues},
        "nodes": {r.name: r for r in changes.nodes},
        "podgroups": {r.name: r for r in changes.podgroups},
        "jobs": {r.key: r for r in changes.jobs},
    }
