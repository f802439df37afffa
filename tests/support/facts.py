"""Requests change nothing: every fold of a log equals the fold of its facts alone.

Where it sits: beside ``tests/support/oracle.py``, for the integration tests
that push requests through the real pipeline
(``tests/integration/test_requests_change_nothing.py``). A request
(``schemas.events.REQUESTS``) is answered by the handler that owns the
object, with facts or a refusal; every fold must apply the facts only.

``check_requests_change_nothing`` takes a log and the position of one
request that the pipeline has answered, and checks, for every projection
(the handlers' ``projections.jobs``, ``projections.queues``,
``projections.nodes``, ``projections.cluster``; the read models'
``ViewSet``; the kube status writer's fold) and for the rows the real
``Projector`` writes into a real SQLite read-model store:

1. the log folded from position 0 equals the log folded from position 0
   with every request record skipped (positions are not renumbered), before
   the request, right after its answer, and at the tail; the read-model
   store holds the rows of a ``ViewSet`` folded over the facts alone;
2. when the request was refused (or answered with nothing), each projection
   is byte-identical (canonical JSON) before the request and after its
   answer, and so are the read-model tables.

What is not compared, and why:

- *cursors*, fields that say where a fold stands rather than what it knows:
  ``ClusterState.position`` and ``ViewSet.position`` (the last position
  folded), ``ViewSet.latest_at`` (the latest time folded, as ``JobsState.now``),
  ``ViewSet.recent`` (a ring of the last records, to find a
  decision's trigger), ``JobsState.now`` (the time of the last record
  folded, whatever it was), ``ClusterState.node_cache`` (derived by readers,
  never folded). Skipping a record leaves a cursor behind by construction.
- *answer marks*, compared between the two folds but not across a refusal:
  ``JobsState.last_answer`` and ``ViewSet.last_answer``, the job
  controller's latest (trigger, index), which any answer of it moves (they
  deduplicate a batch appended twice).
- the read-model store's ``audit_view`` (a job's or queue's timeline records
  the request and its refusal: it is meant to grow), its ``tracking`` table
  (the position each read model reached) and its ``snapshots`` table (the
  encoded fold, cursors included).

The projections are plain data (``Projection``), so a test can hand the
checker a planted fold and see it caught.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from eventbatch.kube.status import KubeStatusWriter
from eventbatch.log.codec import decode
from eventbatch.log.port import EventLog
from eventbatch.readmodels import Projector, ReadModelStore
from handlers.cronjob import CronJobHandler
from projections import cluster as cluster_fold
from projections import jobs as jobs_fold
from projections import nodes as nodes_fold
from projections import queues as queues_fold
from projections.views import TABLES, ViewSet
from projections.views.rows import columns
from schemas.envelope import Envelope
from schemas.events import REQUESTS

Record = tuple[int, bytes]

# --- canonical form -----------------------------------------------------------------


def canonical(value: Any, skip: frozenset[str] = frozenset(), depth: int = 0) -> Any:
    """``value`` as JSON-able data: objects as their fields (``skip`` left out, at the top
    level only), dicts in insertion order with keys as strings, sets sorted, structs as built-ins."""
    if depth > 60:
        raise ValueError("state too deep to render")
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return value
    if isinstance(value, msgspec.Struct):
        return msgspec.to_builtins(value)
    if isinstance(value, dict):
        return {k if isinstance(k, str) else repr(k): canonical(v, depth=depth + 1) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted((canonical(v, depth=depth + 1) for v in value), key=msgspec.json.encode)
    if isinstance(value, (list, tuple)):
        return [canonical(v, depth=depth + 1) for v in value]
    if dataclasses.is_dataclass(value):
        names = [f.name for f in dataclasses.fields(value)]
    else:
        names = [n for cls in reversed(type(value).__mro__) for n in getattr(cls, "__slots__", ())]
        names += list(getattr(value, "__dict__", {}))
    return {n: canonical(getattr(value, n), depth=depth + 1) for n in dict.fromkeys(names)
            if n not in skip and hasattr(value, n)}


def first_difference(a: Any, b: Any, path: str = "") -> str:
    """Where two canonical values first differ, as ``path: a != b``."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in a:
            if key not in b:
                return f"{path}[{key!r}]: present != absent"
            if a[key] != b[key]:
                return first_difference(a[key], b[key], f"{path}[{key!r}]" if path else repr(key))
        for key in b:
            if key not in a:
                return f"{path}[{key!r}]: absent != present"
        return f"{path}: the same entries in another order: {list(a)} != {list(b)}"
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return first_difference(x, y, f"{path}[{i}]")
    return f"{path}: {_short(a)} != {_short(b)}"


