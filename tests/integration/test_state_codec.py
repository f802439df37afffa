"""The state codec (``eventbatch.statecodec``): every real state round-trips, nothing else runs.

Every example scenario runs through the real pipeline (queue and job
controllers, scheduler, timers, scheduling trigger, simulated kubelet) with
a snapshot store, restarted midway from the snapshots: the log must be the
one of an uninterrupted run, and every handler's and component's state and
the read models' fold state must come back equal from its bytes. Then the
codec itself: the containers states use, shared objects kept shared, and
bytes that name anything but a record class of the project refused without
importing or calling it.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import pickle
import sqlite3
import sys
from collections import Counter
from pathlib import Path

import msgspec
import pytest

from eventbatch import statecodec
from eventbatch.log.memory import MemoryLog
from eventbatch.readmodels import Projector, ReadModelStore
from eventbatch.readmodels.store import BadViewsStore, OldViewsStore
from eventbatch.snapshots import BadSnapshot, ComponentSnapshot, OldSnapshotStore, SnapshotStore
from handlers.job import JobHandler
from handlers.queue import QueueHandler
from handlers.scheduler import SchedulerHandler, load_conf
from schemas.scenario import load_scenario
from tests.integration.test_replay import canonical, records
from tests.integration.test_replay import drive as replay_drive

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


def handlers_of(scenario):
    conf = load_conf(scenario.scheduler_conf) if scenario.scheduler_conf else None
    return [QueueHandler(), JobHandler(), SchedulerHandler(conf) if conf is not None else SchedulerHandler()]


async def drive(scenario, log, *, snapshots=None, every=None, restart_after=None):
    """The scenario through the pipeline (``test_replay.drive``) with its own scheduler
    conf; with ``restart_after`` a new pipeline (a new process) takes over from the
    snapshots after that many settles. Returns the last pipeline and, by component, the
    state it held at the restart and the state loaded back from its snapshot (both canonical)."""
    saved: dict[str, object] = {}

    async def checkpoint(current) -> None:
        await current.checkpoint()  # what the next process loads, against what this one holds
        saved.update({name: (canonical(state), canonical((await snapshots.load(name)).state))
                      for name, state in states(current).items()})

    final = await replay_drive(scenario, log, snapshots=snapshots, every=every, restart_after=restart_after,
                               handlers_of=handlers_of, before_restart=checkpoint)
    drive.rounds = replay_drive.rounds
    return final, saved


def states(pipeline) -> dict[str, object]:
    """Every handler's state and every snapshotted component's state, by name."""
    found: dict[str, object] = {runner.name: runner.state for runner in pipeline.runners}
    for component in pipeline.components():
        if component.keeps_snapshots:
            found[component.name] = {a: getattr(component, a) for a in component.STATE}
    return found


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
async def test_every_example_restarted_from_its_snapshots_writes_the_log_of_an_uninterrupted_run(
    example: Path, tmp_path: Path
) -> None:
    scenario = load_scenario(str(example))
    async with MemoryLog() as reference:
        uninterrupted, _ = await drive(scenario, reference)
        expected = await records(reference)
        assert len(expected) > 30

    async with MemoryLog() as log, SnapshotStore(tmp_path / "snapshots.db") as store:
        final, at_restart = await drive(scenario, log, snapshots=store, every=25, restart_after=(drive.rounds + 1) // 2)
        assert await records(log) == expected
        # What the restarted pipeline loaded is what the first one held, component by component.
        names = set(final.snapshot_names())
        assert set(at_restart) == {name for name, keeps in final.snapshot_names().items() if keeps}
        assert {"queue-controller", "job-controller", "scheduler", "timers", "sim"} <= names
        for name, (held, loaded) in at_restart.items():
            assert loaded == held, name
        # The final states, and the read models' fold, come back equal from their bytes.
        for name, state in states(final).items():
            assert canonical(statecodec.decode(statecodec.encode(state))) == canonical(state), name
        for name, state in states(uninterrupted).items():
            assert canonical(states(final)[name]) == canonical(state), name
        async with ReadModelStore(tmp_path / "views.db") as views:
            projector = Projector(log=log, store=views, snapshot_every=None)
            await projector.catch_up()
            await projector.checkpoint()
            rows = await views.all_rows()
        async with ReadModelStore(tmp_path / "views.db") as views:
            resumed = Projector(log=log, store=views)
            await resumed.catch_up()
            assert resumed.stats.resumed_from == await log.end_position() - 1
            assert canonical(resumed.views) == canonical(projector.views)
            assert await views.all_rows() == rows


# --- the codec --------------------------------------------------------------------


class Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: tuple


@dataclasses.dataclass
class Box:
    items: list
    tags: set


class Line(msgspec.Struct, frozen=True):
    a: Point
    b: Point


class Slotted:
    __slots__ = ("name", "value")


for cls in (Colour, Point, Box, Line, Slotted):
    statecodec.register(cls)


def test_the_containers_states_use_come_back_equal() -> None:
    slotted = Slotted()
    slotted.name, slotted.value = "s", {("a", 1): frozenset({1, 2})}
    state = {
        "ints": [0, -1, 2**63 - 1, -(2**63), 2**64 - 1, 2**64, -(2**200), 10**5000],
        "keys": {1: "one", ("a", 2): "tuple", None: "none", 2.5: "float", Colour.RED: "enum"},
        "sets": (set(), {"a", "b"}, frozenset({("x", 1)})),
        "counter": Counter({"a": 3, "b": 0}),
        "records": [Point(1, (2, 3)), Line(Point(0, ()), Point(1, ("z",))), slotted],
        "bytes": b"\x80\x05 not a pickle",
        "scalars": [True, False, None, 1.5, float("inf"), "", "x" * 100],
        "empty": [[], {}, ()],
    }
    restored = statecodec.decode(statecodec.encode(state))
    assert canonical(restored) == canonical(state)
    assert restored["ints"] == state["ints"] and restored["keys"] == state["keys"]
    assert type(restored["counter"]) is Counter and restored["counter"] == state["counter"]
    assert type(restored["sets"][2]) is frozenset and type(restored["records"][1]) is Line
    assert restored["records"][0] == Point(1, (2, 3)) and restored["records"][1] == state["records"][1]
    assert restored["keys"][Colour.RED] == "enum" and next(iter(k for k in restored["keys"] if isinstance(k, Colour))) is Colour.RED


def test_an_object_held_twice_is_restored_as_one_object() -> None:
    shared = Box(items=[1], tags={"t"})
    cyclic: list = []
    cyclic.append(cyclic)
    state = {"a": shared, "b": [shared, shared.items], "cycle": cyclic}
    restored = statecodec.decode(statecodec.encode(state))
    assert restored["a"] is restored["b"][0] and restored["a"].items is restored["b"][1]
    restored["a"].items.append(2)
    assert restored["b"][0].items == [1, 2]  # as the state held it: one list, two names
    assert restored["cycle"][0] is restored["cycle"]


def test_derived_caches_are_not_kept() -> None:
    from projections.cluster_model import ClusterState

    state = ClusterState()
    state.node_cache = object()  # anything a reader derived; dropped, not refused
    restored = statecodec.decode(statecodec.encode(state))
    assert restored.node_cache is None and canonical(restored) == canonical(state)


def test_what_is_not_a_project_record_is_refused_when_saved() -> None:
    class Local:
        pass

    for value, named in ((Local(), "Local"), (lambda: 0, "function"), (os.environ, "_Environ"),
                         ({"k": [sqlite3.connect(":memory:")]}, "Connection")):
        with pytest.raises(statecodec.StateCodecError, match=named):
            statecodec.encode(value)


def forged(table: list, root) -> bytes:
    return statecodec.MAGIC + msgspec.msgpack.encode([statecodec.VERSION, table, root])


RECORD = msgspec.msgpack.Ext(7, b"")
ENUM = msgspec.msgpack.Ext(6, b"")


@pytest.mark.parametrize("key", [
    "os:system",  # not a project module
    "builtins:eval",
    "subprocess:Popen",
    "eventbatch.snapshots:sqlite3.connect",  # through a module a project module imports
    "eventbatch.snapshots:Path",  # a class a project module imports, defined elsewhere
    "eventbatch.statecodec:_lookup",  # a project function, not a class
    "eventbatch.statecodec_not_imported:Anything",  # a module no one imported: never imported
    "eventbatch.cli.nosuchmodule:Thing",
])
def test_bytes_naming_anything_but_a_project_class_are_refused_without_importing_it(key: str) -> None:
    modules = set(sys.modules)
    blob = forged([[key, ["a"]]], [RECORD, 0, "touch /tmp/x"])
    with pytest.raises(statecodec.StateCodecError, match="does not have"):
        statecodec.decode(blob)
    with pytest.raises(statecodec.StateCodecError):
        statecodec.decode(forged([], [ENUM, key, 1]))
    assert set(sys.modules) == modules


def test_a_project_class_is_restored_only_with_its_declared_fields() -> None:
    key = f"{Point.__module__}:{Point.__qualname__}"
    assert statecodec.decode(forged([[key, ["x", "y"]]], [RECORD, 0, 1, [msgspec.msgpack.Ext(1, b""), 2]])) == Point(1, (2,))
    for names in (["x", "y", "z"], ["x"], ["x", "__class__"], ["x", "__dict__"]):
        with pytest.raises(statecodec.StateCodecError):
            statecodec.decode(forged([[key, names]], [RECORD, 0, *range(len(names))]))


def test_bytes_that_are_not_state_are_refused() -> None:
    evil = pickle.dumps(Point(1, ()))
    with pytest.raises(statecodec.OldFormat):
        statecodec.decode(evil)
    for blob in (b"", b"SQLite format 3\x00", statecodec.MAGIC + b"\xc1", forged([], [msgspec.msgpack.Ext(99, b"")])):
        with pytest.raises(statecodec.StateCodecError):
            statecodec.decode(blob)


class _Touch:
    """Unpickling this creates ``path``: what a planted pickle could do instead."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


