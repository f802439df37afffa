"""The console's job list (``/jobs``): JobView filtered by queue, namespace, phase and text, paged.

Where it sits: a page of ``eventbatch.ui.app``. It reads ``job_view`` (the
rows ``eventbatch job list`` shows, in its order: submission time, then key)
with the filters and one page of ``PAGE`` rows as SQL, so a store of 100,000
jobs answers with one page's rows, not all of them (``bench/console.py``
measures it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from eventbatch.ui.html import esc, table
from projections.views.rows import JobRow, columns

if TYPE_CHECKING:
    from eventbatch.ui.app import View

PAGE = 100
PHASES = ("Pending", "Aborting", "Aborted", "Running", "Restarting", "Completing", "Completed", "Terminating",
          "Terminated", "Failed")
_COLUMNS = ", ".join(columns(JobRow))


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def query(store, *, queue: str = "", namespace: str = "", phase: str = "", text: str = "",
                page: int = 0) -> tuple[int, list[JobRow], list[str]]:
    """(the number of jobs that match, the rows of page ``page``, every queue with a job)."""
    where, params = [], []
    for column, value in (("queue", queue), ("namespace", namespace), ("phase", phase)):
        if value:
            where.append(f"{column} = ?")
            params.append(value)
    if text:
        where.append("key LIKE ? ESCAPE '\\'")
        params.append(_like(text))
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    async with store.db.execute(f"SELECT COUNT(*) FROM job_view{clause}", params) as cur:
        found = await cur.fetchone()
    total = found[0] if found else 0
    async with store.db.execute(
        f"SELECT {_COLUMNS} FROM job_view{clause} ORDER BY submitted_at, key LIMIT ? OFFSET ?",
        [*params, PAGE, page * PAGE],
    ) as cur:
        rows = [JobRow(*row) for row in await cur.fetchall()]
    async with store.db.execute("SELECT name FROM queue_view ORDER BY name") as cur:
        queues = [row[0] for row in await cur.fetchall()]
    return total, rows, queues


def _select(name: str, options: list[str], chosen: str) -> str:
    opts = ['<option value="">any</option>'] + [
        f'<option value="{esc(o)}"{" selected" if o == chosen else ""}>{esc(o)}</option>' for o in options]
    return f'<label>{esc(name)} <select name="{esc(name)}">{"".join(opts)}</select></label>'


async def render(request: web.Request, view: View) -> tuple[str, str]:
    q = view.query
    try:
        page = max(0, int(q.get("page", "0") or 0))
    except ValueError:
        raise web.HTTPBadRequest(text="page: a number\n") from None
    filters = {k: q.get(k, "").strip() for k in ("queue", "namespace", "phase", "text")}
    total, rows, queues = await query(view.store, page=page, **filters)
    ctx = view.ctx
    hidden = "".join(f'<input type="hidden" name="{esc(k)}" value="{esc(v)}">' for k, v in ctx.keep.items())
    form = (
        f'<form class="filters" method="get" action="/jobs">{hidden}'
        f'{_select("queue", queues, filters["queue"])}'
        f'<label>namespace <input type="text" name="namespace" value="{esc(filters["namespace"])}"></label>'
        f'{_select("phase", list(PHASES), filters["phase"])}'
        f'<label>name contains <input type="text" name="text" value="{esc(filters["text"])}"></label>'
        '<button type="submit">filter</button></form>'
    )
    cells = [[ctx.link(f"/jobs/{r.namespace}/{r.name}", r.name), r.namespace, r.queue, r.phase, r.min_available,
              r.pending, r.running, r.succeeded, r.failed, r.retry_count] for r in rows]
    attrs = [f' data-job="{esc(r.key)}" data-phase="{esc(r.phase)}"' for r in rows]
    last = max(0, (total - 1) // PAGE)
    nav = []
    if page > 0:
        nav.append(ctx.link("/jobs", "« previous", {**filters, "page": page - 1}))
    nav.append(f'<span id="paging">page {page + 1} of {last + 1} · {total:,} job(s)</span>')
    if page < last:
        nav.append(ctx.link("/jobs", "next »", {**filters, "page": page + 1}))
    body = (
        f'<h1>Jobs</h1><p class="muted">as of position #{ctx.position}</p>{form}'
        f'<p class="paging">{" ".join(nav)}</p>'
        + table(["NAME", "NAMESPACE", "QUEUE", "PHASE", "MINAVAILABLE", "PENDING", "RUNNING", "SUCCEEDED",
                 "FAILED", "RETRIES"], cells, cls="jobs", raw=frozenset({0}), row_attrs=attrs)
    )
    return "Jobs", body