def _short(value: Any, limit: int = 300) -> str:
    text = msgspec.json.encode(value).decode()
    return text if len(text) <= limit else text[:limit] + "..."


# --- the projections ----------------------------------------------------------------


@dataclass(frozen=True)
class Projection:
    """One fold of the log: a fresh state, how one record changes it, how it renders."""

    name: str
    initial: Callable[[], Any]
    fold: Callable[[Any, Envelope, bytes], Any]  # (state, envelope, record as stored) -> state
    render: Callable[[Any], Any]  # state -> canonical data (cursors left out)
    marks: frozenset[str] = frozenset()  # top-level keys of the rendering that answers move

    def replace(self, **changes: Any) -> Projection:
        return dataclasses.replace(self, **changes)


def _kube_status() -> KubeStatusWriter:
    return KubeStatusWriter(connection=None, log=None, clock=None)


def _kube_fold(writer: KubeStatusWriter, env: Envelope, _: bytes) -> KubeStatusWriter:
    writer.fold(env)
    return writer


KUBE_FOLDED = ("api_jobs", "api_queues", "api_podgroups", "conditions", "pod_scheduled", "dirty")


def _kube_render(writer: KubeStatusWriter) -> dict:
    """What the status writer folded, and every status it would write (rendered from its rows)."""
    writer.status_of("jobs", "")  # renders the rows from the fold (and marks what they change)
    out = {name: canonical(getattr(writer, name)) for name in KUBE_FOLDED}
    out["status"] = {
        kind: {key: writer.status_of(kind, key) for key in sorted(rows)}
        for kind, rows in (("jobs", writer.job_rows), ("podgroups", writer.group_rows), ("queues", writer.queue_rows))
    }
    return out


def _views_fold(views: ViewSet, env: Envelope, data: bytes) -> ViewSet:
    unread = views.fold_records([(env.position, data)])
    assert unread == [], f"the read models cannot read #{env.position} {env.type}"
    return views


def _views_render(views: ViewSet) -> dict:
    """The fold state after a flush (what a projector holds between chunks); a pod's
    owner is named by its job's key (its record is rendered under ``jobs``)."""
    views.flush()
    out = canonical(views, skip=frozenset({"position", "latest_at", "recent", "pod_owner"}))
    out["pod_owner"] = {pod: line.key for pod, line in views.pod_owner.items()}
    return out


PROJECTIONS: tuple[Projection, ...] = (
    Projection(
        "jobs",
        jobs_fold.initial_state,
        lambda state, env, _: jobs_fold.fold(state, env),
        lambda state: canonical(state, skip=frozenset({"now"})),
        marks=frozenset({"last_answer"}),
    ),
    Projection(
        "queues",
        queues_fold.QueuesState,
        lambda state, env, _: queues_fold.fold(state, env),
        canonical,
    ),
    Projection(
        "nodes",
        nodes_fold.NodesState,
        lambda state, env, _: nodes_fold.fold(state, env),
        canonical,
    ),
    Projection(
        "cluster",
        cluster_fold.initial,
        lambda state, env, _: cluster_fold.fold(state, env),
        lambda state: canonical(state, skip=frozenset({"position", "node_cache"})),
    ),
    Projection("views", ViewSet, _views_fold, _views_render, marks=frozenset({"last_answer"})),
    Projection("kube-status", _kube_status, _kube_fold, _kube_render),
    Projection(  # a handler's own fold: the CronJob controller's CronJobs and their runs
        "cronjobs",
        CronJobHandler().initial,
        lambda state, env, _: CronJobHandler().fold(state, env),
        lambda state: canonical(state, skip=frozenset({"fired_position"})),
    ),
)


def with_fold(projections: Sequence[Projection], name: str, fold: Callable[[Any, Envelope, bytes], Any]):
    """The same projections with ``name``'s fold replaced (a planted fault, in the tests)."""
    return tuple(p.replace(fold=fold) if p.name == name else p for p in projections)


