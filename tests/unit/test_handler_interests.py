"""Handlers skip the events they never read: exactly, and the log says so.

Where it sits: checks ``Handler.interests`` (``handlers.base``) and the runner's
skipping of the other event types (``eventbatch.runtime.HandlerRunner``).
Scenarios that give every handler something to hold (queues closed while
their jobs run, nodes, HyperNodes, operators' PodGroups and plain pods, a
JobFlow, a CronJob) run through the real pipeline on an in-memory log. Then:

- per handler, on the states its runner passes through in those runs, every
  event type of the schema outside its interests, naming the objects it
  holds, leaves the state as it was (its snapshot encoding, before and after)
  and is answered with nothing;
- the same scenarios run with handlers that declare no interests (the same
  handlers' fold and decide, every event offered) write the same log, byte
  for byte, while the runners with interests did skip events.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml

from eventbatch.app import Pipeline, build_pipeline, cluster_handlers, default_handlers
from eventbatch.clock import VirtualClock
from eventbatch.follow import read_to_tail
from eventbatch.log.factory import open_log
from eventbatch.settings import Settings
from eventbatch.sim.inputs import cluster_events, step_events
from eventbatch.snapshots import ComponentSnapshot, dumps
from handlers.base import Handler, interests_of
from handlers.scheduler import is_relevant
from schemas.envelope import Envelope, encode_record
from schemas.events import REGISTRY
from schemas.events.base import Event
from schemas.scenario import load_scenario

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
HORIZON_MS = 24 * 3_600_000


def _job(name: str, queue: str, runs: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch.volcano.sh/v1alpha1", "kind": "Job", "metadata": {"name": name, "namespace": "default"},
        "spec": {"queue": queue, "minAvailable": 2, "tasks": [{
            "name": "w", "replicas": 2, "template": {
                "metadata": {"annotations": {"eventbatch.io/sim-duration": runs}},
                "spec": {"restartPolicy": "Never",
                         "containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": "1"}}}]}},
        }]},
    }


def _cron_and_closing_queue(folder: Path) -> Path:
    """A CronJob every 5 minutes, and a queue closed while its jobs run (Closing, then Closed)."""
    cron = {
        "apiVersion": "batch.volcano.sh/v1alpha1", "kind": "CronJob", "metadata": {"name": "tick", "namespace": "default"},
        "spec": {"schedule": "*/5 * * * *", "successfulJobsHistoryLimit": 1, "jobTemplate": {"spec": {
            "minAvailable": 1, "tasks": [{"name": "t", "replicas": 1, "template": {
                "metadata": {"annotations": {"eventbatch.io/sim-duration": "2m"}},
                "spec": {"restartPolicy": "Never",
                         "containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": "1"}}}]}}}],
        }}},
    }
    queues = [
        {"apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "Queue", "metadata": {"name": name}, "spec": {"weight": 1}}
        for name in ("default", "batch")
    ]
    raw = {
        "nodes": [{"prefix": "n", "count": 3, "allocatable": {"cpu": 8, "memory": "32Gi"}}],
        "queues": queues,
        "workload": [
            {"at": "0s", "apply": cron},
            {"at": "0s", "apply": _job("a", "batch", "3m")},
            {"at": "30s", "apply": _job("b", "batch", "5m")},
            {"at": "1m", "command": {"action": "CloseQueue", "queue": "batch"}},
            {"at": "2m", "apply": _job("c", "default", "1m")},
        ],
        "until": "20m",
    }
    path = folder / "cron-and-closing-queue.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


class NoInterests:
    """``handler`` with every event offered to it: its own fold and decide, no ``interests``."""

    def __init__(self, handler: Handler[Any]) -> None:
        self.handler = handler
        self.name = handler.name
        if getattr(handler, "position_free_decisions", False):
            self.position_free_decisions = True

    def initial(self) -> Any:
        return self.handler.initial()

    def fold(self, state: Any, envelope: Envelope) -> Any:
        return self.handler.fold(state, envelope)

    def decide(self, state: Any, envelope: Envelope) -> list[Event]:
        return self.handler.decide(state, envelope)


def _handlers() -> list[Handler[Any]]:
    return cluster_handlers("sim", default_handlers(Settings()))


async def _drive(scenario_path: Path, handlers: Sequence[Handler[Any]]) -> tuple[list[Envelope], Pipeline]:
    """The scenario through the pipeline on a virtual clock, as ``eventbatch simulate`` steps it."""
    scenario = load_scenario(scenario_path)
    clock = VirtualClock()
    async with open_log("memory://") as log:
        pipeline = build_pipeline(log=log, clock=clock, handlers=handlers, settings=Settings(),
                                  is_relevant=is_relevant, cluster="sim")
        steps = list(scenario.steps)

        async def append(events: list[Event]) -> None:
            if events:
                await log.append([Envelope.wrap(e, recorded_at=clock.now()) for e in events])

        initial = cluster_events(scenario)
        while steps and steps[0].at_ms <= clock.now():
            initial += step_events(steps.pop(0))
        await append(initial)
        limit = scenario.until_ms if scenario.until_ms is not None else HORIZON_MS
        while True:
            await pipeline.settle()
            moments = [m for m in (pipeline.next_deadline(), steps[0].at_ms if steps else None) if m is not None]
            if not moments or min(moments) > limit:
                break
            clock.advance_to(max(min(moments), clock.now()))
            batch: list[Event] = []
            while steps and steps[0].at_ms <= clock.now():
                batch += step_events(steps.pop(0))
            await append(batch)
        events: list[Envelope] = []
        await read_to_tail(log, 0, events.append)
    return events, pipeline


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("scenarios")
    return [
        _cron_and_closing_queue(folder),
        EXAMPLES / "jobflow.yaml",
        EXAMPLES / "operator-podgroups.yaml",
        EXAMPLES / "network-topology.yaml",
    ]


@pytest.fixture(scope="module")
def logs(scenarios: list[Path]) -> list[list[Envelope]]:
    import asyncio

    return [asyncio.run(_drive(path, _handlers()))[0] for path in scenarios]


# --- every type a handler skips leaves its state and answers nothing ------------------------

NAMED = ("job", "pod", "podgroup", "node", "queue", "owner", "cronjob", "jobflow", "template", "hypernode", "timer",
         "name")


@cache
def _required(cls: type[Event]) -> tuple[tuple[str, str], ...]:
    """The required fields of ``cls`` and the JSON type of each."""
    definition = msgspec.json.schema(cls)["$defs"][cls.__name__]
    return tuple(
        (field, definition["properties"][field].get("type", "object"))
        for field in definition.get("required", [])
        if field != "type"
    )


def _sample(cls: type[Event], names: dict[str, str]) -> Event:
    """An instance of ``cls``: its required fields at the zero of their type, except the names
    of objects (job, pod, queue, ...), which are those of the latest such objects on the log."""
    zero = {"string": "x", "integer": 1, "boolean": False, "array": [], "object": {}, "number": 1}
    data: dict[str, object] = {"type": cls.__name__}
    for field, kind in _required(cls):
        data[field] = names[field] if kind == "string" and field in names else zero.get(kind, {})
    return msgspec.convert(data, cls)


def _encoded(handler: Handler[Any], state: Any) -> bytes:
    return dumps(ComponentSnapshot(handler.name, 0, state, -1))


def _check_skipped(handler: Handler[Any], state: Any, names: dict[str, str], at: int, now: int) -> int:
    """Every type outside the handler's interests, naming ``names``: no change, no answer."""
    interests = interests_of(handler)
    assert interests is not None
    checked = 0
    before = _encoded(handler, state)
    for tag, cls in sorted(REGISTRY.items()):
        if tag in interests:
            continue
        envelope = Envelope.wrap(_sample(cls, names), recorded_at=now).at(at)
        assert handler.decide(state, envelope) == [], f"{handler.name} answers {tag}"
        state = handler.fold(state, envelope)
        assert _encoded(handler, state) == before, f"{handler.name}'s fold of {tag} changes its state"
        checked += 1
    return checked


