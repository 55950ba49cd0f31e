"""Charts as inline SVG, built from a section's rows: no images on disk, nothing fetched.

One drawing module for the PDF's charts and the Reporting API's chart definitions: bar,
stacked bar, line, area and pie share the frame, palette, ticks, labels and legend."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from xml.sax.saxutils import escape

from orchestration.exports.numbers import (
    DAYS_FROM_MINUTES,
    DURATION_UNITS,
    HOURS_FROM_MINUTES,
    code_label,
    column_heading,
    column_unit,
    is_code_column,
)
from orchestration.exports.sections import ChartSpec, Column

WIDTH, HEIGHT = 700, 240
LEFT, RIGHT, TOP, BOTTOM = 52, 16, 26, 46
CHAR_WIDTH = 6.0  # about the width of one character at font-size 10, in SVG units
PALETTE = ["#1F6FEB", "#D1495B", "#EDAE49", "#00798C", "#6A4C93"]


def _label(value, code: bool) -> str:
    if isinstance(value, dt.date):
        return value.strftime("%d %b")
    if value is None:
        return "\u2014"
    return code_label(str(value)) if code else str(value)


def duration_axis(columns: Sequence[Column], y: Sequence[str], rows: list[tuple]) -> tuple[float, str]:
    """(divisor, unit) of a chart whose series are all durations in minutes: long ones are drawn in
    hours or days, as the tables show them; (1, '') for any other chart."""
    by_name = {c.name: c for c in columns}
    if not y or any(column_unit(by_name[name]) not in DURATION_UNITS for name in y):
        return 1.0, ""
    indexes = [list(by_name).index(name) for name in y]
    highest = max((abs(float(r[i])) for r in rows for i in indexes if r[i] is not None), default=0.0)
    if highest >= DAYS_FROM_MINUTES:
        return 1440.0, "days"
    if highest >= HOURS_FROM_MINUTES:
        return 60.0, "h"
    return 1.0, "min"


def ticks(highest: float, intervals: int = 4) -> list[float]:
    """Axis ticks at round values (1, 2, 2.5 or 5 times a power of ten) from 0, the top one above
    the highest value, so the tallest bar never touches the frame."""
    if highest <= 0:
        return [0.0, 1.0]
    rough = highest / intervals
    magnitude = 10 ** math.floor(math.log10(rough))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= rough)
    count = math.floor(highest / step) + 1  # strictly above the highest value
    return [round(step * i, 10) for i in range(count + 1)]


def _tick_label(value: float, step: float) -> str:
    return f"{value:,.0f}" if step >= 1 and float(value).is_integer() else f"{value:,.1f}"


def _fit(label: str, chars: int) -> str:
    """A label shortened with an ellipsis so that neighbours never overlap."""
    return label if len(label) <= chars else label[: max(chars - 1, 1)].rstrip() + "\u2026"


def _segments(values: list[float | None]) -> list[list[int]]:
    """Indexes of the runs of present values."""
    runs, current = [], []
    for i, v in enumerate(values):
        if v is None:
            if current:
                runs.append(current)
            current = []
        else:
            current.append(i)
    if current:
        runs.append(current)
    return runs


_PLOT_W, _PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM


def _colour(s_i: int) -> str:
    return PALETTE[s_i % len(PALETTE)]


def _bars(out: list[str], series: list[list[float | None]], n: int, top: float, **_) -> list[float]:
    """Side-by-side bars per category; returns the category centres."""
    group_w = _PLOT_W / n
    bar_w = group_w * 0.8 / max(len(series), 1)
    for s_i, values in enumerate(series):
        for i, v in enumerate(values):
            h = _PLOT_H * (v or 0.0) / top
            x = LEFT + i * group_w + group_w * 0.1 + s_i * bar_w
            out.append(f'<rect x="{x:.1f}" y="{TOP + _PLOT_H - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                       f'fill="{_colour(s_i)}"/>')
    return [LEFT + (i + 0.5) * group_w for i in range(n)]


def _stacked_bars(out: list[str], series: list[list[float | None]], n: int, top: float, **_) -> list[float]:
    """One bar per category, the series stacked in order (negative and missing values add nothing)."""
    group_w = _PLOT_W / n
    base = [0.0] * n
    for s_i, values in enumerate(series):
        for i, v in enumerate(values):
            h = _PLOT_H * max(v or 0.0, 0.0) / top
            y = TOP + _PLOT_H - _PLOT_H * base[i] / top - h
            out.append(f'<rect x="{LEFT + i * group_w + group_w * 0.1:.1f}" y="{y:.1f}" width="{group_w * 0.8:.1f}" '
                       f'height="{h:.1f}" fill="{_colour(s_i)}"/>')
            base[i] += max(v or 0.0, 0.0)
    return [LEFT + (i + 0.5) * group_w for i in range(n)]


def _lines(out: list[str], series: list[list[float | None]], n: int, top: float, *, area: bool) -> list[float]:
    """A line per series (an area also fills down to the axis, translucent); a missing value breaks it."""
    centers = [LEFT + (i + 0.5) * _PLOT_W / n for i in range(n)]  # inset: clear of the y labels
    floor = TOP + _PLOT_H
    for s_i, values in enumerate(series):
        for segment in _segments(values):
            points = " ".join(f"{centers[i]:.1f},{floor - _PLOT_H * values[i] / top:.1f}" for i in segment)
            if area:
                out.append(f'<polygon points="{centers[segment[0]]:.1f},{floor} {points} {centers[segment[-1]]:.1f},'
                           f'{floor}" fill="{_colour(s_i)}" fill-opacity="0.25" stroke="none"/>')
            out.append(f'<polyline points="{points}" fill="none" stroke="{_colour(s_i)}" stroke-width="2"/>')
    return centers


def render_svg(spec: ChartSpec, columns: Sequence[str | Column], rows: list[tuple]) -> str:
    """`columns` are the section's columns (or bare names): their labels name the series and
    code columns on the x axis show labels, not codes."""
    cols = [c if isinstance(c, Column) else Column(c, "text") for c in columns]
    names = [c.name for c in cols]
    x_index = names.index(spec.x)
    y_indexes = [names.index(y) for y in spec.y]
    labels = [_label(r[x_index], is_code_column(cols[x_index])) for r in rows]
    divisor, unit = duration_axis(cols, spec.y, rows)
    # None stays None: a day without incidents has no attainment, which is not 0 %.
    series = [[None if r[i] is None else float(r[i]) / divisor for r in rows] for i in y_indexes]
    if spec.kind == "pie":
        return _pie(labels, [column_heading(cols[i]) for i in y_indexes], series[0])
    if spec.kind == "stacked_bar":  # the scale reaches the tallest stack
        highest = max((sum(max(v or 0.0, 0.0) for v in point) for point in zip(*series, strict=True)), default=0.0)
    else:
        highest = max((v for s in series for v in s if v is not None), default=0.0)
    scale = ticks(highest)
    top, step_value = scale[-1], scale[1] - scale[0]
    plot_w, plot_h = _PLOT_W, _PLOT_H
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
           f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="10">']
    for value in scale:  # horizontal grid with y labels
        y = TOP + plot_h - plot_h * value / top
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#DDD"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 3:.1f}" text-anchor="end" fill="#555">'
                   f'{_tick_label(value, step_value)}</text>')
    n = max(len(rows), 1)
    label_every = max(1, n // 12)
    draw = {"bar": _bars, "stacked_bar": _stacked_bars}.get(spec.kind, _lines)
    centers = draw(out, series, n, top, area=spec.kind == "area")
    room = int(plot_w / n * label_every / CHAR_WIDTH) - 1  # characters that fit between two labels
    for i, label in enumerate(labels):
        if i % label_every == 0:
            out.append(f'<text x="{centers[i]:.1f}" y="{TOP + plot_h + 14}" text-anchor="middle" fill="#333">'
                       f'{escape(_fit(label, room))}</text>')
    out.append(f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" stroke="#888"/>')
    # A bar series of zeros draws nothing and a line series without values neither: no legend entry.
    bars = spec.kind in ("bar", "stacked_bar")
    shown = [s_i for s_i, values in enumerate(series) if any(v if bars else v is not None for v in values)]
    for slot, s_i in enumerate(shown):  # legend: only series with data, named by their column label
        x = LEFT + slot * 200
        name = column_heading(cols[y_indexes[s_i]]) + (f" ({unit})" if unit else "")
        out.append(f'<rect x="{x}" y="{HEIGHT - 16}" width="10" height="10" fill="{PALETTE[s_i % len(PALETTE)]}"/>')
        out.append(f'<text x="{x + 14}" y="{HEIGHT - 7}" fill="#333">{escape(name)}</text>')
    out.append("</svg>")
    return "".join(out)


def _pie(labels: list[str], names: list[str], values: list[float | None]) -> str:
    """One slice per category (negative and missing values draw nothing), the legend naming each
    slice with its share; the frame, palette and fonts of the other charts."""
    shares = [max(v or 0.0, 0.0) for v in values]
    total = sum(shares)
    cx, cy, radius = LEFT + (HEIGHT - TOP - BOTTOM) / 2 + 20, TOP + (HEIGHT - TOP - 16) / 2, (HEIGHT - TOP - 30) / 2
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
           f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="10">']
    if total <= 0:
        out.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{radius:.1f}" fill="none" stroke="#DDD"/>')
        out.append(f'<text x="{cx:.1f}" y="{cy + 3:.1f}" text-anchor="middle" fill="#555">no data</text>')
    angle = -math.pi / 2  # from twelve o'clock, clockwise
    slot = 0
    for i, share in enumerate(shares):
        if share <= 0:
            continue
        colour = PALETTE[i % len(PALETTE)]
        sweep = 2 * math.pi * share / total
        if share == total:  # one slice: a full circle (an arc cannot start and end at one point)
            out.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{radius:.1f}" fill="{colour}"/>')
        else:
            x1, y1 = cx + radius * math.cos(angle), cy + radius * math.sin(angle)
            x2, y2 = cx + radius * math.cos(angle + sweep), cy + radius * math.sin(angle + sweep)
            large = 1 if sweep > math.pi else 0
            out.append(f'<path d="M{cx:.1f},{cy:.1f} L{x1:.1f},{y1:.1f} A{radius:.1f},{radius:.1f} 0 {large} 1 '
                       f'{x2:.1f},{y2:.1f} Z" fill="{colour}" stroke="#FFF" stroke-width="1"/>')
        angle += sweep
        y = TOP + slot * 16
        if y < HEIGHT - 16:
            out.append(f'<rect x="{WIDTH / 2}" y="{y}" width="10" height="10" fill="{colour}"/>')
            out.append(f'<text x="{WIDTH / 2 + 14}" y="{y + 9}" fill="#333">{escape(_fit(labels[i], 40))} '
                       f'({100 * share / total:.1f} %)</text>')
        slot += 1
    out.append(f'<text x="{LEFT}" y="{HEIGHT - 7}" fill="#333">{escape(", ".join(names))}</text>')
    out.append("</svg>")
    return "".join(out)


def svg_to_png(svg: str, *, scale: float = 2.0) -> bytes:
    """The chart as a PNG, rasterized by CairoSVG (libcairo ships beside WeasyPrint's pango), at
    twice the SVG's size so it stays sharp on high-density screens."""
    import cairosvg  # imported here: only a PNG request pays for loading cairo

    return cairosvg.svg2png(bytestring=svg.encode(), scale=scale)
