"""The scheduler as a handler: one session per ``SchedulingRequested``.

Where it sits: driven by the runtime like every handler (``handlers.base``).
It folds the log with the cluster projection (``projections.cluster``) and
answers each ``SchedulingRequested`` with the decisions of one session, which
the runtime appends as one batch. ``is_relevant`` tells the runtime's
scheduling trigger which events can change a decision, so that a session is
requested after them.
"""

from __future__ import annotations

from collections.abc import Callable

from handlers.scheduler import session
from handlers.scheduler.actions import ACTIONS
from handlers.scheduler.conf import DEFAULT_CONF, ConfError, SchedulerConf, duration_argument_ms
from handlers.scheduler.conf import load_conf as parse_conf
from handlers.scheduler.plugins import PLUGINS
from handlers.scheduler.session import Session
from projections import cluster
from projections.cluster_model import ClusterState
from schemas.envelope import Envelope
from schemas.events import (
    HyperNodeAdded,
    HyperNodeRemoved,
    HyperNodeUpdated,
    JobRemoved,
    NodeAdded,
    NodeRemoved,
    NodeUpdated,
    PodBindFailed,
    PodDeleted,
    PodDeletionRequested,
    PodEvicted,
    PodFailed,
    PodGroupCreated,
    PodGroupDeleted,
    PodGroupPhaseChanged,
    PodGroupUpdated,
    PodRequested,
    PodSucceeded,
    PriorityClassAdded,
    PriorityClassRemoved,
    QueueCreated,
    QueueDeleted,
    QueueStateChanged,
    QueueUpdated,
    RuntimeClassAdded,
    RuntimeClassRemoved,
    SchedulingRequested,
)
from schemas.events.base import Event

# Events that can change what a session decides: capacity, queues, priority
# classes, podgroups and pods, HyperNodes (network domains) (not the scheduler's own decisions, and not
# observations that change nothing a session reads, such as PodStarted).
# Matched by the payload's own class.
RELEVANT: frozenset[type[Event]] = frozenset(
    {
        NodeAdded,
        NodeUpdated,
        NodeRemoved,
        QueueCreated,
        QueueUpdated,
        QueueStateChanged,
        QueueDeleted,
        PriorityClassAdded,
        PriorityClassRemoved,
        RuntimeClassAdded,
        RuntimeClassRemoved,
        PodGroupCreated,
        PodGroupUpdated,
        PodGroupDeleted,
        PodRequested,
        PodSucceeded,
        PodFailed,
        PodEvicted,
        PodDeleted,
        PodBindFailed,
        PodDeletionRequested,
        JobRemoved,
        HyperNodeAdded,
        HyperNodeUpdated,
        HyperNodeRemoved,
    }
)


ACTION_ARGUMENTS: dict[str, set[str]] = {"enqueue": {"inqueue-timeout"}, "reserve": {"starvation"}}


def is_relevant(envelope: Envelope) -> bool:
    """Whether ``envelope`` can change a scheduling decision.

    Of the scheduler's own decisions only a podgroup sent back to Pending
    counts: the next session may admit it again.
    """
    payload = envelope.payload
    if type(payload) is PodGroupPhaseChanged:
        return payload.phase == "Pending"
    return type(payload) in RELEVANT


def check_conf(conf: SchedulerConf) -> SchedulerConf:
    """Build every plugin once so that bad plugin arguments fail now, not in a session."""
    for t, tier in enumerate(conf.tiers):
        for option in tier.plugins:
            PLUGINS[option.name](option, t)
    for action, arguments in conf.configurations.items():
        unknown = sorted(set(arguments) - ACTION_ARGUMENTS.get(action, set()))
        if unknown:
            known = ", ".join(sorted(ACTION_ARGUMENTS.get(action, set()))) or "none"
            raise ConfError(f"configurations: unknown argument(s) of {action}: {', '.join(unknown)} (known: {known})")
    duration_argument_ms(conf.action_arguments("enqueue").get("inqueue-timeout", 0))
    duration_argument_ms(conf.action_arguments("reserve").get("starvation", 0))
    return conf


def load_conf(text: str) -> SchedulerConf:
    """Parse and check a Volcano scheduler conf; ``ConfError`` says what is wrong."""
    return check_conf(parse_conf(text))


def load_conf_file(path: str) -> SchedulerConf:
    with open(path, encoding="utf-8") as handle:
        return load_conf(handle.read())


StepHook = Callable[[str], None]
"""Told each step of a session as it ends: "open", then each action's name, then "close".
For instruments outside the pipeline (the metrics' timings); it must not touch the state."""


def run_session(state: ClusterState, conf: SchedulerConf, now: int, on_step: StepHook | None = None) -> list[Event]:
    """One session's decisions. A session with nothing to admit or place (``nothing_to_place``:
    say a pod finished and no pod waits) decides only its close's phase changes: those are
    decided without opening the plugins or running the actions, which would find nothing to do."""
    snap = session.build(state)
    if session.nothing_to_place(snap, conf, now):
        if on_step is not None:
            on_step("open")
            for action in conf.actions:
                on_step(action)
        events = session.phase_changes(snap.jobs, {})
        if on_step is not None:
            on_step("close")
        return events
    ssn = Session(state, conf, now, snap)
    if on_step is not None:
        on_step("open")
    for action in conf.actions:
        ACTIONS[action](ssn)
        if on_step is not None:
            on_step(action)
    events = ssn.close()
    if on_step is not None:
        on_step("close")
    return events


class SchedulerHandler:
    name = "scheduler"

    def __init__(self, conf: SchedulerConf | str | None = None) -> None:
        if conf is None:
            conf = DEFAULT_CONF
        elif isinstance(conf, str):
            conf = load_conf(conf)
        self.conf = check_conf(conf)
        self.on_step: StepHook | None = None  # see run_session; None in every handler that decides alone

    def initial(self) -> ClusterState:
        return cluster.initial()

    def fold(self, state: ClusterState, envelope: Envelope) -> ClusterState:
        return cluster.fold(state, envelope)

    def decide(self, state: ClusterState, envelope: Envelope) -> list[Event]:
        if not isinstance(envelope.payload, SchedulingRequested):
            return []
        return run_session(state, self.conf, envelope.payload.now, self.on_step)
