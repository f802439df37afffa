"""The console's job page (``/jobs/NAMESPACE/NAME``): status, phase timeline, pods, causation, why.

Where it sits: a page of ``eventbatch.ui.app``. It shows what the command
line shows of one job, from the same sources:

- the status: the ``job_view`` row (or, for a removed job, ``job_history``),
  as ``eventbatch job view``;
- the phase timeline: the job's ``JobPhaseChanged`` entries of its audit timeline;
- the pods as a Gantt chart (pending, bound, running, finished, evicted)
  from ``pod_view``'s times;
- the causation chain of every event: ``ReadModelStore.audit`` and
  ``eventbatch.cli.audit.chain``, as ``eventbatch audit job``;
- why it is pending or was evicted: ``eventbatch.cli.why``'s ``Story`` and
  ``explain`` over the log from the job's first event, with the rule.

A page as of a past position shows the timeline and the story up to it.
"""

from __future__ import annotations

import json
from contextlib import aclosing
from typing import TYPE_CHECKING

from aiohttp import web

from eventbatch.cli import CliError
from eventbatch.cli.audit import chain
from eventbatch.cli.events import format_time
from eventbatch.cli.why import Story, explain
from eventbatch.ui import svg
from eventbatch.ui.html import esc, table
from projections.views.rows import AuditRow, PodRow

if TYPE_CHECKING:
    from eventbatch.ui.app import View

AUDIT_SHOWN = 2_000  # timeline entries listed (the newest); the rest are counted


def _ms(value: int | None) -> str:
    return "-" if value is None else format_time(value).strip()


async def _timeline(view: View, key: str) -> list[AuditRow]:
    """The job's audit timeline up to the page's position (the live store holds it)."""
    console = view.console
    if view.store is console.store:  # the page's handler holds the lock
        rows = await console.store.audit("job", key)
    else:
        async with console.lock:
            rows = await console.store.audit("job", key)
    return [r for r in rows if r.position <= view.ctx.position]


async def _story(view: View, key: str, start: int) -> list[str]:
    """``eventbatch why``'s lines for the job, from the log between ``start`` and the page's position."""
    story = Story(key)
    log = view.console.log
    last = view.ctx.position
    if start <= last:
        async with aclosing(log.read(start)) as envelopes:
            async for env in envelopes:
                if env.position > last:
                    break
                story.observe(env)
                if env.position >= last:
                    break
    try:
        return explain(story)
    except CliError as exc:
        return [str(exc)]


def _phase(detail: str) -> str:
    inside = detail.partition("(")[2].rstrip(")")
    return inside.split(",")[0].strip() or detail


def _segments(pod: PodRow, until: int) -> list[tuple[int, int, str]]:
    """A pod's spans in ms: pending, bound, running, then finished or evicted."""
    out: list[tuple[int, int, str]] = []
    bound_at = pod.bound_at
    start = pod.started_at
    end = pod.finished_at
    evicted = pod.phase == "Evicted"
    marks = [(pod.requested_at, "pending"), (bound_at, "bound"), (start, "running")]
    present = [(t, s) for t, s in marks if t is not None]
    for index, (t, state) in enumerate(present):
        nxt = present[index + 1][0] if index + 1 < len(present) else (end if end is not None else until)
        out.append((t, max(nxt, t + 1), state))  # a span still open at the page's moment: a sliver
    if end is not None:
        out.append((end, max(end + 1, until), "evicted" if evicted else "finished"))
    return out


