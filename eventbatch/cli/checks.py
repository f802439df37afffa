"""What the read models know about jobs, queues and priority classes, for checking a request.

Where it sits: the command line's edge, between a user's request and the
log. Before ``apply``, ``job ...`` or ``queue ...`` append a request, they
ask this what the read models (caught up with the log) know: whether the
object exists, its phase or state, its current manifest, and whether a
request for it is on the log without an answer yet (the handlers may lag,
e.g. right after ``apply`` of a queue). The handlers stay the authority:
this only spares the log requests that are known to be refused.

A job's or queue's manifest and its pending requests come from its own
audit timeline, so a check costs what that object's history holds, never
the whole log.
"""

from __future__ import annotations

from dataclasses import dataclass

from eventbatch.log.codec import decode
from eventbatch.readmodels import ReadModelStore
from projections.views.rows import JobRow, QueueRow
from schemas.envelope import Envelope
from schemas.events import (
    JobCreated,
    JobRemoved,
    JobSubmitRefused,
    JobSubmitRequested,
    JobUpdated,
    QueueCreated,
    QueueCreateRequested,
    QueueDeleted,
    QueueRequestRefused,
    QueueUpdated,
)
from schemas.resources import Job, Queue

# Kubernetes defines these on every cluster.
BUILTIN_PRIORITY_CLASSES = frozenset({"system-cluster-critical", "system-node-critical"})


@dataclass
class JobKnown:
    key: str
    manifest: Job
    phase: str  # "" while the submission waits for the job controller's answer
    pending: bool = False


@dataclass
class QueueKnown:
    name: str
    manifest: Queue
    state: str  # "" while the creation waits for the queue controller's answer
    live_podgroups: int = 0
    pending: bool = False


class Knowledge:
    """Answers from one read-model store; every answer is read when asked."""

    def __init__(self, store: ReadModelStore) -> None:
        self.store = store

    async def _timeline(self, scope: str, name: str) -> list[Envelope]:
        out = []
        for position, data in await self.store.timeline_records(scope, name):
            item = decode(position, data)
            if isinstance(item, Envelope):
                out.append(item)
        return out

    async def job(self, key: str) -> JobKnown | None:
        """The job as the log has it: created, or submitted and not answered yet; None if neither."""
        known: JobKnown | None = None
        for env in await self._timeline("job", key):
            match env.payload:
                case JobSubmitRequested(manifest=manifest) if known is None or known.pending:
                    known = JobKnown(key, manifest, "", pending=True)
                case JobSubmitRefused() if known is not None and known.pending:
                    known = None
                case JobCreated(manifest=manifest) | JobUpdated(manifest=manifest):
                    known = JobKnown(key, manifest, known.phase if known and not known.pending else "Pending")
                case JobRemoved():
                    known = None
        if known is not None and not known.pending:
            rows: list[JobRow] = await self.store.rows("job_view", "key = ?", (key,))
            if rows:
                known.phase = rows[0].phase
        return known

    async def queue(self, name: str) -> QueueKnown | None:
        """The queue as the log has it: created, or asked for and not answered yet; None if neither."""
        known: QueueKnown | None = None
        for env in await self._timeline("queue", name):
            match env.payload:
                case QueueCreateRequested(manifest=manifest) if known is None:
                    known = QueueKnown(name, manifest, "", pending=True)
                case QueueRequestRefused(action="create") if known is not None and known.pending:
                    known = None
                case QueueCreated(manifest=manifest) | QueueUpdated(manifest=manifest):
                    known = QueueKnown(name, manifest, known.state if known and not known.pending else "")
                case QueueDeleted():
                    known = None
        if known is not None and not known.pending:
            rows: list[QueueRow] = await self.store.rows("queue_view", "name = ?", (name,))
            if rows:
                row = rows[0]
                known.state = row.state
                known.live_podgroups = row.pending + row.inqueue + row.running + row.unknown
        return known

    async def children(self, name: str) -> list[str]:
        rows: list[QueueRow] = await self.store.rows("queue_view", "parent = ?", (name,))
        return [r.name for r in rows if r.name != name]

    async def priority_class(self, name: str) -> bool:
        if name in BUILTIN_PRIORITY_CLASSES:
            return True
        return bool(await self.store.rows("priority_class_view", "name = ?", (name,)))
