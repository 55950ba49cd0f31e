"""Charts as inline SVG, built from a section's rows: no images on disk, nothing fetched."""

from __future__ import annotations

import datetime as dt
from xml.sax.saxutils import escape

from orchestration.exports.sections import ChartSpec

WIDTH, HEIGHT = 700, 240
LEFT, RIGHT, TOP, BOTTOM = 52, 16, 26, 46
PALETTE = ["#1F6FEB", "#D1495B", "#EDAE49", "#00798C", "#6A4C93"]


def _num(value) -> float | None:
    # None stays None: a day without incidents has no attainment, which is not 0 %.
    if value is None:
        return None
    return float(value)


def _label(value) -> str:
    if isinstance(value, dt.date):
        return value.strftime("%d %b")
    return str(value)


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


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


def render_svg(spec: ChartSpec, columns: list[str], rows: list[tuple]) -> str:
    x_index = columns.index(spec.x)
    y_indexes = [columns.index(y) for y in spec.y]
    labels = [_label(r[x_index]) for r in rows]
    series = [[_num(r[i]) for r in rows] for i in y_indexes]
    top = _nice_max(max((v for s in series for v in s if v is not None), default=0.0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
           f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="10">']
    for step in range(5):  # horizontal grid with y labels
        value = top * step / 4
        y = TOP + plot_h - plot_h * step / 4
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#DDD"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 3:.1f}" text-anchor="end" fill="#555">{value:,.0f}</text>')
    n = max(len(rows), 1)
    label_every = max(1, n // 12)
    if spec.kind == "bar":
        group_w = plot_w / n
        bar_w = group_w * 0.8 / max(len(series), 1)
        for s_i, values in enumerate(series):
            for i, v in enumerate(values):
                h = plot_h * (v or 0.0) / top
                x = LEFT + i * group_w + group_w * 0.1 + s_i * bar_w
                out.append(f'<rect x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                           f'fill="{PALETTE[s_i % len(PALETTE)]}"/>')
        centers = [LEFT + (i + 0.5) * group_w for i in range(n)]
    else:
        step_x = plot_w / max(n - 1, 1)
        centers = [LEFT + i * step_x for i in range(n)]
        for s_i, values in enumerate(series):
            for segment in _segments(values):  # a missing value breaks the line
                points = " ".join(f"{centers[i]:.1f},{TOP + plot_h - plot_h * values[i] / top:.1f}" for i in segment)
                out.append(f'<polyline points="{points}" fill="none" stroke="{PALETTE[s_i % len(PALETTE)]}" stroke-width="2"/>')
    for i, label in enumerate(labels):
        if i % label_every == 0:
            out.append(f'<text x="{centers[i]:.1f}" y="{TOP + plot_h + 14}" text-anchor="middle" fill="#333">'
                       f'{escape(label)}</text>')
    out.append(f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" stroke="#888"/>')
    for s_i, name in enumerate(spec.y):  # legend
        x = LEFT + s_i * 160
        out.append(f'<rect x="{x}" y="{HEIGHT - 16}" width="10" height="10" fill="{PALETTE[s_i % len(PALETTE)]}"/>')
        out.append(f'<text x="{x + 14}" y="{HEIGHT - 7}" fill="#333">{escape(name.replace("_", " "))}</text>')
    out.append("</svg>")
    return "".join(out)
