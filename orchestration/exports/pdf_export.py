"""PDF: a Jinja2 page rendered by WeasyPrint, tables capped with a statement of what was left out.

The renderer may fetch nothing: only data: URLs are allowed, so a value in the data can
never make it read a local file or reach the network. The same report and generation time give
the same bytes: the document's dates come from the run (<meta name=dcterms.created>), no file
identifier is written, and the embedded fonts carry the run's time too (font_timestamps).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import re
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import jinja2
from weasyprint import HTML
from weasyprint.formatting_structure import boxes
from weasyprint.urls import URLFetcher

from orchestration.exports import numbers, pdf_fonts
from orchestration.exports.charts import duration_axis, render_svg
from orchestration.exports.rows import first_rows
from orchestration.exports.sections import REDACTION_MASK, Column, ReportContext, SectionSnapshot

pdf_fonts.install()  # font subsets made once per process, not per font of every PDF
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


# The marking's colour by sensitivity; an unknown sensitivity gets the strongest.
MARKING_COLORS = {"internal": "#1F2A44", "confidential": "#B35900", "restricted": "#B00020"}
NEARLY_EMPTY = 0.3  # a last page used less than this is worth a tighter layout
LONG_TOKEN = 30  # a cell with a longer unbroken token may break it anywhere; shorter ones (ids) never


def display(value, column: Column) -> str:
    if isinstance(value, str):
        value = _CONTROL.sub("\ufffd", value)
        if len(value) > PDF_CELL_CHARS:
            # Page layout of one unbreakable 30,000-character cell takes minutes; say it was cut.
            value = value[:PDF_CELL_CHARS] + PDF_CELL_MARKER
    return numbers.cell(value, column)


def _cell_class(text: str, numeric: bool) -> str:
    """A redaction marker, an id, a date or any other single short token is one unit that never
    splits across lines (columns are sized to hold it); only a very long token may break anywhere."""
    classes = ["num"] if numeric else []
    tokens = text.split()
    if text == REDACTION_MASK or (len(tokens) == 1 and len(text) <= LONG_TOKEN):
        classes.append("nowrap")
    elif any(len(token) > LONG_TOKEN for token in tokens):
        classes.append("long")
    return " ".join(classes)


def _single_tenant_column(section: SectionSnapshot, rows: list[tuple]) -> int | None:
    """The tenant column's index when every row names the same tenant (the header says which)."""
    names = [c.name for c in section.columns]
    if "tenant_id" not in names or not rows:
        return None
    i = names.index("tenant_id")
    return i if len({r[i] for r in rows}) == 1 else None


def _table(section: SectionSnapshot, rows: list[tuple]) -> dict:
    skip = _single_tenant_column(section, rows)
    keep = [i for i in range(len(section.columns)) if i != skip]
    columns = [section.columns[i] for i in keep]
    numeric = [c.type in ("integer", "bigint", "numeric") for c in columns]
    body = []
    for row in rows:
        texts = [display(row[i], section.columns[i]) for i in keep]
        body.append([(t, _cell_class(t, n)) for t, n in zip(texts, numeric, strict=True)])
    return {
        "title": section.title,
        "headers": [(numbers.column_heading(c), "num" if n else "") for c, n in zip(columns, numeric, strict=True)],
        "rows": body,
        "row_count": section.row_count,
        "left_out": max(section.row_count - len(rows), 0),
    }


def _figure_rows(report: ReportContext) -> list[list[dict]]:
    """Key-figure cards in rows of at most five, balanced so every row is filled edge to edge."""
    cards = []
    for f in report.key_figures:
        value, unit = numbers.key_figure_parts(f.value, f.unit)
        cards.append({"label": f.label, "value": value, "unit": unit})
    if not cards:
        return []
    per_row = math.ceil(len(cards) / math.ceil(len(cards) / 5))
    return [cards[i:i + per_row] for i in range(0, len(cards), per_row)]


