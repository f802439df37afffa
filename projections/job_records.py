"""The per-job read model the job controller decides on: jobs, their pods, timers.

Where it sits: ``projections.jobs`` folds the log into these records; the job
lifecycle handler (``handlers.job``) reads them, and folds its own decisions
into a private copy (``JobRecord.clone``) while it works out a batch. The pod
counts here are Volcano's: a pod asked to be deleted counts as Terminating,
whatever phase it was in; a pod the controller requested but the cluster has
not reported yet counts as Pending.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from schemas.resources import Job, Resources, TaskSpec

# Job phases (Volcano's names).
PENDING = "Pending"
ABORTING = "Aborting"
ABORTED = "Aborted"
RUNNING = "Running"
RESTARTING = "Restarting"
COMPLETING = "Completing"
COMPLETED = "Completed"
TERMINATING = "Terminating"
TERMINATED = "Terminated"
FAILED = "Failed"

FINAL_PHASES = frozenset({COMPLETED, FAILED, TERMINATED})
LIVE_PHASES = frozenset({PENDING, RUNNING})

# Pod phases (Kubernetes' names).
POD_PENDING = "Pending"
POD_RUNNING = "Running"
POD_SUCCEEDED = "Succeeded"
POD_FAILED = "Failed"
POD_UNKNOWN = "Unknown"
POD_PHASES = (POD_PENDING, POD_RUNNING, POD_SUCCEEDED, POD_FAILED, POD_UNKNOWN)
TERMINATING_POD = "Terminating"  # asked to be deleted, whatever its phase


@dataclass
class JobPodRecord:
    """The job controller's record of one pod: one incarnation of an indexed pod, from its request
    to its deletion (the cluster state's pod, as the scheduler places it, is ``cluster_model.PodRecord``)."""

    key: str  # namespace/name
    name: str
    task: str
    index: int
    version: int  # the job version the pod was created for
    incarnation: int  # log position of the trigger that requested it
    requests: Resources = field(default_factory=dict)
    phase: str = POD_PENDING
    since: int = 0  # recorded_at of the last phase change
    created: bool = False
    node: str = ""
    ready: bool = False
    terminating: bool = False
    evicted: bool = False
    eviction: str = ""  # why the scheduler asked to evict it, if it did
    restarts: int = 0
    exit_code: int | None = None

    @property
    def finished(self) -> bool:
        return self.phase in (POD_SUCCEEDED, POD_FAILED)


@dataclass
class TimerRecord:
    """A timer the controller armed and has not seen fire or cancelled."""

    timer: str
    fire_at: int
    purpose: str  # "ttl" or "policy"
    event: str = ""
    pod: str = ""  # pod key for a policy timer
    incarnation: int = 0
    action: str = ""
    fired_position: int = -1  # position of its TimerFired, once it fired


@dataclass
class Counts:
    pending: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    terminating: int = 0
    unknown: int = 0


class TalliedPod(Protocol):
    """What ``PodTally`` reads of a pod: the job controller's ``JobPodRecord``, the read models' ``JobPod``."""

    task: str
    phase: str
    terminating: bool


class PodTally:
    """Volcano's pod counts of a job, kept in ``tally`` as pods come and go: the job controller's
    ``JobRecord`` and the read models' ``JobViewRecord`` count with these same methods."""

    __slots__ = ()
    manifest: Job
    tally: dict[str, dict[str, int]]  # task -> pod phase (or TERMINATING_POD) -> pods

    def _count(self, pod: TalliedPod, sign: int) -> None:
        states = self.tally.setdefault(pod.task, {})
        state = TERMINATING_POD if pod.terminating else pod.phase
        states[state] = states.get(state, 0) + sign

    def counts(self, task: str | None = None) -> Counts:
        """Volcano's pod counts for the whole job, or for one task."""
        total: dict[str, int] = {}
        for name, states in self.tally.items():
            if task is None or name == task:
                for state, n in states.items():
                    total[state] = total.get(state, 0) + n
        return Counts(
            pending=total.get(POD_PENDING, 0),
            running=total.get(POD_RUNNING, 0),
            succeeded=total.get(POD_SUCCEEDED, 0),
            failed=total.get(POD_FAILED, 0),
            terminating=total.get(TERMINATING_POD, 0),
            unknown=total.get(POD_UNKNOWN, 0),
        )

    def task_phase_counts(self) -> dict[str, dict[str, int]]:
        """Pods per task per pod phase (terminating pods left out), tasks in spec order."""
        out: dict[str, dict[str, int]] = {}
        for task in self.manifest.spec.tasks:
            states = self.tally.get(task.name, {})
            phases = {p: states[p] for p in POD_PHASES if states.get(p)}
            if phases:
                out[task.name] = phases
        return out


@dataclass
class JobRecord(PodTally):
    """The job controller's record of one job (``...Record``: a fold's state of one object)."""

    key: str
    manifest: Job
    submitted_position: int
    submitted_at: int
    phase: str = ""
    reason: str = ""
    message: str = ""
    transition_at: int = 0
    phase_action: str = ""  # the action that caused the current phase
    phase_task: str = ""  # the task it targeted, for RestartTask/RestartPod
    retry_count: int = 0
    version: int = 0
    task_retries: dict[str, int] = field(default_factory=dict)
    podgroup: str = ""
    podgroup_created: bool = False
    enqueued: bool = False
    pods: dict[str, JobPodRecord] = field(default_factory=dict)
    timers: dict[str, TimerRecord] = field(default_factory=dict)
    commands: dict[str, int] = field(default_factory=dict)  # command id -> position it was accepted at
    conditions: list[tuple[str, int]] = field(default_factory=list)
    running_since: int | None = None
    finished_at: int | None = None
    resources: dict[str, str] = field(default_factory=dict)  # "kind/ns/name" -> plugin
    previous_manifest: Job | None = None
    last_deleted: tuple[int, JobPodRecord] | None = None  # (position, pod) of the last PodDeleted
    # Pods per task per state (a pod phase, or TERMINATING), kept up to date by
    # put_pod/drop_pod/recount so counting never walks every pod.
    tally: dict[str, dict[str, int]] = field(default_factory=dict)
    namespace: str = field(init=False)
    name: str = field(init=False)

    def __post_init__(self) -> None:
        self.namespace, self.name = self.key.split("/", 1)

    def clone(self) -> JobRecord:
        """A copy the handler may change through ``apply_decision`` (manifests are immutable).

        Every field as it is (what ``dataclasses.replace`` would give, without running
        ``__init__`` again), the containers copied."""
        copy = object.__new__(type(self))
        fields = copy.__dict__
        fields.update(self.__dict__)
        fields["task_retries"] = dict(self.task_retries)
        # Pod and timer records are shared: a decision replaces them, never changes them.
        fields["pods"] = dict(self.pods)
        fields["timers"] = dict(self.timers)
        fields["commands"] = dict(self.commands)
        fields["conditions"] = list(self.conditions)
        fields["resources"] = dict(self.resources)
        fields["tally"] = {task: dict(states) for task, states in self.tally.items()}
        return copy

    # --- pods, always changed through these so the tally stays right ---------------

    def put_pod(self, pod: JobPodRecord) -> None:
        """Add a pod, or replace the record of one (decisions never change a record)."""
        old = self.pods.get(pod.key)
        if old is not None:
            self._count(old, -1)
        self.pods[pod.key] = pod
        self._count(pod, +1)

    def drop_pod(self, key: str) -> JobPodRecord:
        pod = self.pods.pop(key)
        self._count(pod, -1)
        return pod

    def recount(self, pod: JobPodRecord, change: Callable[[], None]) -> None:
        """Change a pod record in place (observations, on the projection's own copy)."""
        self._count(pod, -1)
        change()
        self._count(pod, +1)

    def task_pod_count(self, task: str) -> int:
        return sum(self.tally.get(task, {}).values())

    def task(self, name: str) -> TaskSpec | None:
        for task in self.manifest.spec.tasks:
            if task.name == name:
                return task
        return None

    def total_replicas(self) -> int:
        return sum(t.replicas for t in self.manifest.spec.tasks)

    def pods_of(self, task: str) -> list[JobPodRecord]:
        return [p for p in self.pods.values() if p.task == task]


def task_min_available(task: TaskSpec) -> int:
    """A task's own minimum: its ``minAvailable``, or all its replicas."""
    return task.replicas if task.min_available is None else task.min_available


@dataclass
class JobsState:
    """Everything the job controller knows, folded from the log."""

    jobs: dict[str, JobRecord] = field(default_factory=dict)
    pod_owner: dict[str, str] = field(default_factory=dict)  # pod key -> job key
    podgroup_owner: dict[str, str] = field(default_factory=dict)
    timer_owner: dict[str, str] = field(default_factory=dict)
    priority_classes: dict[str, int] = field(default_factory=dict)
    global_default_priority: int = 0
    # The controller answers triggers in log order, so its decisions' (trigger,
    # index) only grow; one that does not is a duplicate of an answered one.
    last_answer: tuple[int, int] = (-1, -1)
    deleted_owner: tuple[int, str] | None = None  # (position, job) of the last PodDeleted folded
    ignored: int = 0  # stale or duplicate events, counted
    now: int = 0  # recorded_at of the latest event folded

    def priority_of(self, class_name: str) -> int:
        if not class_name:
            return self.global_default_priority
        return self.priority_classes.get(class_name, 0)
