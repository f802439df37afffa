"""``eventbatch job list|view`` and ``eventbatch queue list|get``: the read models.

Where it sits: the CLI's read side. Each command first brings the read-model
store up to the tail of the log (a snapshot plus the events since, never a
full replay once a snapshot exists), then answers from its tables. The store
lives next to an SQLite log (``events.db`` -> ``events.views.db``), else in
``var/eventbatch/views-TOPIC-DIGEST.db`` (one per log URL); ``--views PATH``
or ``EVENTBATCH_VIEWS`` chooses another file.
"""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import asynccontextmanager
from pathlib import Path

from eventbatch.cli import CliError
from eventbatch.cli.output import LIST_OUTPUTS, emit, table
from eventbatch.log.factory import open_log, sqlite_path
from eventbatch.readmodels import Projector, ReadModelStore, ViewsAhead
from eventbatch.settings import redact_url
from projections.views.render import queue_status_fields

DEFAULT_DIR = Path("var/eventbatch")


def views_path(settings, given: str | None = None) -> Path:
    """Where the read models of ``settings.log_url`` are stored."""
    chosen = given or os.environ.get("EVENTBATCH_VIEWS")
    if chosen:
        return Path(chosen)
    url = settings.log_url
    if url.startswith("sqlite://"):
        log_file = sqlite_path(url)
        return log_file.with_name(log_file.stem + ".views.db")
    # One store per log: the topic in the name, and a digest of the whole URL.
    topic = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or "log"
    digest = hashlib.sha256(redact_url(url).encode()).hexdigest()[:8]
    return DEFAULT_DIR / f"views-{''.join(c if c.isalnum() or c in '-_.' else '_' for c in topic)}-{digest}.db"


def add_views_flag(parser) -> None:
    parser.add_argument("--views", help="read-model database (default: next to the SQLite log; env EVENTBATCH_VIEWS)")


@asynccontextmanager
async def current_store(settings, given: str | None = None):
    """The read-model store, caught up with the log."""
    async with open_log(settings.log_url) as log, ReadModelStore(views_path(settings, given)) as store:
        projector = Projector(log=log, store=store)
        try:
            await projector.catch_up()
        except ViewsAhead as exc:
            raise CliError(str(exc)) from None
        if projector.stats.folded:
            await projector.checkpoint()  # the next command starts from here
        yield store


def register_job(job_sub) -> None:
    listing = job_sub.add_parser("list", help="list jobs with their phase and pod counts (JobView)")
    listing.add_argument("-q", "--queue", help="only jobs of this queue")
    listing.add_argument("-n", "--namespace", help="only jobs of this namespace")
    listing.add_argument("-o", "--output", choices=LIST_OUTPUTS, default="text",
                         help="wide adds TERMINATING, UNKNOWN, VERSION, SUBMITTED and REASON")
    add_views_flag(listing)
    listing.set_defaults(run=_job_list)
    view = job_sub.add_parser("view", help="a job's Volcano JobStatus and its pods")
    view.add_argument("name", help="job name or NAMESPACE/NAME")
    view.add_argument("-n", "--namespace", default="default")
    view.add_argument("-o", "--output", choices=["text", "json", "yaml"], default="text")
    add_views_flag(view)
    view.set_defaults(run=_job_view)


def register_queue(queue_sub) -> None:
    listing = queue_sub.add_parser("list", help="list queues with their state and podgroup counts (QueueView)")
    listing.add_argument("-o", "--output", choices=LIST_OUTPUTS, default="text",
                         help="wide adds PARENT, DESERVED, GUARANTEE, CAPABILITY and SHARE")
    add_views_flag(listing)
    listing.set_defaults(run=_queue_list)
    get = queue_sub.add_parser("get", help="a queue's Volcano QueueStatus")
    get.add_argument("name")
    get.add_argument("-o", "--output", choices=["text", "json", "yaml"], default="text")
    add_views_flag(get)
    get.set_defaults(run=_queue_get)


def job_key(name: str, namespace: str = "default") -> str:
    return name if "/" in name else f"{namespace}/{name}"


async def _job_list(args, settings) -> int:
    async with current_store(settings, args.views) as store:
        where, params = [], []
        if args.queue:
            where.append("queue = ?")
            params.append(args.queue)
        if args.namespace:
            where.append("namespace = ?")
            params.append(args.namespace)
        rows = await store.rows("job_view", " AND ".join(where), tuple(params), order="submitted_at, key")
    if args.output in ("json", "yaml"):
        emit([{"job": r.key, "queue": r.queue, "status": json.loads(r.status)} for r in rows], args.output)
        return 0
    headers = ["NAMESPACE", "NAME", "QUEUE", "PHASE", "MINAVAILABLE", "PENDING", "RUNNING", "SUCCEEDED", "FAILED",
               "RETRIES"]
    cells = [[r.namespace, r.name, r.queue, r.phase, r.min_available, r.pending, r.running, r.succeeded, r.failed,
              r.retry_count] for r in rows]
    if args.output == "wide":
        headers += ["TERMINATING", "UNKNOWN", "VERSION", "SUBMITTED", "REASON"]
        for r, row in zip(rows, cells, strict=True):
            reason = json.loads(r.status).get("state", {}).get("reason") or "-"
            row += [r.terminating, r.unknown, r.version, _ms(r.submitted_at), reason]
    table(headers, cells)
    return 0


