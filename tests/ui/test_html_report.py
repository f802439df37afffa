"""``eventbatch simulate --html``: one self-contained page whose figures are ``--json``'s.

The simulations run as a user runs them (a subprocess on a real SQLite log);
the page is read back with an HTML parser and ``xml.etree`` for its plots.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from eventbatch.sim.html_report import MAX_GANTT_ROWS, MAX_SAMPLES, render
from eventbatch.sim.report import Eviction, JobLine, PodLine, Report

ROOT = Path(__file__).resolve().parents[2]
PREEMPTION = ROOT / "examples" / "preemption.yaml"


def eventbatch(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eventbatch", *args],
        cwd=cwd, capture_output=True, text=True, timeout=600,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )


def simulate(tmp_path: Path, scenario: Path) -> tuple[dict, str]:
    page = tmp_path / "report.html"
    result = eventbatch("--log", f"sqlite:///{tmp_path / 'sim.db'}", "simulate", str(scenario), "--json", "--html", str(page))
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout), page.read_text(encoding="utf-8")


class Page(HTMLParser):
    """The figures (``data-figure``), the tables' rows and the inline SVGs of a report."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.figures: dict[str, str] = {}
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self.feed(text)
        self.svgs = [ET.fromstring(m) for m in re.findall(r"<svg\b.*?</svg>", text, re.S)]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if "data-figure" in a:
            self.figures[a["data-figure"] or ""] = a.get("data-value") or ""
        if tag == "table":
            self._table = a.get("class") or ""
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def plots(self, kind: str) -> list[ET.Element]:
        return [s for s in self.svgs if kind in (s.get("class") or "").split()]


def assert_self_contained(text: str) -> None:
    for pattern in (r"https?://", r"\bsrc\s*=", r"\bhref\s*=", r"url\(", r"@import", r"<script", r"<link", r"<img", r"<iframe"):
        assert not re.search(pattern, text, re.I), f"the page refers outside itself: {pattern}"


def test_the_preemption_report_has_the_plots_and_the_figures_of_json(tmp_path: Path) -> None:
    report, text = simulate(tmp_path, PREEMPTION)
    assert_self_contained(text)
    page = Page(text)
    figures = page.figures
    for key in ("events", "virtual_time_ms", "sessions", "makespan"):
        assert figures[key] == repr(report[key]), key
    assert figures["stopped"] == repr(report["stopped"])
    assert figures["jobs"] == repr(len(report["jobs"]))
    assert figures["pods"] == repr(len(report["pods"]))
    assert figures["evictions"] == repr(len(report["evictions"])) == "4"
    assert figures["never_ran"] == repr(len(report["never_ran"]))
    assert {k.split(".", 1)[1] for k in figures if k.startswith("utilisation.")} == set(report["utilisation"])
    for resource, value in report["utilisation"].items():
        assert float(figures[f"utilisation.{resource}"]) == value
    for queue, waits in report["waits"].items():
        for q, value in waits.items():
            assert float(figures[f"waits.{queue}.{q}"]) == value
    # the plots: utilisation per resource stacked per queue, the pods' Gantt, the waits, the podgroups
    stacked = page.plots("stacked-area")
    assert {s.get("aria-label") for s in stacked} >= {"cpu allocated, share of capacity, per queue"}
    assert all(s.find("polygon[@data-series='default']") is not None for s in stacked)
    [gantt] = page.plots("gantt")
    rows = [g.get("data-row") or "" for g in gantt.iter("g") if g.get("class") == "row"]
    assert sorted(rows) == sorted(p["pod"] for p in report["pods"])
    states = {r.get("class") for r in gantt.iter("rect") if (r.get("class") or "").startswith("seg ")}
    assert {"seg pending", "seg running", "seg finished", "seg evicted"} <= states
    assert any("wait-time distribution" in (s.get("aria-label") or "") for s in page.plots("line-plot"))
    # the evictions: the pod, the preemptor and the rule, as --json gives them
    evictions = page.tables["evictions"][1:]
    assert [(r[1], r[3], r[4]) for r in evictions] == [
        (e["pod"], e["preemptor"] or "-", e["rule"]) for e in report["evictions"]
    ]
    assert all(r[4] == "preempt.priority" for r in evictions)


