"""The chart types the Reporting API's chart definitions add to the PDF's bar and line: stacked
bars stack to the total, area fills under its line, a pie's slices are the shares, and the pivot
totals rows per category and series without inventing zeros."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from orchestration.exports.chart_data import pivot
from orchestration.exports.charts import HEIGHT, TOP, render_svg, ticks
from orchestration.exports.sections import ChartSpec, Column

NS = "{http://www.w3.org/2000/svg}"
COLUMNS = [Column("x", "text"), Column("a", "bigint", "Opened"), Column("b", "bigint", "Resolved")]
ROWS = [("mon", 3, 1), ("tue", 5, 4)]


def _svg(kind: str, rows=ROWS) -> ET.Element:
    return ET.fromstring(render_svg(ChartSpec("s", kind, "x", ("a", "b"), "t"), COLUMNS, rows))


def test_stacked_bars_reach_the_total_of_their_series():
    bars = [r for r in _svg("stacked_bar").findall(f"{NS}rect") if float(r.get("height")) > 0 and r.get("width") != "10"]
    assert len(bars) == 4
    top = ticks(9)[-1]  # the tallest stack is 5 + 4
    plot_h = HEIGHT - TOP - 46
    tue = sorted((b for b in bars if float(b.get("x")) > 300), key=lambda b: float(b.get("y")))
    assert round(sum(float(b.get("height")) for b in tue), 1) == round(plot_h * 9 / top, 1)
    assert float(tue[0].get("y")) + float(tue[0].get("height")) == float(tue[1].get("y"))  # stacked, no gap


def test_area_fills_under_each_line():
    svg = _svg("area")
    assert len(svg.findall(f"{NS}polygon")) == 2 and len(svg.findall(f"{NS}polyline")) == 2


def test_pie_slices_are_shares_of_the_total():
    svg = ET.fromstring(render_svg(ChartSpec("s", "pie", "x", ("a",), "t"), COLUMNS, [("mon", 1, 0), ("tue", 3, 0)]))
    assert len(svg.findall(f"{NS}path")) == 2
    legend = [t.text for t in svg.findall(f"{NS}text")]
    assert any(re.search(r"Mon \(25\.0 %\)", t or "") for t in legend)
    assert any(re.search(r"Tue \(75\.0 %\)", t or "") for t in legend)
    single = ET.fromstring(render_svg(ChartSpec("s", "pie", "x", ("a",), "t"), COLUMNS, [("mon", 2, 0)]))
    assert len(single.findall(f"{NS}circle")) == 1


def test_pivot_totals_per_category_and_series_and_keeps_gaps():
    rows = [("mon", "high", 2), ("mon", "high", 3), ("mon", "low", 1), ("tue", "low", 4)]
    data = pivot(["day", "severity", "n"], rows, x="day", y=["n"], split=["severity"])
    assert data.categories == ("mon", "tue")
    assert {s.name: s.values for s in data.series} == {"high": (5, None), "low": (1, 4)}
    assert data.rows() == [("mon", 5, 1), ("tue", None, 4)]
