"""The console's queue page (``/``): QueueView as a table, allocation over time as a stacked area plot.

Where it sits: a page of ``eventbatch.ui.app``. The table's figures are
``eventbatch queue list -o json``'s (``eventbatch.cli.views.queue_status`` of
the same rows): weight, deserved, allocated, share, podgroups pending, inqueue
and running. The plot's points are the console's ``samples``: the
allocation per queue at a bounded number of positions of the log's past
(``history``: folded once in the background, or read from the fold states the
store keeps when the log is long), then at each position the live console
folds up to.
"""

from __future__ import annotations

import json
import time
from contextlib import aclosing
from typing import TYPE_CHECKING

from aiohttp import web

from eventbatch.cli.views import queue_status
from eventbatch.readmodels.projector import fold_chunk, load_views
from eventbatch.ui import svg
from eventbatch.ui.html import esc, table
from projections.views import ViewSet
from projections.views.render import Aggregates, queue_row
from schemas.quantity import QuantityError, parse_quantity, scale_of

if TYPE_CHECKING:
    from eventbatch.ui.app import Console, Sample, View

HISTORY_POINTS = 200  # points of the plot from the log's past
FOLD_HISTORY_UP_TO = 200_000  # a longer log's past is sampled at the store's kept fold states
PLOT_RESOURCE = "cpu"


def allocation(rows) -> dict[str, dict[str, str]]:
    """Allocated resources per queue, from QueueView rows."""
    return {r.name: json.loads(r.allocated) for r in rows}


def _views_allocation(views: ViewSet) -> dict[str, dict[str, str]]:
    agg = Aggregates.of(views.groups, views.holds)
    return {name: json.loads(queue_row(q, q.parent, agg).allocated) for name, q in sorted(views.queues.items())}


async def history(console: Console, end: int) -> list[Sample]:
    """Allocation per queue at up to ``HISTORY_POINTS`` positions before ``end``."""
    from eventbatch.ui.app import Sample

    samples: list[Sample] = []
    if end <= 0:
        return samples
    if end <= FOLD_HISTORY_UP_TO:
        step = max(1, end // HISTORY_POINTS)
        views = ViewSet(timelines=False)
        async with aclosing(console.log.read_records(0)) as chunks:
            async for chunk in chunks:
                chunk = [item for item in chunk if item[0] < end]
                while chunk:
                    room = step - (views.position + 1) % step
                    part, chunk = chunk[:room], chunk[room:]
                    await fold_chunk(console.log, views, part)
                    views.drop_changes()
                    if (views.position + 1) % step == 0 or views.position + 1 >= end:
                        samples.append(Sample(views.position, views.latest_at, _views_allocation(views)))
                if views.position + 1 >= end:
                    break
        return samples
    async with console.lock:
        kept = [p for p, _ in await console.store.past_positions() if p < end]
        blobs = [(p, await console.store.past_state(p)) for p in kept]
    for position, blob in blobs:
        if blob is not None:
            views = load_views(blob, console.store.path)
            samples.append(Sample(position, views.latest_at, _views_allocation(views)))
    return samples


def _amount(allocated: dict[str, str]) -> float:
    value = allocated.get(PLOT_RESOURCE)
    if value is None:
        return 0.0
    try:
        return parse_quantity(value, PLOT_RESOURCE) / scale_of(PLOT_RESOURCE)
    except QuantityError:
        return 0.0


def plot(samples: list[Sample], upto: int) -> str:
    """The stacked area of allocated CPU per queue over time (seconds), up to position ``upto``."""
    points = [s for s in samples if s.position <= upto and s.recorded_at is not None and s.recorded_at >= 0]
    if len(points) > 400:  # evenly spaced by index, first and last kept
        points = [points[round(i * (len(points) - 1) / 399)] for i in range(400)]
    names = sorted({name for s in points for name in s.allocated})
    xs = [(s.recorded_at or 0) / 1000 for s in points]
    series = [(name, [_amount(s.allocated.get(name, {})) for s in points]) for name in names]
    span = (xs[-1] - xs[0]) if xs else 0.0
    return svg.stacked_area(xs, series, title="Allocated CPU per queue", x_label="log time (UTC)", y_label="cores",
                            x_format=_clock_format(span))


def _clock_format(span_s: float) -> svg.Formatter:
    """Tick labels for the log's time (``recorded_at``, seconds): a clock time, with the date
    when the plot spans more than a day. A simulation's virtual time starts at 0, so it reads
    as the time elapsed."""
    pattern = "%Y-%m-%d %H:%M" if span_s > 86_400 else "%H:%M:%S"
    return lambda seconds: time.strftime(pattern, time.gmtime(seconds))


async def render(request: web.Request, view: View) -> tuple[str, str]:
    rows = await view.store.rows("queue_view")
    ctx = view.ctx
    cells, attrs = [], []
    for r in rows:
        status = queue_status(r)
        cells.append([
            ctx.link("/jobs", r.name, {"queue": r.name}), r.state, r.weight, _q(status["deserved"]),
            _q(status["allocated"]), f"{r.share:.3f}", r.pending, r.inqueue, r.running, r.completed,
        ])
        attrs.append(f' data-queue="{esc(r.name)}" data-status="{esc(json.dumps({"queue": r.name, "weight": r.weight, "status": status}, sort_keys=True))}"')
    body = [
        f"<h1>Queues</h1><p class=\"muted\">as of position #{ctx.position} · {len(rows)} queue(s)</p>",
        table(["QUEUE", "STATE", "WEIGHT", "DESERVED", "ALLOCATED", "SHARE", "PENDING", "INQUEUE", "RUNNING",
               "COMPLETED"], cells, cls="queues", raw=frozenset({0}), row_attrs=attrs),
        f'<div class="plot" id="allocation">{plot(view.console.samples, ctx.position)}</div>',
    ]
    return "Queues", "".join(body)


def _q(resources: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in resources.items()) or "-"
