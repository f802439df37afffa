"""HTML building blocks of the console: escaping, links, tables and the page shell.

Where it sits: under the console's pages (``eventbatch.ui.queues``, ``jobs``,
``job``). Every value a page shows goes through ``esc`` (or ``table``, which
escapes every cell), so a job named ``<script>`` shows as text. The page
shell carries the small stylesheet, the time-travel form and the few lines
of script that re-fetch the page's body when the log grows.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlencode


def esc(value: object) -> str:
    """``value`` as HTML text (quotes too: safe in attributes)."""
    return html.escape("" if value is None else str(value), quote=True)


@dataclass(frozen=True)
class Ctx:
    """What every page of one request needs: where it stands in time and how to link.

    ``keep`` holds the query parameters carried by every link (the token, and the
    moment a time-travelling page shows)."""

    position: int  # the position the page shows (-1: an empty log)
    end: int  # the position the console has folded up to (the live page's position)
    travel: bool  # True: the page shows a past position
    keep: Mapping[str, str] = field(default_factory=dict)

    def url(self, path: str, params: Mapping[str, object] | None = None, *, live: bool = False) -> str:
        query = {k: v for k, v in self.keep.items() if not (live and k in ("at", "time"))}
        for key, value in (params or {}).items():
            if value not in (None, ""):
                query[key] = str(value)
        return path + ("?" + urlencode(query) if query else "")

    def link(self, path: str, text: object, params: Mapping[str, object] | None = None) -> str:
        return f'<a href="{esc(self.url(path, params))}">{esc(text)}</a>'


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], *, cls: str = "", raw: frozenset[int] = frozenset(),
          row_attrs: Sequence[str] | None = None) -> str:
    """A table; cells are escaped except the columns in ``raw`` (already HTML)."""
    out = [f'<table class="{esc(cls)}"><thead><tr>']
    out += [f"<th>{esc(h)}</th>" for h in headers]
    out.append("</tr></thead><tbody>")
    for index, row in enumerate(rows):
        attrs = row_attrs[index] if row_attrs is not None else ""
        out.append(f"<tr{attrs}>")
        out += [f"<td>{cell if i in raw else esc(cell)}</td>" for i, cell in enumerate(row)]
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#fff}
header{background:#243b53;color:#fff;padding:8px 16px;display:flex;gap:16px;align-items:center;flex-wrap:wrap}
header a{color:#fff;text-decoration:none;font-weight:600}
header form{margin-left:auto;display:flex;gap:6px;align-items:center}
header input[type=text]{width:14em}
main{padding:12px 16px}
table{border-collapse:collapse;margin:8px 0}
th,td{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f0f4f8}
.travel{background:#fff3c4;padding:6px 16px;border-bottom:1px solid #e0c060}
.muted{color:#666}
.why{background:#f8f8f8;border-left:4px solid #d64545;padding:6px 10px;white-space:pre-wrap}
.chain{color:#555;font-size:12px}
form.filters{display:flex;gap:8px;flex-wrap:wrap;align-items:end}
svg{max-width:100%;height:auto}
"""

SCRIPT = """
(function(){
  var body=document.getElementById('body');
  if(!body||body.dataset.live!=='1'||!window.EventSource)return;
  var src=new EventSource(body.dataset.events);
  var busy=false,again=false;
  function refresh(){
    if(busy){again=true;return;}
    busy=true;
    var u=new URL(location.href);u.searchParams.set('fragment','1');
    fetch(u,{headers:{'Accept':'text/html'}}).then(function(r){return r.ok?r.text():null;}).then(function(t){
      if(t!==null){body.innerHTML=t;}
    }).finally(function(){busy=false;if(again){again=false;refresh();}});
  }
  src.addEventListener('position',function(e){
    if(String(body.dataset.position)!==e.data){body.dataset.position=e.data;refresh();}
  });
})();
"""


def page(ctx: Ctx, title: str, body: str) -> str:
    """A whole page: the header, the time-travel form, ``body`` in a live-updated ``#body``."""
    hidden = "".join(
        f'<input type="hidden" name="{esc(k)}" value="{esc(v)}">' for k, v in ctx.keep.items() if k == "token"
    )
    top = max(ctx.end, 0)
    shown = ctx.position if ctx.travel else top
    travel_form = (
        f'<form method="get" action="" id="travel">{hidden}'
        f'<label>position <input type="range" name="at" min="0" max="{top}" value="{max(shown, 0)}" '
        f'oninput="this.form.querySelector(\'output\').value=this.value" onchange="this.form.submit()"></label>'
        f"<output>{max(shown, 0)}</output>"
        f'<input type="text" name="time" placeholder="or a time: 2026-01-01T10:00:00Z, 10m" '
        f'value="{esc(ctx.keep.get("time", ""))}">'
        f'<button type="submit">go</button></form>'
    )
    banner = ""
    if ctx.travel:
        banner = (
            f'<div class="travel" id="travel-banner">As of position <b>#{ctx.position}</b> '
            f'(the log is at #{ctx.end}): a past state. '
            f'<a href="{esc(ctx.url("", live=True) or "?")}">back to now</a></div>'
        )
    events = ctx.url("/events", live=True)
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{esc(title)} · eventbatch</title><style>{STYLE}</style></head><body>"
        f'<header><a href="{esc(ctx.url("/"))}">Queues</a><a href="{esc(ctx.url("/jobs"))}">Jobs</a>'
        f"{travel_form}</header>{banner}"
        f'<main id="body" data-live="{0 if ctx.travel else 1}" data-position="{ctx.end}" '
        f'data-events="{esc(events)}">{body}</main>'
        f"<script>{SCRIPT}</script></body></html>"
    )
