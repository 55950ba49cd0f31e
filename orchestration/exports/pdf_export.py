"""PDF: a Jinja2 page rendered by WeasyPrint, tables capped with a statement of what was left out.

The renderer may fetch nothing: only data: URLs are allowed, so a value in the data can
never make it read a local file or reach the network.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import jinja2
from weasyprint import HTML
from weasyprint.urls import URLFetcher

from orchestration.exports.charts import render_svg
from orchestration.exports.rows import first_rows
from orchestration.exports.sections import ReportContext, SectionSnapshot

CHART_POINTS = 400
_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def safe_url_fetcher() -> URLFetcher:
    return URLFetcher(allowed_protocols={"data"}, allow_redirects=False, fail_on_errors=False)


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


PDF_CELL_CHARS = 300
PDF_CELL_MARKER = "…[cut: full value in the CSV/XLSX/JSON files]"


def display(value) -> str:
    if isinstance(value, str):
        value = _CONTROL.sub("\ufffd", value)
        if len(value) > PDF_CELL_CHARS:
            # Page layout of one unbreakable 30,000-character cell takes minutes; say it was cut.
            value = value[:PDF_CELL_CHARS] + PDF_CELL_MARKER
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal):
        return f"{value:,f}" if value != value.to_integral_value() else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def write_pdf(conn, report: ReportContext, sections: Sequence[SectionSnapshot], path: Path, *, row_cap: int = 500) -> int:
    by_name = {s.name: s for s in sections}
    charts = []
    for spec in report.charts:
        section = by_name.get(spec.section)
        if section is None:
            continue
        rows = first_rows(conn, section, CHART_POINTS)
        charts.append({"title": spec.title, "svg": render_svg(spec, [c.name for c in section.columns], rows)})
    tables = []
    shown = 0
    for section in sections:
        rows = first_rows(conn, section, row_cap)
        shown += len(rows)
        numeric = [c.type in ("integer", "bigint", "numeric") for c in section.columns]
        tables.append({
            "title": section.title,
            "headers": [c.header for c in section.columns],
            "numeric": numeric,
            "rows": [[display(v) for v in row] for row in rows],
            "row_count": section.row_count,
            "left_out": max(section.row_count - len(rows), 0),
        })
    html = _env.get_template("report.html.j2").render(
        report=report, charts=[{**c, "svg": jinja2.utils.markupsafe.Markup(c["svg"])} for c in charts],
        tables=tables, generated=report.generated_at.strftime("%Y-%m-%d %H:%M UTC"),
    )
    HTML(string=html, base_url=None, url_fetcher=safe_url_fetcher()).write_pdf(str(path))
    return shown
