"""Small SVG plots as strings: stacked areas, lines, Gantt charts.

Where it sits: at the very end of the pipeline, after the read models and
the simulation report have turned the log into numbers. The web console's
queue and job pages and ``eventbatch simulate --html`` embed what these
functions return straight into HTML (inline ``<svg>``, no script, no
external reference, no ``xmlns`` URL), so a page works offline.

Every function is pure and deterministic: the same input gives the same
bytes (numbers are printed with fixed precision, colours come from a fixed
palette in input order). Every piece of text that reaches the output goes
through :func:`escape`, so a label such as ``<script>`` shows as text.
Empty inputs give a small plot that says "no data" rather than an error.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

# Colour-blind-friendly palette (Okabe-Ito, then a few more), assigned in input order.
PALETTE = (
    "#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9",
    "#d55e00", "#f0e442", "#000000", "#999999", "#882255",
)

# Gantt segment states, in legend order, with their colours.
GANTT_STATES: dict[str, str] = {
    "pending": "#d9d9d9",
    "bound": "#56b4e9",
    "running": "#009e73",
    "finished": "#0072b2",
    "evicted": "#d55e00",
}

_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

Formatter = Callable[[float], str]


def escape(text: object) -> str:
    """``text`` as safe XML/HTML character data or attribute value.

    ``&``, ``<``, ``>``, ``"`` and ``'`` become entities; characters XML
    cannot carry at all (control characters, lone surrogates) become U+FFFD.
    """
    s = _INVALID_XML.sub("\ufffd", str(text))
    return (
        s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        .replace('"', "&quot;").replace("'", "&#39;")
    )


def _num(v: float) -> str:
    """A coordinate with at most one decimal, never ``-0``."""
    s = f"{v:.1f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def default_format(v: float) -> str:
    """Tick labels: integers without a decimal point, others with up to 3 significant digits."""
    if v == int(v) and abs(v) < 1e15:
        return f"{int(v):,}"
    return f"{v:.3g}"


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering [lo, hi] (steps of 1, 2, 2.5 or 5 times a power of ten)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    k = 0
    while (v := first + k * step) <= hi + step * 1e-9:
        ticks.append(round(v, 10))
        k += 1
    return ticks


def thin(points: Sequence[tuple[float, float]], limit: int) -> list[tuple[float, float]]:
    """At most ``limit`` points of ``points``, evenly spaced by index, first and last kept."""
    n = len(points)
    if n <= limit:
        return list(points)
    if limit < 2:
        return list(points[-1:]) if limit == 1 else []
    return [points[round(i * (n - 1) / (limit - 1))] for i in range(limit)]


class _Frame:
    """The plot area of one chart: maps data to pixels and draws axes."""

    def __init__(
        self, *, width: int, height: int, x_range: tuple[float, float], y_range: tuple[float, float],
        left: int = 56, right: int = 12, top: int = 28, bottom: int = 40,
    ) -> None:
        self.width, self.height = width, height
        self.left, self.right, self.top, self.bottom = left, right, top, bottom
        self.x0, self.x1 = x_range
        self.y0, self.y1 = y_range
        if self.x1 <= self.x0:
            self.x1 = self.x0 + 1
        if self.y1 <= self.y0:
            self.y1 = self.y0 + 1

    @property
    def plot_w(self) -> float:
        return max(self.width - self.left - self.right, 1)

    @property
    def plot_h(self) -> float:
        return max(self.height - self.top - self.bottom, 1)

    def px(self, x: float) -> float:
        return self.left + (x - self.x0) / (self.x1 - self.x0) * self.plot_w

    def py(self, y: float) -> float:
        return self.top + self.plot_h - (y - self.y0) / (self.y1 - self.y0) * self.plot_h

    def axes(self, *, x_format: Formatter, y_format: Formatter | None, x_label: str, y_label: str) -> list[str]:
        out = []
        base = self.top + self.plot_h
        out.append(
            f'<line class="axis" x1="{_num(self.left)}" y1="{_num(base)}" x2="{_num(self.left + self.plot_w)}" '
            f'y2="{_num(base)}" stroke="#333"/>'
        )
        for t in nice_ticks(self.x0, self.x1, max(2, int(self.plot_w // 110))):
            x = self.px(t)
            out.append(f'<line x1="{_num(x)}" y1="{_num(base)}" x2="{_num(x)}" y2="{_num(base + 4)}" stroke="#333"/>')
            out.append(
                f'<text class="tick" x="{_num(x)}" y="{_num(base + 15)}" text-anchor="middle">{escape(x_format(t))}</text>'
            )
        if x_label:
            out.append(
                f'<text class="axis-label" x="{_num(self.left + self.plot_w / 2)}" y="{_num(self.height - 4)}" '
                f'text-anchor="middle">{escape(x_label)}</text>'
            )
        if y_format is not None:
            out.append(
                f'<line class="axis" x1="{_num(self.left)}" y1="{_num(self.top)}" x2="{_num(self.left)}" '
                f'y2="{_num(base)}" stroke="#333"/>'
            )
            for t in nice_ticks(self.y0, self.y1, max(2, int(self.plot_h // 40))):
                y = self.py(t)
                out.append(
                    f'<line x1="{_num(self.left)}" y1="{_num(y)}" x2="{_num(self.left + self.plot_w)}" y2="{_num(y)}" '
                    f'stroke="#eee"/>'
                )
                out.append(
                    f'<text class="tick" x="{_num(self.left - 4)}" y="{_num(y + 4)}" text-anchor="end">'
                    f"{escape(y_format(t))}</text>"
                )
            if y_label:
                out.append(
                    f'<text class="axis-label" x="12" y="{_num(self.top + self.plot_h / 2)}" text-anchor="middle" '
                    f'transform="rotate(-90 12 {_num(self.top + self.plot_h / 2)})">{escape(y_label)}</text>'
                )
        return out


def _open(kind: str, width: int, height: int, title: str) -> list[str]:
    label = escape(title or kind)
    return [
        f'<svg class="eb-plot {kind}" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{label}" font-family="sans-serif" font-size="11">',
        f"<title>{label}</title>",
        f'<rect width="{width}" height="{height}" fill="#fff"/>',
    ]


def _title(title: str, width: int) -> list[str]:
    if not title:
        return []
    return [f'<text class="plot-title" x="{_num(width / 2)}" y="16" text-anchor="middle" font-size="13">{escape(title)}</text>']


def _empty(kind: str, width: int, height: int, title: str) -> str:
    return "".join(
        _open(kind, width, height, title) + _title(title, width)
        + [f'<text class="no-data" x="{_num(width / 2)}" y="{_num(height / 2)}" text-anchor="middle">no data</text>', "</svg>"]
    )


def _legend(names: Sequence[str], colours: Sequence[str], *, x: float, y: float, width: float) -> list[str]:
    """One row (wrapping) of colour swatches and names, starting at (x, y)."""
    out = ['<g class="legend">']
    cx, cy = x, y
    for name, colour in zip(names, colours, strict=True):
        w = 18 + 6.5 * min(len(name), 40)
        if cx + w > x + width and cx > x:
            cx, cy = x, cy + 14
        out.append(f'<rect x="{_num(cx)}" y="{_num(cy - 9)}" width="10" height="10" fill="{colour}"/>')
        out.append(f'<text x="{_num(cx + 13)}" y="{_num(cy)}">{escape(name[:40])}</text>')
        cx += w
    out.append("</g>")
    return out


def _legend_rows(names: Sequence[str], width: float) -> int:
    rows, cx = 1, 0.0
    for name in names:
        w = 18 + 6.5 * min(len(name), 40)
        if cx + w > width and cx > 0:
            rows, cx = rows + 1, 0.0
        cx += w
    return rows


def stacked_area(
    xs: Sequence[float],
    series: Sequence[tuple[str, Sequence[float]]],
    *,
    title: str = "",
    x_label: str = "",
    y_label: str = "",
    width: int = 720,
    height: int = 260,
    step: bool = True,
    x_format: Formatter = default_format,
    y_format: Formatter = default_format,
) -> str:
    """Series stacked over a shared x axis, the first at the bottom.

    ``series`` is ``[(name, values)]`` with one value per x in ``xs`` (ascending).
    With ``step`` (the default) each value holds until the next x, as an
    allocation does between two events; else points are joined by straight lines.
    """
    kind = "stacked-area"
    series = [(name, list(values)) for name, values in series]
    if not xs or not series:
        return _empty(kind, width, height, title)
    for name, values in series:
        if len(values) != len(xs):
            raise ValueError(f"series {name!r} has {len(values)} values for {len(xs)} x values")
    names = [n for n, _ in series]
    legend_rows = _legend_rows(names, width - 68)
    totals = [sum(v[i] for _, v in series) for i in range(len(xs))]
    frame = _Frame(
        width=width, height=height + 14 * legend_rows, x_range=(xs[0], xs[-1]),
        y_range=(0, max(max(totals), 0) or 1), bottom=40 + 14 * legend_rows,
    )
    out = _open(kind, width, frame.height, title) + _title(title, width)
    out += frame.axes(x_format=x_format, y_format=y_format, x_label=x_label, y_label=y_label)
    below = [0.0] * len(xs)
    colours = [PALETTE[i % len(PALETTE)] for i in range(len(series))]
    for (name, values), colour in zip(series, colours, strict=True):
        above = [b + v for b, v in zip(below, values, strict=True)]
        top_pts = _path_points(xs, above, step=step)
        bottom_pts = _path_points(xs, below, step=step)[::-1]
        pts = " ".join(f"{_num(frame.px(x))},{_num(frame.py(y))}" for x, y in top_pts + bottom_pts)
        out.append(
            f'<polygon class="series" data-series="{escape(name)}" points="{pts}" fill="{colour}" fill-opacity="0.85" '
            f'stroke="{colour}"><title>{escape(name)}</title></polygon>'
        )
        below = above
    out += _legend(names, colours, x=frame.left, y=frame.height - 10 - 14 * (legend_rows - 1), width=width - 68)
    out.append("</svg>")
    return "".join(out)


def _path_points(xs: Sequence[float], ys: Sequence[float], *, step: bool) -> list[tuple[float, float]]:
    if not step:
        return list(zip(xs, ys, strict=True))
    pts: list[tuple[float, float]] = []
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        if i:
            pts.append((x, ys[i - 1]))
        pts.append((x, y))
    return pts


def line_plot(
    series: Sequence[tuple[str, Sequence[tuple[float, float]]]],
    *,
    title: str = "",
    x_label: str = "",
    y_label: str = "",
    width: int = 720,
    height: int = 260,
    step: bool = False,
    y_min: float | None = 0.0,
    y_max: float | None = None,
    x_min: float | None = None,
    x_format: Formatter = default_format,
    y_format: Formatter = default_format,
    markers: bool = False,
) -> str:
    """Several series of ``(x, y)`` points (each ascending in x) on shared axes.

    The y axis starts at ``y_min`` (0 by default; None: the smallest y) and ends
    at ``y_max`` (None: the largest y); the x axis starts at ``x_min`` (None:
the smallest x) and ends at the largest x. ``step`` draws each value held until the
    next point; ``markers`` adds a dot at each point.
    """
    kind = "line-plot"
    series = [(name, list(points)) for name, points in series]
    all_pts = [p for _, points in series for p in points]
    if not all_pts:
        return _empty(kind, width, height, title)
    xs = [x for x, _ in all_pts]
    ys = [y for _, y in all_pts]
    lo = min(ys) if y_min is None else min(y_min, min(ys))
    hi = max(ys) if y_max is None else max(y_max, max(ys))
    names = [n for n, _ in series]
    legend_rows = _legend_rows(names, width - 68)
    frame = _Frame(
        width=width, height=height + 14 * legend_rows, x_range=(min(xs) if x_min is None else min(x_min, min(xs)), max(xs)), y_range=(lo, hi),
        bottom=40 + 14 * legend_rows,
    )
    out = _open(kind, width, frame.height, title) + _title(title, width)
    out += frame.axes(x_format=x_format, y_format=y_format, x_label=x_label, y_label=y_label)
    colours = [PALETTE[i % len(PALETTE)] for i in range(len(series))]
    for (name, points), colour in zip(series, colours, strict=True):
        if not points:
            continue
        drawn = _path_points([x for x, _ in points], [y for _, y in points], step=step)
        pts = " ".join(f"{_num(frame.px(x))},{_num(frame.py(y))}" for x, y in drawn)
        out.append(
            f'<polyline class="series" data-series="{escape(name)}" points="{pts}" fill="none" stroke="{colour}" '
            f'stroke-width="2"><title>{escape(name)}</title></polyline>'
        )
        if markers:
            for x, y in points:
                out.append(f'<circle cx="{_num(frame.px(x))}" cy="{_num(frame.py(y))}" r="2.5" fill="{colour}"/>')
    out += _legend(names, colours, x=frame.left, y=frame.height - 10 - 14 * (legend_rows - 1), width=width - 68)
    out.append("</svg>")
    return "".join(out)


def gantt(
    rows: Sequence[tuple[str, Sequence[tuple[float, float, str]]]],
    *,
    title: str = "",
    x_label: str = "",
    width: int = 720,
    row_height: int = 16,
    label_width: int = 160,
    x_range: tuple[float, float] | None = None,
    x_format: Formatter = default_format,
) -> str:
    """Rows of coloured segments: ``[(row label, [(start, end, state)])]``.

    ``state`` is one of :data:`GANTT_STATES` (pending, bound, running, finished,
    evicted); any other state raises ``ValueError``. The x axis spans
    ``x_range`` or, when None, the segments' extent. A legend of the states
    sits under the axis.
    """
    kind = "gantt"
    rows = [(label, list(segments)) for label, segments in rows]
    ends = [t for _, segs in rows for s, e, _ in segs for t in (s, e)]
    if not rows or (not ends and x_range is None):
        return _empty(kind, width, 120, title)
    for label, segs in rows:
        for _, _, state in segs:
            if state not in GANTT_STATES:
                raise ValueError(f"row {label!r}: unknown state {state!r}; one of {', '.join(GANTT_STATES)}")
    lo, hi = x_range if x_range is not None else (min(ends), max(ends))
    top = 28 if title else 10
    height = top + row_height * len(rows) + 40 + 14
    frame = _Frame(
        width=width, height=height, x_range=(lo, hi), y_range=(0, 1), left=label_width, top=top, bottom=54,
    )
    out = _open(kind, width, height, title) + _title(title, width)
    out += frame.axes(x_format=x_format, y_format=None, x_label=x_label, y_label="")
    max_chars = max(4, int((label_width - 8) / 6.5))
    for i, (label, segs) in enumerate(rows):
        y = top + i * row_height
        shown = label if len(label) <= max_chars else label[: max_chars - 1] + "\u2026"
        out.append(
            f'<g class="row" data-row="{escape(label)}"><title>{escape(label)}</title>'
            f'<text x="{_num(label_width - 6)}" y="{_num(y + row_height * 0.72)}" text-anchor="end">{escape(shown)}</text>'
        )
        for start, end, state in segs:
            x0 = frame.px(max(start, lo))
            x1 = frame.px(min(end, hi))
            w = max(x1 - x0, 0.5)
            out.append(
                f'<rect class="seg {state}" x="{_num(x0)}" y="{_num(y + 2)}" width="{_num(w)}" '
                f'height="{_num(row_height - 4)}" fill="{GANTT_STATES[state]}">'
                f"<title>{escape(label)}: {state} {escape(x_format(start))} \u2013 {escape(x_format(end))}</title></rect>"
            )
        out.append("</g>")
    legend_y = top + row_height * len(rows) + 32  # under the tick labels, above the axis label
    out += _legend(list(GANTT_STATES), list(GANTT_STATES.values()), x=label_width, y=legend_y, width=width - label_width)
    out.append("</svg>")
    return "".join(out)
