"""The SVG helpers: well-formed XML, hostile text shown as text, empty inputs, determinism."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from eventbatch.ui import svg

HOSTILE = "<script>alert('x')</script> & \"q\" \x00\x07"


def parse(doc: str) -> ET.Element:
    root = ET.fromstring(doc)
    assert root.tag == "svg"
    return root


def texts(root: ET.Element) -> list[str]:
    return ["".join(e.itertext()) for e in root.iter("text")]


def test_escape_makes_markup_text_and_drops_what_xml_cannot_carry() -> None:
    out = svg.escape(HOSTILE)
    assert "<" not in out and ">" not in out and '"' not in out and "'" not in out
    assert "\x00" not in out and "\x07" not in out
    # parsed back, the text is what was given (control characters replaced)
    root = ET.fromstring(f'<t a="{out}">{out}</t>')
    assert root.text == root.get("a") == "<script>alert('x')</script> & \"q\" \ufffd\ufffd"


def test_stacked_area_is_xml_with_one_polygon_per_series_stacked_in_order() -> None:
    doc = svg.stacked_area(
        [0, 10, 20], [("a", [1, 2, 3]), ("b", [2, 2, 2])], title="allocation", x_label="time", y_label="cpu"
    )
    root = parse(doc)
    polys = [p for p in root.iter("polygon") if p.get("class") == "series"]
    assert [p.get("data-series") for p in polys] == ["a", "b"]
    # the second series sits on the first: its top at x=20 is y=5, the highest point of the plot
    tops = [min(float(pt.split(",")[1]) for pt in p.get("points", "").split()) for p in polys]
    assert tops[1] < tops[0]
    labels = texts(root)
    assert "allocation" in labels and "time" in labels and "cpu" in labels and "a" in labels and "b" in labels
    assert "5" in labels  # a y tick at the stacked total


def test_stacked_area_rejects_series_of_the_wrong_length() -> None:
    with pytest.raises(ValueError, match="'a' has 2 values for 3"):
        svg.stacked_area([0, 1, 2], [("a", [1, 2])])


def test_line_plot_draws_each_series_and_keeps_hostile_labels_as_text() -> None:
    doc = svg.line_plot([(HOSTILE, [(0, 1), (5, 3)]), ("p90", [(0, 2), (5, 4)])], title=HOSTILE, markers=True)
    assert "<script>" not in doc
    root = parse(doc)
    lines = [p for p in root.iter("polyline") if p.get("class") == "series"]
    assert len(lines) == 2
    assert lines[0].get("data-series") == "<script>alert('x')</script> & \"q\" \ufffd\ufffd"
    assert root.get("aria-label", "").startswith("<script>")
    assert len(list(root.iter("circle"))) == 4


def test_gantt_has_a_row_per_label_a_segment_per_state_and_a_legend_of_states() -> None:
    rows = [
        ("job-a/pod-0", [(0, 10, "pending"), (10, 12, "bound"), (12, 50, "running"), (50, 60, "finished")]),
        (HOSTILE, [(5, 20, "pending"), (20, 30, "running"), (30, 31, "evicted")]),
    ]
    doc = svg.gantt(rows, title="pods", x_label="seconds")
    assert "<script>" not in doc
    root = parse(doc)
    groups = [g for g in root.iter("g") if g.get("class") == "row"]
    assert [g.get("data-row") for g in groups] == ["job-a/pod-0", HOSTILE.replace("\x00", "\ufffd").replace("\x07", "\ufffd")]
    segs = [r.get("class") for r in root.iter("rect") if (r.get("class") or "").startswith("seg ")]
    assert segs == ["seg pending", "seg bound", "seg running", "seg finished", "seg pending", "seg running", "seg evicted"]
    legend = next(g for g in root.iter("g") if g.get("class") == "legend")
    assert texts(legend) == list(svg.GANTT_STATES)
    # a later segment is further right
    xs = [float(r.get("x", "0")) for r in root.iter("rect") if (r.get("class") or "").startswith("seg ")]
    assert xs[0] < xs[1] < xs[2] < xs[3]


def test_gantt_rejects_an_unknown_state() -> None:
    with pytest.raises(ValueError, match="unknown state 'sleeping'"):
        svg.gantt([("p", [(0, 1, "sleeping")])])


@pytest.mark.parametrize(
    "doc",
    [
        svg.stacked_area([], [("a", [])]),
        svg.stacked_area([0, 1], []),
        svg.line_plot([]),
        svg.line_plot([("a", [])]),
        svg.gantt([]),
        svg.gantt([("p", [])]),
    ],
)
def test_empty_inputs_give_a_plot_saying_no_data(doc: str) -> None:
    assert "no data" in texts(parse(doc))


def test_same_input_same_bytes_and_no_external_reference() -> None:
    def draw() -> str:
        return svg.stacked_area([0, 1.5, 3], [("x", [0.1, 0.2, 0.3])]) + svg.gantt([("p", [(0, 1, "running")])])

    assert draw() == draw()
    assert "http" not in draw() and "href" not in draw()


def test_a_flat_or_single_point_series_still_draws() -> None:
    root = parse(svg.line_plot([("a", [(7, 0)])]))
    assert len([p for p in root.iter("polyline")]) == 1
    root = parse(svg.stacked_area([3], [("a", [0])]))
    assert len(list(root.iter("polygon"))) == 1


def test_thin_bounds_the_points_and_keeps_the_ends() -> None:
    points = [(float(i), float(i * i)) for i in range(10_001)]
    kept = svg.thin(points, 500)
    assert len(kept) == 500 and kept[0] == points[0] and kept[-1] == points[-1]
    assert svg.thin(points[:3], 500) == points[:3]


def test_nice_ticks_are_round_and_cover_the_range() -> None:
    assert svg.nice_ticks(0, 100, 5) == [0, 20, 40, 60, 80, 100]
    assert svg.nice_ticks(0, 1, 4) == [0, 0.25, 0.5, 0.75, 1]
    assert svg.nice_ticks(5, 5) == [5]