# --- the read-model store -------------------------------------------------------------

# Tables left out of the comparisons (see the module docstring).
UNCOMPARED_TABLES = frozenset({"audit_view", "tracking", "snapshots"})


async def table_contents(store: ReadModelStore) -> dict[str, list[tuple]]:
    """Every row of every compared table of the store's SQLite file, in a fixed order."""
    db = store.db
    skip = UNCOMPARED_TABLES
    async with db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name") as cur:
        tables = [name for (name,) in await cur.fetchall() if name not in skip]
    out: dict[str, list[tuple]] = {}
    for table in tables:
        async with db.execute(f"SELECT * FROM {table}") as cur:
            out[table] = sorted((tuple(row) for row in await cur.fetchall()), key=repr)
    return out


class ReadModels:
    """A live projector over the log into a real SQLite read-model store, and a directory
    for the stores of the facts-only folds the checker builds."""

    def __init__(self, log: EventLog, directory: Path) -> None:
        self.log = log
        self.directory = directory
        self.store = ReadModelStore(directory / "views.db", durable=False)
        self.projector: Projector | None = None
        self.checks = 0

    async def __aenter__(self) -> ReadModels:
        await self.store.start()
        self.projector = Projector(log=self.log, store=self.store, chunk=64, snapshot_every=None)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.store.stop()

    async def rows_at(self, end: int) -> dict[str, list[tuple]]:
        """The store's tables once the projector has folded every record before ``end``."""
        assert self.projector is not None
        assert self.projector.position < end, "the projector is already past this point"
        await self.projector.catch_up(to=end)
        return await table_contents(self.store)

    async def facts_only_rows(self, records: Iterable[Record]) -> dict[str, list[tuple]]:
        """The tables of a fresh store written from a ``ViewSet`` folded over the facts alone."""
        self.checks += 1
        views = ViewSet()
        for position, data in records:
            if decode(position, data).type not in REQUESTS:
                assert views.fold_records([(position, data)]) == []
        async with ReadModelStore(self.directory / f"facts-{self.checks}.db", durable=False) as store:
            await store.apply(views.flush())
            rows = await table_contents(store)
        (self.directory / f"facts-{self.checks}.db").unlink()
        return rows


# --- the check ------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """A request and what its owner answered (every record caused by it)."""

    request: Envelope
    answers: tuple[Envelope, ...]

    @property
    def end(self) -> int:
        """The position after the request's last answer (after the request if none)."""
        return max((a.position for a in self.answers), default=self.request.position) + 1

    @property
    def refused(self) -> bool:
        return bool(self.answers) and all(a.type.endswith("Refused") for a in self.answers)

    @property
    def changes_nothing(self) -> bool:
        """Refused, or answered with nothing (an unchanged update, opening an open queue)."""
        return self.refused or not self.answers

    def describe(self) -> str:
        said = ", ".join(_event(a) for a in self.answers) or "nothing"
        return f"#{self.request.position} {_event(self.request)} (answered: {said})"


def _event(env: Envelope) -> str:
    """``QueueRequestRefused(research: create, queue already exists)``: the key, then what it says."""
    said = [str(v) for f in ("state", "phase", "action", "reason") if (v := getattr(env.payload, f, ""))]
    return f"{env.type}({env.key}{': ' + ', '.join(said) if said else ''})"


async def records_of(log: EventLog) -> list[Record]:
    return [item async for chunk in log.read_records(0) for item in chunk]


def _render(projections: Sequence[Projection], states: list[Any]) -> dict[str, Any]:
    return {p.name: p.render(state) for p, state in zip(projections, states, strict=True)}


def _fold_pass(
    projections: Sequence[Projection], decoded: list[tuple[Envelope, bytes]], checkpoints: Sequence[int], *,
    facts_only: bool,
) -> dict[int, dict[str, Any]]:
    """Fold every record (or every fact); the renderings once every record before each checkpoint is folded."""
    states = [p.initial() for p in projections]
    out: dict[int, dict[str, Any]] = {}
    pending = sorted(set(checkpoints))
    for env, data in decoded:
        while pending and env.position >= pending[0]:
            out[pending.pop(0)] = _render(projections, states)
        if facts_only and env.type in REQUESTS:
            continue
        states = [p.fold(state, env, data) for p, state in zip(projections, states, strict=True)]
    for checkpoint in pending:
        out[checkpoint] = _render(projections, states)
    return out


