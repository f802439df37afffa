"""``eventbatch why JOB``: why a job is pending or was evicted, from the recorded decisions.

Where it sits: a read-only explanation built from the log. It follows the
job's podgroup through the scheduler's decisions (enqueued, unschedulable
with reason and message, bound, evicted with reason, preemptor and rule)
and the job controller's phase changes, says where the job stands, quotes
the decision that keeps it there with its log position and rule, and says
what would let it run.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from eventbatch.cli import CliError
from eventbatch.follow import read_to_tail
from eventbatch.log.factory import open_log
from schemas.envelope import Envelope
from schemas.events import (
    JobCreated,
    JobPhaseChanged,
    JobSubmitRefused,
    PodBound,
    PodEvictionRequested,
    PodGroupEnqueued,
    PodGroupPhaseChanged,
    PodGroupUnschedulable,
    PodRequested,
    QueueStateChanged,
    ReservationMade,
    ReservationReleased,
)
from schemas.events.base import Event


def register(commands) -> None:
    why = commands.add_parser("why", help="explain why a job is pending or was evicted, from the log")
    why.add_argument("job", help="NAME or NAMESPACE/NAME (a job, a JobFlow, or the Job of a JobFlow's step)")
    why.set_defaults(run=_why)


E = TypeVar("E", bound=Event)


@dataclass(frozen=True)
class Seen(Generic[E]):
    """One event of the story and the record that holds it (its position and time)."""

    env: Envelope
    event: E


@dataclass
class Story:
    job: str
    queue: str = ""
    submitted: Envelope | None = None
    refused: Seen[JobSubmitRefused] | None = None
    phase: Seen[JobPhaseChanged] | None = None
    podgroup_phase: str = "Pending"
    enqueued: Envelope | None = None
    unschedulable: Seen[PodGroupUnschedulable] | None = None
    refused_since: Envelope | None = None  # the first refusal of the current wait
    # Waits the podgroup was admitted past: (the first refusal, the last refusal, the admission).
    waits: list[tuple[Envelope, Seen[PodGroupUnschedulable], Envelope]] = field(default_factory=list)
    pods: set[str] = field(default_factory=set)
    bound: dict[str, Envelope] = field(default_factory=dict)
    evictions: list[Seen[PodEvictionRequested]] = field(default_factory=list)
    queue_state: Seen[QueueStateChanged] | None = None
    reservations: list[Seen[ReservationMade | ReservationReleased]] = field(default_factory=list)

    def observe(self, env: Envelope) -> None:
        e = env.payload
        if isinstance(e, JobCreated) and e.job == self.job:
            self.submitted, self.queue = env, e.manifest.spec.queue or "default"
        elif isinstance(e, JobSubmitRefused) and e.job == self.job:
            self.refused = Seen(env, e)
        elif isinstance(e, JobPhaseChanged) and e.job == self.job:
            self.phase = Seen(env, e)
        elif isinstance(e, PodGroupEnqueued) and e.job == self.job:
            if self.unschedulable is not None and self.refused_since is not None:
                self.waits.append((self.refused_since, self.unschedulable, env))
            self.enqueued, self.podgroup_phase, self.unschedulable = env, "Inqueue", None
            self.refused_since = None
        elif isinstance(e, PodGroupPhaseChanged) and e.job == self.job:
            self.podgroup_phase = e.phase
            if e.phase in ("Running", "Completed"):
                self.unschedulable, self.refused_since = None, None
        elif isinstance(e, PodGroupUnschedulable) and e.job == self.job:
            if self.unschedulable is None:
                self.refused_since = env
            self.unschedulable = Seen(env, e)
        elif isinstance(e, PodRequested) and e.job == self.job:
            self.pods.add(e.pod)
        elif isinstance(e, PodBound) and e.pod in self.pods:
            self.bound[e.pod] = env
        elif isinstance(e, PodEvictionRequested) and e.pod in self.pods:
            self.evictions.append(Seen(env, e))
        elif isinstance(e, QueueStateChanged) and e.queue == self.queue:
            self.queue_state = Seen(env, e)
        elif isinstance(e, ReservationMade | ReservationReleased) and e.job == self.job:
            self.reservations.append(Seen(env, e))


HINTS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"the cluster has no nodes"), "add a node: eventbatch node add --name NAME --cpu 8 --memory 32Gi (or apply -f of v1 Nodes)"),
    (re.compile(r"Insufficient ([\w./-]+)"), "free {0} on a node (finish or preempt pods there) or add nodes with more {0}"),
    (re.compile(r"Too many pods"), "nodes are at their pod count limit: add nodes or raise their pods allocatable"),
    (re.compile(r"node selector|affinity", re.I), "no node carries the labels the pod requires: label a node or relax nodeSelector/affinity"),
    (re.compile(r"taint", re.I), "nodes are tainted: add a toleration to the pod template or untaint a node"),
    (re.compile(r"node\(s\) (were|was) unschedulable|cordon", re.I), "nodes are cordoned (unschedulable): uncordon one"),
    (re.compile(r"([\w./-]+) needs \S+ with \S+ available"),
     "the cluster has too little {0} free to admit the job: add nodes with {0}, or wait for running pods to finish"),
    (re.compile(r"\bqueue\b.*(overused|capability|deserved|share)|(overused|capability|deserved).*\bqueue\b", re.I),
     "its queue is at its share: wait for the queue's running jobs, or raise its weight/capability"),
    (re.compile(r"closed", re.I), "its queue is not Open: eventbatch queue operate QUEUE --action open"),
    (re.compile(r"gang|minAvailable|minMember|tasks in gang", re.I),
     "the gang needs all its minimum members placed at once: lower minAvailable or free room for the whole gang"),
]


def hints(text: str) -> list[str]:
    out: list[str] = []
    for pattern, hint in HINTS:
        for match in pattern.finditer(text):
            suggestion = hint.format(*match.groups()) if match.groups() else hint
            if suggestion not in out:
                out.append(suggestion)
    return out


def _at(env: Envelope) -> str:
    return f"#{env.position} ({env.recorded_at / 1000:.1f}s)"


def explain(story: Story) -> list[str]:
    if story.submitted is None:
        if story.refused is not None:
            return [f"job {story.job} was refused at {_at(story.refused.env)}: {story.refused.event.reason}"]
        raise CliError(f"job {story.job} was never submitted on this log")
    lines = [f"job {story.job} in queue {story.queue}, submitted at {_at(story.submitted)}"]
    phase = story.phase.event.phase if story.phase else "Pending"
    lines.append(f"job phase: {phase}" + (f" since {_at(story.phase.env)} ({story.phase.event.reason})" if story.phase and story.phase.event.reason else ""))
    lines.append(f"podgroup phase: {story.podgroup_phase}; {len(story.bound)}/{len(story.pods)} pod(s) bound")
    if story.queue_state is not None and story.queue_state.event.state != "Open":
        lines.append(f"queue {story.queue} is {story.queue_state.event.state} since {_at(story.queue_state.env)}")
    if story.unschedulable is not None:
        u = story.unschedulable.event
        lines.append(f"why: {u.reason}" + (f": {u.message}" if u.message else "") + f"  [rule {u.rule}, decision {_at(story.unschedulable.env)}]")
        suggestions = hints(f"{u.reason} {u.message}")
        for suggestion in suggestions:
            lines.append(f"to run: {suggestion}")
    elif story.podgroup_phase == "Pending" and story.enqueued is None:
        lines.append("why: not yet admitted to its queue (no scheduling decision recorded for it yet)")
    for first, refusal, admitted in story.waits:
        u = refusal.event
        lines.append(
            f"waited: refused from {_at(first)} until admitted at {_at(admitted)}: {u.reason}"
            + (f": {u.message}" if u.message else "")
            + f"  [rule {u.rule}]"
        )
    for reservation in story.reservations:
        r = reservation.event
        if isinstance(r, ReservationMade):
            lines.append(f"reserved: {', '.join(r.nodes)} held for it at {_at(reservation.env)}: {r.reason}  [rule {r.rule}]")
        else:
            lines.append(f"reservation released at {_at(reservation.env)}: {r.reason}  [rule {r.rule}]")
    for eviction in story.evictions:
        v = eviction.event
        by = f" by {v.preemptor}" if v.preemptor else ""
        lines.append(f"evicted: {v.pod} at {_at(eviction.env)}{by}: {v.reason}  [rule {v.rule}]")
    return lines


async def _why(args, settings) -> int:
    job = args.job if "/" in args.job else f"default/{args.job}"
    story = Story(job)
    from eventbatch.cli.why_jobflow import Flows

    flows = Flows()

    def observe(env: Envelope) -> None:
        story.observe(env)
        flows.observe(env)

    async with open_log(settings.log_url) as log:
        await read_to_tail(log, 0, observe)
    if (flow_lines := flows.explain(job)) is not None:  # a JobFlow, or a step with no Job yet
        sys.stdout.write("".join(line + "\n" for line in flow_lines))
        return 0
    for line in explain(story):
        sys.stdout.write(line + "\n")
    return 0
