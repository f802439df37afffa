"""The simulation report as one self-contained HTML file (``simulate --html``).

Where it sits: after ``eventbatch simulate`` ran and ``sim/report.py`` folded
the run's events into a :class:`~eventbatch.sim.report.Report`. This module
renders that report, plus two series it folds from the same events (each
pod's pending/bound/running spans, each queue's allocation over time), as a
single HTML page: inline CSS, inline SVG from ``eventbatch.ui.svg``, no
script, no link, no image, nothing fetched; a Content-Security-Policy that
forbids every fetch makes sure of it. The page opens from ``file://`` with
no server and no network.

The summary figures are the ones ``simulate --json`` prints (each carries
``data-figure``/``data-value`` so a program can read them back). A big run
stays small: the plots are sampled at a bounded number of instants, and the
Gantt chart and the tables show a bounded number of rows and say so.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from eventbatch.sim.report import RESOURCES, Report, duration
from eventbatch.ui import svg
from eventbatch.ui.svg import escape
from schemas.envelope import Envelope
from schemas.events import (
    JobCreated,
    NodeAdded,
    PodBound,
    PodDeleted,
    PodEvicted,
    PodFailed,
    PodGroupCreated,
    PodRequested,
    PodStarted,
    PodSucceeded,
)
from schemas.quantity import to_resources

MAX_SAMPLES = 300  # instants at which the over-time plots are sampled
MAX_GANTT_ROWS = 120  # pods in the Gantt chart
MAX_TABLE_ROWS = 500  # rows of the jobs and evictions tables
MAX_CDF_POINTS = 200  # points per queue in the wait-time distribution

CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:980px;color:#222;background:#fff}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
th,td{border:1px solid #ddd;padding:2px 8px;text-align:left}th{background:#f4f4f4}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.note{color:#666;font-size:.85em}svg.eb-plot{display:block;margin:.6em 0}
"""


def _percent(v: float) -> str:
    return f"{v * 100:.0f}%"


def render(report: Report, meta: dict, events: Sequence[Envelope]) -> str:
    """The whole HTML page for one simulation run.

    ``meta`` holds what ``simulate`` prints above the report (scenario, log,
    events, virtual_time_ms, sessions, stopped); ``events`` are the run's events
    (the ones ``report`` was built from).
    """
    end = int(meta["virtual_time_ms"])
    title = f"eventbatch simulation: {meta['scenario']}"
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'">',
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        _summary(report, meta),
        _utilisation_section(report, events, end),
        _timeline_section(events, end),
        _waits_section(report),
        _queues_section(report, end),
        _evictions_section(report),
        _jobs_section(report),
        "</body></html>\n",
    ]
    return "\n".join(parts)


def _figure(name: str, value: object, shown: str) -> str:
    return f'<td class="num" data-figure="{escape(name)}" data-value="{escape(repr(value))}">{escape(shown)}</td>'


def _summary(report: Report, meta: dict) -> str:
    rows = [
        ("scenario", "scenario", meta["scenario"], str(meta["scenario"])),
        ("log", "log", meta["log"], str(meta["log"])),
        ("events", "events", meta["events"], f"{meta['events']:,}"),
        ("simulated time", "virtual_time_ms", meta["virtual_time_ms"], duration(meta["virtual_time_ms"])),
        ("scheduling sessions", "sessions", meta["sessions"], f"{meta['sessions']:,}"),
        ("stopped", "stopped", meta["stopped"], str(meta["stopped"])),
        ("jobs", "jobs", len(report.jobs), f"{len(report.jobs):,}"),
        ("pods", "pods", len(report.pods), f"{len(report.pods):,}"),
        ("evictions", "evictions", len(report.evictions), f"{len(report.evictions):,}"),
        ("makespan", "makespan", report.makespan, duration(report.makespan)),
        ("jobs that never ran", "never_ran", len(report.never_ran), f"{len(report.never_ran):,}"),
    ]
    rows += [
        (f"utilisation: {r}", f"utilisation.{r}", v, f"{v:.1%}") for r, v in report.utilisation.items()
    ]
    body = "".join(f"<tr><th>{escape(label)}</th>{_figure(key, value, shown)}</tr>" for label, key, value, shown in rows)
    out = f'<h2 id="summary">Summary</h2><table class="summary">{body}</table>'
    out += '<p class="note">Utilisation is allocated over capacity, weighted by time. Times are simulated time.</p>'
    if report.never_ran:
        names = ", ".join(report.never_ran[:20]) + (" ..." if len(report.never_ran) > 20 else "")
        out += f'<p class="note">Jobs that never ran: {escape(names)}</p>'
    return out