async def _job_view(args, settings) -> int:
    key = job_key(args.name, args.namespace)
    async with current_store(settings, args.views) as store:
        rows = await store.rows("job_view", "key = ?", (key,))
        removed = not rows
        if removed:  # a finished job removed since: its last status is in the history
            rows = await store.rows("job_history", "key = ?", (key,), order="submitted_at DESC")
        if not rows:
            raise CliError(f"job {key} not found")
        pods = await store.rows("pod_view", "job = ?", (key,), order="requested_at, key")
    row = rows[0]
    status = json.loads(row.status)
    if args.output != "text":
        emit({"job": key, "queue": row.queue, "status": status,
              "pods": [{"name": p.key, "phase": p.phase, "node": p.node} for p in pods]}, args.output)
        return 0
    state = status.get("state", {})
    print(f"Job:        {key}" + (" (removed; its last status, from the history)" if removed else ""))
    print(f"Queue:      {row.queue}")
    print(f"Phase:      {row.phase}" + (f" ({state['reason']})" if state.get("reason") else ""))
    if state.get("message"):
        print(f"Message:    {state['message']}")
    print(f"Pods:       pending {row.pending}, running {row.running}, succeeded {row.succeeded}, "
          f"failed {row.failed}, terminating {row.terminating}, unknown {row.unknown}")
    print(f"Retries:    {row.retry_count}    Version: {row.version}    MinAvailable: {row.min_available}")
    if status.get("runningDuration"):
        print(f"Running:    {status['runningDuration']}")
    if pods:
        print()
        table(
            ["POD", "PHASE", "NODE", "BOUND", "STARTED", "FINISHED", "EXIT", "REASON"],
            [[p.key, p.phase, p.node or "-", _ms(p.bound_at), _ms(p.started_at), _ms(p.finished_at),
              "-" if p.exit_code is None else p.exit_code, p.reason] for p in pods],
        )
    return 0


def _ms(value: int | None) -> str:
    from eventbatch.cli.events import format_time

    return "-" if value is None else format_time(value).strip()


async def _queue_list(args, settings) -> int:
    async with current_store(settings, args.views) as store:
        rows = await store.rows("queue_view")
    if args.output in ("json", "yaml"):
        emit([{"queue": r.name, "weight": r.weight, "status": queue_status(r)} for r in rows], args.output)
        return 0
    headers = ["NAME", "STATE", "WEIGHT", "PENDING", "INQUEUE", "RUNNING", "COMPLETED", "UNKNOWN", "ALLOCATED"]
    cells = [[r.name, r.state, r.weight, r.pending, r.inqueue, r.running, r.completed, r.unknown,
              _quantities(r.allocated)] for r in rows]
    if args.output == "wide":
        headers += ["PARENT", "DESERVED", "GUARANTEE", "CAPABILITY", "SHARE"]
        for r, row in zip(rows, cells, strict=True):
            row += [r.parent or "-", _quantities(r.deserved), _quantities(r.guarantee), _quantities(r.capability),
                    f"{r.share:.3f}"]
    table(headers, cells)
    return 0


def _quantities(text: str) -> str:
    return ",".join(f"{k}={v}" for k, v in json.loads(text).items()) or "-"


def queue_status(row) -> dict:
    """A QueueView row in Volcano's QueueStatus shape (plus deserved, guarantee, share)."""
    return {
        **queue_status_fields(row),
        "deserved": json.loads(row.deserved),
        "guarantee": json.loads(row.guarantee),
        "share": row.share,
    }


async def _queue_get(args, settings) -> int:
    async with current_store(settings, args.views) as store:
        rows = await store.rows("queue_view", "name = ?", (args.name,))
    if not rows:
        raise CliError(f"queue {args.name} not found")
    row = rows[0]
    if args.output != "text":
        emit({"name": row.name, "weight": row.weight, "parent": row.parent, "status": queue_status(row)}, args.output)
        return 0
    print(f"Queue:      {row.name}" + (f" (parent {row.parent})" if row.parent else ""))
    print(f"State:      {row.state}")
    print(f"Weight:     {row.weight}")
    print(f"PodGroups:  pending {row.pending}, inqueue {row.inqueue}, running {row.running}, "
          f"completed {row.completed}, unknown {row.unknown}")
    print(f"Allocated:  {_quantities(row.allocated)}")
    print(f"Deserved:   {_quantities(row.deserved)}")
    print(f"Guarantee:  {_quantities(row.guarantee)}")
    print(f"Capability: {_quantities(row.capability)}")
    print(f"Share:      {row.share:.3f}")
    return 0