def _locate(projections: Sequence[Projection], decoded: list[tuple[Envelope, bytes]]) -> str:
    """Fold both ways in step; the first request after which a projection differs."""
    every = [p.initial() for p in projections]
    facts = [p.initial() for p in projections]
    for env, data in decoded:
        every = [p.fold(s, env, data) for p, s in zip(projections, every, strict=True)]
        if env.type not in REQUESTS:
            facts = [p.fold(s, env, data) for p, s in zip(projections, facts, strict=True)]
            continue
        a, b = _render(projections, every), _render(projections, facts)
        for p in projections:
            if a[p.name] != b[p.name]:
                return (
                    f"projection {p.name!r} applies the request #{env.position} {_event(env)}: folding every "
                    f"record vs the facts alone, {first_difference(a[p.name], b[p.name])}"
                )
    return "(no single request found: the difference comes from the renderings' flush points)"


def _without(rendering: Any, marks: frozenset[str]) -> Any:
    if not marks or not isinstance(rendering, dict):
        return rendering
    return {k: v for k, v in rendering.items() if k not in marks}


async def check_requests_change_nothing(
    log: EventLog,
    request: int,
    *,
    read_models: ReadModels | None = None,
    projections: Sequence[Projection] = PROJECTIONS,
) -> Answer:
    """Check that the request at position ``request`` (answered, the log settled) and every
    request before it changed no projection but through their answers; raises
    ``AssertionError`` naming the projection, the request and what differs."""
    records = await records_of(log)
    decoded = [(decode(position, data), data) for position, data in records]
    envelope = decoded[request][0]
    assert envelope.type in REQUESTS, f"#{request} is {envelope.type}, not a request"
    answer = Answer(envelope, tuple(e for e, _ in decoded if e.causation is not None and e.causation.position == request))
    between = [e for e, _ in decoded[request + 1 : answer.end] if e not in answer.answers]
    assert not between, f"other records landed between {answer.describe()} and its answer: {between}"

    tail = len(decoded)
    checkpoints = (request, answer.end, tail)
    every = _fold_pass(projections, decoded, checkpoints, facts_only=False)
    facts = _fold_pass(projections, decoded, checkpoints, facts_only=True)

    # A refused (or unanswered) request changes nothing: byte-identical before and after it.
    if answer.changes_nothing:
        for p in projections:
            before = _without(every[request][p.name], p.marks)
            after = _without(every[answer.end][p.name], p.marks)
            if msgspec.json.encode(before) != msgspec.json.encode(after):
                raise AssertionError(
                    f"projection {p.name!r} changed across {answer.describe()}: "
                    f"before -> after, {first_difference(before, after)}"
                )

    # Every fold equals the fold of the facts alone (before, right after the answer, at the tail).
    for point in checkpoints:
        for p in projections:
            if msgspec.json.encode(every[point][p.name]) != msgspec.json.encode(facts[point][p.name]):
                raise AssertionError(f"{_locate(projections, decoded)} (checked at #{point - 1})")

    if read_models is not None:
        before_rows = await read_models.rows_at(request)
        after_rows = await read_models.rows_at(answer.end)
        final_rows = await read_models.rows_at(tail)
        if answer.changes_nothing and before_rows != after_rows:
            raise AssertionError(
                f"the read-model store changed across {answer.describe()}: "
                f"{first_difference(_tables(before_rows), _tables(after_rows))}"
            )
        expected = await read_models.facts_only_rows(records)
        if final_rows != expected:
            raise AssertionError(
                f"the read-model store at #{tail - 1} holds other rows than a fold of the facts alone: "
                f"{first_difference(_tables(final_rows), _tables(expected))}"
            )
    return answer


def _tables(rows: dict[str, list[tuple]]) -> dict[str, dict[str, Any]]:
    """Rows by table and primary key, for ``first_difference`` to name the row that differs."""
    out: dict[str, dict[str, Any]] = {}
    for table, content in rows.items():
        row_type, key = TABLES.get(table, (None, ()))
        at = [columns(row_type).index(k) for k in key] if row_type is not None else [0]
        out[table] = {repr(tuple(row[i] for i in at)): list(row) for row in content}
    return out