SKIPPING = sorted(h.name for h in _handlers() if interests_of(h) is not None)


@pytest.mark.parametrize("name", SKIPPING)
def test_every_type_outside_a_handlers_interests_leaves_its_state_and_is_answered_with_nothing(
    logs: list[list[Envelope]], name: str
) -> None:
    (handler,) = [h for h in _handlers() if h.name == name]
    interests = interests_of(handler)
    assert interests is not None
    assert interests <= set(REGISTRY), "an interest that is no event type"
    held = 0  # checks made on a state that holds something
    for events in logs:
        answers: dict[int, list[Envelope]] = {}
        for envelope in events:
            if envelope.causation is not None and envelope.causation.handler == name:
                answers.setdefault(envelope.causation.position, []).append(envelope)
        state = handler.initial()
        empty = _encoded(handler, state)
        names: dict[str, str] = {}
        # After events the handler reads (its state just changed, or a request was answered),
        # and every so often: 40 such points at most per run, spread over it.
        points = [e.position for e in events if e.type in interests or e.position % 25 == 0]
        checkpoints = set(points[:: max(len(points) // 40, 1)])
        for envelope in events:
            for field in NAMED:
                value = getattr(envelope.payload, field, None)
                if isinstance(value, str) and value:
                    names[field] = value
            if envelope.causation is not None and envelope.causation.handler == name:
                continue  # folded right after its trigger, as the runner does
            state = handler.fold(state, envelope)
            for decision in answers.get(envelope.position, []):
                state = handler.fold(state, decision)
            if envelope.position in checkpoints:
                count = _check_skipped(handler, state, names, envelope.position + 1, envelope.recorded_at)
                if _encoded(handler, state) != empty:
                    held += count
    assert held > 0, f"no run left {name} holding anything to check against"


# --- the runner: same log with and without interests -----------------------------------------


async def test_the_pipeline_writes_the_same_log_byte_for_byte_with_interests_as_without(scenarios: list[Path]) -> None:
    skipped: dict[str, int] = {}
    for path in scenarios:
        with_interests, pipeline = await _drive(path, _handlers())
        without, plain = await _drive(path, [NoInterests(h) for h in _handlers()])
        assert [encode_record(e) for e in with_interests] == [encode_record(e) for e in without], path.name
        assert all(r.stats.skipped == 0 for r in plain.runners)
        for runner in pipeline.runners:
            skipped[runner.name] = skipped.get(runner.name, 0) + runner.stats.skipped
    # Every handler with interests skipped events on these runs; the others skipped none.
    assert {name for name, count in skipped.items() if count} == set(SKIPPING)