def _grid(end: int, changes: Sequence[int]) -> list[int]:
    """The instants to sample: every change when there are few, else MAX_SAMPLES evenly spaced."""
    distinct = sorted(set(changes) | {0, end})
    if len(distinct) <= MAX_SAMPLES:
        return distinct
    return [round(end * k / (MAX_SAMPLES - 1)) for k in range(MAX_SAMPLES)]


def queue_allocation(events: Sequence[Envelope], end: int) -> tuple[list[int], dict[str, dict[str, list[float]]]]:
    """Each resource's allocation per queue, as a share of the cluster's capacity at the time.

    Returns the sampled instants and ``{resource: {queue: [share at each instant]}}``
    (resources with no capacity left out). A pod counts from its bind to its end
    (succeeded, failed, evicted or deleted), under its podgroup's queue (else its job's).
    """
    job_queue: dict[str, str] = {}
    group_queue: dict[str, str] = {}
    pod_queue: dict[str, str] = {}
    requests: dict[str, dict[str, int]] = {}
    holding: set[str] = set()
    capacity: dict[str, int] = defaultdict(int)
    alloc: dict[tuple[str, str], int] = defaultdict(int)
    queues: list[str] = []
    snapshots: list[tuple[int, dict[str, int], dict[tuple[str, str], int]]] = []

    def snap(now: int) -> None:
        state = (now, dict(capacity), dict(alloc))
        if snapshots and snapshots[-1][0] == now:
            snapshots[-1] = state
        else:
            snapshots.append(state)

    for env in events:
        e, now = env.payload, env.recorded_at
        if isinstance(e, JobCreated):
            job_queue.setdefault(e.job, e.manifest.spec.queue or "default")
        elif isinstance(e, PodGroupCreated):
            group_queue.setdefault(e.podgroup, e.manifest.spec.queue or "default")
        elif isinstance(e, NodeAdded):
            for r, v in to_resources(e.manifest.status.allocatable).items():
                capacity[r] += v
            snap(now)
        elif isinstance(e, PodRequested):
            queue = group_queue.get(e.podgroup) or job_queue.get(e.job) or "default"
            pod_queue[e.pod] = queue
            requests[e.pod] = dict(e.requests)
            if queue not in queues:
                queues.append(queue)
        elif isinstance(e, PodBound) and e.pod in pod_queue and e.pod not in holding:
            holding.add(e.pod)
            for r, v in requests[e.pod].items():
                alloc[(r, pod_queue[e.pod])] += v
            snap(now)
        elif isinstance(e, PodSucceeded | PodFailed | PodEvicted | PodDeleted) and e.pod in holding:
            holding.discard(e.pod)
            for r, v in requests[e.pod].items():
                alloc[(r, pod_queue[e.pod])] -= v
            snap(now)
    grid = _grid(end, [t for t, _, _ in snapshots])
    queues.sort()
    shares: dict[str, dict[str, list[float]]] = {
        r: {q: [] for q in queues} for r in RESOURCES if any(c.get(r) for _, c, _ in snapshots)
    }
    i = -1
    for t in grid:
        while i + 1 < len(snapshots) and snapshots[i + 1][0] <= t:
            i += 1
        cap, held = (snapshots[i][1], snapshots[i][2]) if i >= 0 else ({}, {})
        for r, per_queue in shares.items():
            for q, values in per_queue.items():
                values.append(held.get((r, q), 0) / cap[r] if cap.get(r) else 0.0)
    return grid, shares