async def test_a_store_an_older_eventbatch_pickled_is_refused_in_one_line_and_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    evil = pickle.dumps(ComponentSnapshot("scheduler", 5, _Touch(marker)))
    async with SnapshotStore(tmp_path / "snapshots.db") as store:
        await store.save(ComponentSnapshot("scheduler", 5, {"fine": 1}))
    with sqlite3.connect(tmp_path / "snapshots.db") as db:
        db.execute("UPDATE snapshots SET data = ?", (evil,))
    async with SnapshotStore(tmp_path / "snapshots.db") as store:
        with pytest.raises(OldSnapshotStore) as refused:
            await store.load("scheduler")
    assert str(refused.value) == (
        f"snapshot store {tmp_path / 'snapshots.db'} was written by an older eventbatch; delete it to rebuild from the log"
    )
    with sqlite3.connect(tmp_path / "snapshots.db") as db:
        db.execute("UPDATE snapshots SET data = ?", (forged([["os:system", ["a"]]], [RECORD, 0, "x"]),))
    async with SnapshotStore(tmp_path / "snapshots.db") as store:
        with pytest.raises(BadSnapshot, match="os:system, which this eventbatch does not have"):
            await store.load("scheduler")

    async with MemoryLog() as log, ReadModelStore(tmp_path / "views.db") as views:
        await views.apply(_empty_changes(), snapshot=evil)
        with pytest.raises(OldViewsStore, match=r"views.db was written by an older eventbatch; delete it"):
            await Projector(log=log, store=views).catch_up()
        await views.apply(_empty_changes(), snapshot=statecodec.encode({"not": "views"}))
        with pytest.raises(BadViewsStore, match="holds no read models"):
            await Projector(log=log, store=views).catch_up()
    assert not marker.exists()
    pickle.loads(evil)  # the planted bytes do run code when unpickled: the check above can fail
    assert marker.exists()


def _empty_changes():
    from projections.views import ViewSet

    return ViewSet().flush()
