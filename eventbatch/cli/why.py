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


def register(commands) -> None:
    why = commands.add_parser("why", help="explain why a job is pending or was evicted, from the log")
    why.add_argument("job", help="NAME or NAMESPACE/NAME")
    why.set_defaults(run=_why)


@dataclass
class Story:
    job: str
    queue: str = ""
    submitted: Envelope | None = None
    refused: Envelope | None = None
    phase: Envelope | None = None
    podgroup_phase: str = "Pending"
    enqueued: Envelope | None = None
    unschedulable: Envelope | None = None
    pods: set[str] = field(default_factory=set)
    bound: dict[str, Envelope] = field(default_factory=dict)
    evictions: list[Envelope] = field(default_factory=list)
    queue_state: Envelope | None = None
    reservations: list[Envelope] = field(default_factory=list)

    def observe(self, env: Envelope) -> None:
        e = env.payload
        if isinstance(e, JobCreated) and e.job == self.job:
            self.submitted, self.queue = env, e.manifest.spec.queue or "default"
        elif isinstance(e, JobSubmitRefused) and e.job == self.job:
            self.refused = env
        elif isinstance(e, JobPhaseChanged) and e.job == self.job:
            self.phase = env
        elif isinstance(e, PodGroupEnqueued) and e.job == self.job:
            self.enqueued, self.podgroup_phase, self.unschedulable = env, "Inqueue", None
        elif isinstance(e, PodGroupPhaseChanged) and e.job == self.job:
            self.podgroup_phase = e.phase
            if e.phase in ("Running", "Completed"):
                self.unschedulable = None
        elif isinstance(e, PodGroupUnschedulable) and e.job == self.job:
            self.unschedulable = env
        elif isinstance(e, PodRequested) and e.job == self.job:
            self.pods.add(e.pod)
        elif isinstance(e, PodBound) and e.pod in self.pods:
            self.bound[e.pod] = env
        elif isinstance(e, PodEvictionRequested) and e.pod in self.pods:
            self.evictions.append(env)
        elif isinstance(e, QueueStateChanged) and e.queue == self.queue:
            self.queue_state = env
        elif isinstance(e, ReservationMade | ReservationReleased) and e.job == self.job:
            self.reservations.append(env)


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
            return [f"job {story.job} was refused at {_at(story.refused)}: {story.refused.payload.reason}"]
        raise CliError(f"job {story.job} was never submitted on this log")
    lines = [f"job {story.job} in queue {story.queue}, submitted at {_at(story.submitted)}"]
    phase = story.phase.payload.phase if story.phase else "Pending"
    lines.append(f"job phase: {phase}" + (f" since {_at(story.phase)} ({story.phase.payload.reason})" if story.phase and story.phase.payload.reason else ""))
    lines.append(f"podgroup phase: {story.podgroup_phase}; {len(story.bound)}/{len(story.pods)} pod(s) bound")
    if story.queue_state is not None and story.queue_state.payload.state != "Open":
        lines.append(f"queue {story.queue} is {story.queue_state.payload.state} since {_at(story.queue_state)}")
    if story.unschedulable is not None:
        u = story.unschedulable.payload
        lines.append(f"why: {u.reason}" + (f": {u.message}" if u.message else "") + f"  [rule {u.rule}, decision {_at(story.unschedulable)}]")
        suggestions = hints(f"{u.reason} {u.message}")
        for suggestion in suggestions:
            lines.append(f"to run: {suggestion}")
    elif story.podgroup_phase == "Pending" and story.enqueued is None:
        lines.append("why: not yet admitted to its queue (no scheduling decision recorded for it yet)")
    for env in story.reservations:
        e = env.payload
        if isinstance(e, ReservationMade):
            lines.append(f"reserved: {', '.join(e.nodes)} held for it at {_at(env)}: {e.reason}  [rule {e.rule}]")
        else:
            lines.append(f"reservation released at {_at(env)}: {e.reason}  [rule {e.rule}]")
    for env in story.evictions:
        e = env.payload
        by = f" by {e.preemptor}" if e.preemptor else ""
        lines.append(f"evicted: {e.pod} at {_at(env)}{by}: {e.reason}  [rule {e.rule}]")
    return lines


async def _why(args, settings) -> int:
    job = args.job if "/" in args.job else f"default/{args.job}"
    story = Story(job)
    async with open_log(settings.log_url) as log:
        await read_to_tail(log, 0, story.observe)
    for line in explain(story):
        sys.stdout.write(line + "\n")
    return 0