@pytest.mark.slow
def test_a_big_run_gives_a_bounded_page(tmp_path: Path) -> None:
    jobs = [
        {
            "at": f"{i * 10}s",
            "apply": {
                "apiVersion": "batch.volcano.sh/v1alpha1", "kind": "Job",
                "metadata": {"name": f"job-{i}", "namespace": "default"},
                "spec": {
                    "queue": "prod" if i % 3 == 0 else "dev", "minAvailable": 2,
                    "tasks": [{
                        "name": "w", "replicas": 2,
                        "template": {
                            "metadata": {"annotations": {"eventbatch.io/sim-duration": f"{(i % 7 + 1) * 3}m"}},
                            "spec": {"containers": [{"name": "c", "image": "busybox",
                                                     "resources": {"requests": {"cpu": "2", "memory": "1Gi"}}}]},
                        },
                    }],
                },
            },
        }
        for i in range(160)
    ]
    scenario = tmp_path / "big.json"
    scenario.write_text(json.dumps({
        "nodes": [{"prefix": "n-", "count": 4, "allocatable": {"cpu": "8", "memory": "32Gi"}}],
        "queues": [
            {"apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "Queue", "metadata": {"name": n}, "spec": {"weight": w}}
            for n, w in (("prod", 2), ("dev", 1))
        ],
        "workload": jobs, "until": "all-finished",
    }))
    report, text = simulate(tmp_path, scenario)
    assert_self_contained(text)
    page = Page(text)
    assert len(report["pods"]) == 320 and page.figures["pods"] == "320"
    [gantt] = page.plots("gantt")
    assert len([g for g in gantt.iter("g") if g.get("class") == "row"]) == MAX_GANTT_ROWS
    assert f"The first {MAX_GANTT_ROWS} of 320 pods" in text
    for plot in page.plots("stacked-area"):
        for polygon in plot.iter("polygon"):
            # a step outline of at most MAX_SAMPLES instants, top and bottom
            assert len(polygon.get("points", "").split()) <= 4 * MAX_SAMPLES
    assert {p.get("data-series") for p in page.plots("stacked-area")[0].iter("polygon")} == {"dev", "prod"}
    assert len(text) < 250_000, len(text)


def test_hostile_names_show_as_text() -> None:
    hostile = "<script>alert(1)</script>"
    report = Report(
        jobs=[JobLine(f"ns/{hostile}", "q<img src=x onerror=alert(2)>", 0, [(0, "Pending"), (5, "Running")])],
        pods=[PodLine(f"ns/{hostile}-0", f"ns/{hostile}", "node-<b>", 1, 2, 3, "Succeeded")],
        evictions=[Eviction(3, f"ns/{hostile}-0", "<i>reason</i>", "<u>p</u>", "preempt.priority")],
        queue_series=[{"at": 0, "queue": "q<img src=x onerror=alert(2)>", "Pending": 1, "Inqueue": 0, "Running": 0, "Completed": 0}],
        waits={"q<img src=x onerror=alert(2)>": {"jobs": 1, "p50": 5.0, "p90": 5.0, "p99": 5.0, "max": 5.0}},
        utilisation={}, gpu_series=[], makespan=None, never_ran=[f"ns/{hostile}"],
    )
    meta = {"scenario": f"{hostile}.yaml", "log": "sqlite:///x.db", "events": 0, "virtual_time_ms": 10,
            "sessions": 0, "stopped": hostile}
    text = render(report, meta, [])
    assert "<script" not in text and "<img" not in text and "<b>" not in text and "<i>" not in text
    page = Page(text)
    assert page.figures["stopped"] == repr(hostile)
    assert page.tables["jobs"][1][0] == f"ns/{hostile}"
    assert page.tables["evictions"][1][1:4] == [f"ns/{hostile}-0", "<i>reason</i>", "<u>p</u>"]
    # every plot still parses as XML, and the queue's line carries its name as text
    series = {p.get("data-series") for s in page.plots("line-plot") for p in s.iter("polyline")}
    assert "q<img src=x onerror=alert(2)>" in series


@pytest.mark.parametrize("target", ["missing-dir/report.html", "a-dir"])
def test_an_unwritable_report_path_is_refused_before_the_run(tmp_path: Path, target: str) -> None:
    (tmp_path / "a-dir").mkdir()
    before = sorted(p.name for p in tmp_path.rglob("*"))
    result = eventbatch("simulate", str(PREEMPTION), "--html", target, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and target in lines[0], result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    # no report, and no simulation log under var/ either
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