async def render(request: web.Request, view: View) -> tuple[str, str]:
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    key = f"{namespace}/{name}"
    store = view.store
    rows = await store.rows("job_view", "key = ?", (key,))
    removed = not rows
    if removed:
        rows = await store.rows("job_history", "key = ?", (key,), order="submitted_at DESC")
    timeline = await _timeline(view, key)
    if not rows and not timeline:
        raise web.HTTPNotFound(text=f"job {key} not found" + (f" at #{view.ctx.position}" if view.ctx.travel else "") + "\n")
    pods = await store.rows("pod_view", "job = ?", (key,), order="requested_at, key")
    ctx = view.ctx
    parts = [f"<h1>Job {esc(key)}</h1>"]
    if rows:
        row = rows[0]
        status = json.loads(row.status)
        state = status.get("state", {})
        facts = [
            ("Queue", ctx.link("/jobs", row.queue, {"queue": row.queue})),
            ("Phase", f'<b id="phase">{esc(row.phase)}</b>' + (f" ({esc(state['reason'])})" if state.get("reason") else "")),
            ("Pods", esc(f"pending {row.pending}, running {row.running}, succeeded {row.succeeded}, failed "
                         f"{row.failed}, terminating {row.terminating}, unknown {row.unknown}")),
            ("Retries", esc(f"{row.retry_count} · version {row.version} · minAvailable {row.min_available}")),
            ("Submitted", esc(_ms(row.submitted_at))),
        ]
        if state.get("message"):
            facts.append(("Message", esc(state["message"])))
        if removed:
            facts.append(("Removed", "yes: its last status, from the history"))
        parts.append('<table class="facts">' + "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in facts) + "</table>")
    else:
        parts.append(f'<p>No status row as of #{ctx.position}: the job was not yet created.</p>')

    start = timeline[0].position if timeline else 0
    lines = await _story(view, key, start)
    parts.append('<h2>Why</h2><div class="why" id="why">' + "\n".join(esc(line) for line in lines) + "</div>")

    phases = [(r.position, r.recorded_at, _phase(r.detail)) for r in timeline if r.type == "JobPhaseChanged"]
    parts.append("<h2>Phase timeline</h2>")
    if phases:
        spans = []
        for index, (position, at, phase) in enumerate(phases):
            until = phases[index + 1][1] if index + 1 < len(phases) else None
            spans.append([f"#{position}", _ms(at), phase, "-" if until is None else f"{(until - at) / 1000:.3f}s"])
        parts.append(table(["POSITION", "TIME", "PHASE", "FOR"], spans, cls="phases"))
    else:
        parts.append('<p class="muted">no phase change recorded yet</p>')

    parts.append("<h2>Pods</h2>")
    if pods:
        times = [t for p in pods for t in (p.requested_at, p.bound_at, p.started_at, p.finished_at) if t is not None]
        times += [r.recorded_at for r in timeline]
        t0, until = min(times), max(times)
        gantt_rows = [(p.key.rsplit("/", 1)[-1], [((s - t0) / 1000, (e - t0) / 1000, st) for s, e, st in _segments(p, until)])
                      for p in pods]
        parts.append('<div class="plot" id="pods-gantt">' + svg.gantt(
            gantt_rows, title="Pods", x_label=f"seconds since {_ms(t0)}") + "</div>")
        parts.append(table(
            ["POD", "PHASE", "NODE", "BOUND", "STARTED", "FINISHED", "EXIT", "REASON"],
            [[p.key, p.phase, p.node or "-", _ms(p.bound_at), _ms(p.started_at), _ms(p.finished_at),
              "-" if p.exit_code is None else p.exit_code, p.reason] for p in pods], cls="pods"))
    else:
        parts.append('<p class="muted">no pods</p>')

    parts.append(f"<h2>Events and their causes</h2><p class=\"muted\">{len(timeline)} event(s), as "
                 "<code>eventbatch audit job</code> lists them</p>")
    by_position = {r.position: r for r in timeline}
    shown = timeline[-AUDIT_SHOWN:]
    if len(shown) < len(timeline):
        parts.append(f'<p class="muted">the newest {len(shown)} of {len(timeline)}</p>')
    audit_rows = []
    for r in shown:
        cause = chain(r, by_position) if r.cause_position is not None else ""
        audit_rows.append([f"#{r.position}", _ms(r.recorded_at), r.detail, r.cause_handler or "-", r.rule or "-",
                           f'<span class="chain">{esc(cause)}</span>'])
    parts.append(table(["POSITION", "TIME", "EVENT", "BY", "RULE", "CAUSATION"], audit_rows, cls="audit",
                       raw=frozenset({5})))
    return key, "".join(parts)