def write_pdf(conn, report: ReportContext, sections: Sequence[SectionSnapshot], path: Path, *, row_cap: int = 500) -> int:
    by_name = {s.name: s for s in sections}
    charts = []
    for spec in report.charts:
        section = by_name.get(spec.section)
        if section is None:
            continue
        rows = first_rows(conn, section, CHART_POINTS)
        _, unit = duration_axis(section.columns, spec.y, rows)
        title = spec.title.replace("(min)", f"({unit})") if unit else spec.title  # drawn in hours or days
        charts.append({"title": title, "svg": render_svg(spec, list(section.columns), rows)})
    tables = []
    shown = 0
    for section in sections:
        rows = first_rows(conn, section, row_cap)
        shown += len(rows)
        tables.append(_table(section, rows))
    def html(compact: bool) -> str:
        return _env.get_template("report.html.j2").render(
            report=report, charts=[{**c, "svg": jinja2.utils.markupsafe.Markup(c["svg"])} for c in charts],
            tables=tables, figure_rows=_figure_rows(report), compact=compact,
            marking_color=MARKING_COLORS.get(report.sensitivity, "#B00020"),
            generated=report.generated_at.strftime("%Y-%m-%d %H:%M UTC"),
        )

    document = _layout(html)
    with font_timestamps(report.generated_at):
        document.write_pdf(str(path))
    return shown


_SOURCE_DATE_EPOCH = "SOURCE_DATE_EPOCH"
_epoch_lock = threading.Lock()


@contextlib.contextmanager
def font_timestamps(at: dt.datetime) -> Iterator[None]:
    """The embedded font subsets carry `at` as their modification time, not the clock's.

    fontTools, which subsets the fonts here (without HarfBuzz-subset), stamps each subset's `head`
    table with the time it saves it unless SOURCE_DATE_EPOCH (reproducible-builds.org) is set;
    with the run's generation time in it, the same report renders to the same bytes. The
    variable is process-wide: writes hold a lock so two renders never see each other's time."""
    with _epoch_lock:
        before = os.environ.get(_SOURCE_DATE_EPOCH)
        os.environ[_SOURCE_DATE_EPOCH] = str(int(at.timestamp()))
        try:
            yield
        finally:
            if before is None:
                os.environ.pop(_SOURCE_DATE_EPOCH, None)
            else:
                os.environ[_SOURCE_DATE_EPOCH] = before


def _layout(html):
    """The laid-out document; a last page that would stay nearly empty is avoided by laying the
    report out once more, tighter (smaller charts, closer rows), when that saves the page."""
    document = HTML(string=html(False), base_url=None, url_fetcher=safe_url_fetcher()).render()
    if len(document.pages) > 1 and last_page_fill(document) < NEARLY_EMPTY:
        tight = HTML(string=html(True), base_url=None, url_fetcher=safe_url_fetcher()).render()
        if len(tight.pages) < len(document.pages):
            return tight
    return document


def warm_up() -> None:
    """Render a small page in the report's style once, so this process has loaded the fonts and
    made their subsets (pdf_fonts' cache): the worker pool's parent calls it before it forks, and
    every worker it forks starts with them."""
    style = (Path(__file__).with_name("base_style.css")).read_text()
    html = (f"<html><head><style>{style}</style></head><body><h1>Nexus Reports</h1><p>warm-up 0123456789</p>"
            "<table><tr><th>field</th><td>value</td></tr></table><p><b>bold</b> <i>italic</i></p></body></html>")
    with font_timestamps(dt.datetime(2000, 1, 1, tzinfo=dt.UTC)):
        HTML(string=html, base_url=None, url_fetcher=safe_url_fetcher()).write_pdf()


def last_page_fill(document) -> float:
    """How much of the last page's content area is used (0 to 1)."""
    page = document.pages[-1]._page_box
    lines = [b for b in page.children[0].descendants() if isinstance(b, boxes.LineBox)]
    bottom = max((b.position_y + b.margin_height() for b in lines), default=page.content_box_y())
    return (bottom - page.content_box_y()) / page.height