def _utilisation_section(report: Report, events: Sequence[Envelope], end: int) -> str:
    grid, shares = queue_allocation(events, end)
    out = ['<h2 id="utilisation">Utilisation over time</h2>']
    out.append(
        '<p class="note">Each resource allocated to each queue\'s pods, as a share of the cluster\'s capacity, '
        f"stacked per queue; sampled at {len(grid):,} instants.</p>"
    )
    if not shares:
        out.append(svg.stacked_area([], [], title="utilisation"))
    for resource, per_queue in shares.items():
        out.append(
            svg.stacked_area(
                [t / 1000 for t in grid], list(per_queue.items()),
                title=f"{resource} allocated, share of capacity, per queue",
                x_label="simulated time", y_label=f"{resource} share",
                x_format=lambda s: duration(s * 1000), y_format=_percent,
            )
        )
    return "".join(out)


def pod_spans(events: Sequence[Envelope], end: int) -> dict[str, list[tuple[int, int, str]]]:
    """Each pod's spans in the Gantt chart's states, in the order pods were first requested.

    A pod is pending from its request to its bind, bound until it starts, then
    running; how it ended is a short mark at the end of its last span, as wide
    as ``end / 250`` (finished: succeeded, failed or deleted; evicted). A pod
    requested again (after an eviction) adds spans to the same row. Spans
    still open at the end run to ``end``.
    """
    spans: dict[str, list[tuple[int, int, str]]] = {}
    open_at: dict[str, tuple[int, str]] = {}
    mark = max(end // 250, 1)

    def close(pod: str, now: int, ending: str | None) -> None:
        if pod in open_at:
            start, was = open_at.pop(pod)
            spans[pod].append((start, now, was))
            if ending is not None:
                spans[pod].append((max(start, now - mark), now, ending))

    for env in events:
        e, now = env.payload, env.recorded_at
        if isinstance(e, PodRequested):
            close(e.pod, now, None)
            spans.setdefault(e.pod, [])
            open_at[e.pod] = (now, "pending")
        elif isinstance(e, PodBound) and e.pod in open_at:
            close(e.pod, now, None)
            open_at[e.pod] = (now, "bound")
        elif isinstance(e, PodStarted) and e.pod in open_at:
            close(e.pod, now, None)
            open_at[e.pod] = (now, "running")
        elif isinstance(e, PodSucceeded | PodFailed | PodDeleted) and e.pod in open_at:
            close(e.pod, now, "finished")
        elif isinstance(e, PodEvicted) and e.pod in open_at:
            close(e.pod, now, "evicted")
    for pod in list(open_at):
        close(pod, max(end, open_at[pod][0]), None)
    return spans


def _timeline_section(events: Sequence[Envelope], end: int) -> str:
    spans = pod_spans(events, end)
    shown = list(spans.items())[:MAX_GANTT_ROWS]
    out = ['<h2 id="timelines">Pod timelines</h2>']
    if len(spans) > len(shown):
        out.append(f'<p class="note">The first {len(shown):,} of {len(spans):,} pods, in the order they were requested.</p>')
    out.append(
        '<p class="note">Pending: requested, not yet bound. Bound: placed on a node, not yet started. '
        "A mark at the end of a run shows how it ended: finished (succeeded, failed or deleted) or evicted.</p>"
    )
    out.append(
        svg.gantt(
            [(pod, [(s / 1000, e / 1000, state) for s, e, state in segs]) for pod, segs in shown],
            title="pods", x_label="simulated time", x_range=(0, max(end, 1) / 1000), width=940,
            label_width=230, x_format=lambda s: duration(s * 1000),
        )
    )
    return "".join(out)


def _waits_section(report: Report) -> str:
    out = ['<h2 id="waits">Wait until Running</h2>']
    head = "<tr><th>queue</th><th>jobs</th><th>p50</th><th>p90</th><th>p99</th><th>max</th></tr>"
    rows = []
    for queue, w in report.waits.items():
        cells = [_figure(f"waits.{queue}.jobs", w["jobs"], f"{w['jobs']:,}")]
        cells += [_figure(f"waits.{queue}.{q}", w.get(q), duration(w.get(q))) for q in ("p50", "p90", "p99", "max")]
        rows.append(f"<tr><td>{escape(queue)}</td>{''.join(cells)}</tr>")
    out.append(f'<table class="waits">{head}{"".join(rows)}</table>')
    by_queue: dict[str, list[int]] = defaultdict(list)
    for job in report.jobs:
        if job.wait is not None:
            by_queue[job.queue].append(job.wait)
    series = []
    for queue in sorted(by_queue):
        waits = sorted(by_queue[queue])
        n = len(waits)
        cdf = [(w / 1000, (i + 1) / n) for i, w in enumerate(waits)]
        series.append((queue, svg.thin(cdf, MAX_CDF_POINTS)))
    out.append(
        svg.line_plot(
            series, title="wait-time distribution: share of jobs running within a wait, per queue",
            x_label="wait until Running", y_label="share of jobs", step=True, y_max=1.0, x_min=0.0,
            x_format=lambda s: duration(s * 1000), y_format=_percent,
        )
    )
    return "".join(out)


def _queues_section(report: Report, end: int) -> str:
    out = ['<h2 id="queues">Podgroups per queue</h2>']
    by_queue: dict[str, list[dict]] = defaultdict(list)
    for point in report.queue_series:
        by_queue[point["queue"]].append(point)
    waiting = []
    running = []
    for queue in sorted(by_queue):
        points = by_queue[queue]
        waiting.append((queue, svg.thin([(p["at"] / 1000, float(p["Pending"] + p["Inqueue"])) for p in points], MAX_SAMPLES)))
        running.append((queue, svg.thin([(p["at"] / 1000, float(p["Running"])) for p in points], MAX_SAMPLES)))
    for series, title in ((waiting, "podgroups waiting (Pending or Inqueue)"), (running, "podgroups running")):
        out.append(
            svg.line_plot(
                series, title=title, x_label="simulated time", y_label="podgroups", step=True,
                x_min=0.0, x_format=lambda s: duration(s * 1000),
            )
        )
    head = "<tr><th>queue</th><th>pending</th><th>inqueue</th><th>running</th><th>completed</th></tr>"
    rows = "".join(
        f"<tr><td>{escape(q)}</td>"
        + "".join(f'<td class="num">{pts[-1][k]:,}</td>' for k in ("Pending", "Inqueue", "Running", "Completed"))
        + "</tr>"
        for q, pts in sorted(by_queue.items())
    )
    out.append(f'<p class="note">At the end:</p><table class="queues">{head}{rows}</table>')
    return "".join(out)


def _evictions_section(report: Report) -> str:
    out = [f'<h2 id="evictions">Evictions ({len(report.evictions):,})</h2>']
    shown = report.evictions[:MAX_TABLE_ROWS]
    if len(report.evictions) > len(shown):
        out.append(f'<p class="note">The first {len(shown):,} of {len(report.evictions):,}.</p>')
    head = "<tr><th>at</th><th>pod</th><th>reason</th><th>preemptor</th><th>rule</th></tr>"
    rows = "".join(
        f'<tr><td class="num">{escape(duration(e.at))}</td><td>{escape(e.pod)}</td><td>{escape(e.reason)}</td>'
        f"<td>{escape(e.preemptor or '-')}</td><td>{escape(e.rule)}</td></tr>"
        for e in shown
    )
    out.append(f'<table class="evictions">{head}{rows}</table>' if shown else '<p class="note">None.</p>')
    return "".join(out)


def _jobs_section(report: Report) -> str:
    out = [f'<h2 id="jobs">Jobs ({len(report.jobs):,})</h2>']
    shown = report.jobs[:MAX_TABLE_ROWS]
    if len(report.jobs) > len(shown):
        out.append(f'<p class="note">The first {len(shown):,} of {len(report.jobs):,}, in the order they were submitted.</p>')
    head = "<tr><th>job</th><th>queue</th><th>submitted</th><th>wait</th><th>phase</th><th>timeline</th></tr>"
    rows = "".join(
        f"<tr><td>{escape(j.job)}</td><td>{escape(j.queue)}</td><td class=\"num\">{duration(j.submitted)}</td>"
        f'<td class="num">{duration(j.wait)}</td><td>{escape(j.phase)}</td>'
        f"<td>{escape(' > '.join(f'{p}@{duration(t)}' for t, p in j.phases))}</td></tr>"
        for j in shown
    )
    out.append(f'<table class="jobs">{head}{rows}</table>')
    return "".join(out)
