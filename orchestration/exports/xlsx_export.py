"""XLSX: an About sheet, then one sheet per section, streamed (exports/xlsx_package.py).

Text is always written as text (never a formula or a URL, whatever it starts with). What XLSX
cannot hold is changed visibly, never silently: XML-illegal control characters become U+FFFD,
cells over Excel's 32,767 characters are cut with a marker, and sections past Excel's row limit
continue on numbered sheets.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path

import openpyxl

from orchestration.exports import xlsx_cells as xc
from orchestration.exports import xlsx_package as xp
from orchestration.exports.numbers import column_unit
from orchestration.exports.rows import stream_rows
from orchestration.exports.sections import Column, ReportContext, SectionSnapshot
from orchestration.exports.xlsx_cells import MAX_CELL_CHARS, TRUNCATION_MARKER, clean_text
from orchestration.exports.xlsx_styles import STYLE

__all__ = ["HEADER_ROWS", "MAX_CELL_CHARS", "MAX_DATA_ROWS", "TRUNCATION_MARKER", "clean_text", "sheet_name", "write_xlsx"]

HEADER_ROWS = 2  # the marking row and the column header row, above every table
MAX_DATA_ROWS = 1_048_576 - HEADER_ROWS  # Excel's row limit less the header rows
# Number formats per kind of value: counts whole, everything measured to one decimal.
NUMBER_FORMATS = {"count": "#,##0", "%": "0.0", "ms": "#,##0", "": "#,##0.0", "min": "#,##0.0", "h": "#,##0.0",
                  "days": "#,##0.0"}
_SHEET_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")


def sheet_name(title: str, taken: set[str]) -> str:
    """At most 31 characters, cut at a word boundary, no trailing spaces or punctuation, and
    unique in the workbook (case-insensitively, as Excel compares them)."""
    base = _short(_SHEET_FORBIDDEN.sub("", title).strip("' "), 31) or "Sheet"
    name, n = base, 2
    while name.lower() in {t.lower() for t in taken}:
        suffix = f" ({n})"
        name, n = _short(base, 31 - len(suffix)) + suffix, n + 1
    taken.add(name)
    return name


def _short(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit]
    if text[limit] != " " and " " in cut:
        cut = cut.rsplit(" ", 1)[0]  # never half a word
    return cut.rstrip(" -–—,;:.(")


def _column_style(column: Column) -> int | None:
    """Whole numbers for counts, one decimal for shares, durations and other measures."""
    if column.type in ("integer", "bigint"):
        return STYLE[NUMBER_FORMATS["count"]]
    if column.type == "numeric":
        return STYLE[NUMBER_FORMATS.get(column_unit(column), NUMBER_FORMATS[""])]
    return {"date": STYLE["date"], "timestamptz": STYLE["datetime"]}.get(column.type)


def _unit_style(unit: str, value) -> int:
    if isinstance(value, int):
        return STYLE[NUMBER_FORMATS["count"]]
    return STYLE[NUMBER_FORMATS.get(unit, NUMBER_FORMATS[""])]


def _encoder(column: Column) -> xc.Encoder:
    """One encoder per column, chosen once from the declared type (the hot loop does no type
    dispatch); a value of another type than declared still goes through the general encoder."""
    if column.type == "text":
        return xc.text_encoder()
    if column.type in ("integer", "bigint", "numeric"):
        return xc.number_encoder(_column_style(column))
    if column.type in ("date", "timestamptz"):
        return xc.date_encoder(_column_style(column))
    if column.type == "boolean":
        return xc.boolean_encoder()
    return xc.any_cell


class _Widths:
    """Column widths from the content: the longest value seen in the first rows of each column."""

    SAMPLE_ROWS = 1000
    MIN, MAX = 8, 60

    def __init__(self, columns: Sequence[Column]):
        self.columns = columns
        self.chars = [min(max(len(w) for w in c.header.split()) if c.header.split() else 0, 24) for c in columns]

    def see(self, rows: Sequence[Sequence]) -> None:
        for values in rows:
            for col, value in enumerate(values):
                if value.__class__ is str:
                    chars = min(len(value), MAX_CELL_CHARS)
                elif isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
                    chars = len(f"{value:,.1f}")
                else:
                    continue
                if chars > self.chars[col]:
                    self.chars[col] = chars

    def columns_xml(self) -> list[tuple[float, int | None]]:
        least = {"date": 11, "timestamptz": 20}  # written as dates, not tracked as text
        return [(max(self.MIN, least.get(c.type, 0), min(self.MAX, self.chars[i] + 2)), _column_style(c))
                for i, c in enumerate(self.columns)]


def _marking_line(report: ReportContext) -> str:
    variant = " · EXTERNAL (REDACTED) VARIANT" if report.redacted else ""
    return f"{report.marking}{variant} · {report.title} · {report.tenant_name} · {report.period_label}"


def _new_sheet(book: xp.Workbook, report: ReportContext, name: str, frozen_rows: int = 0) -> xp.Sheet:
    """Printed pages carry the marking too, in the page header and footer."""
    return book.sheet(name, header=f"&C&B{report.marking}", footer=f"&L{report.marking}&RPage &P of &N",
                      frozen_rows=frozen_rows)


def _about_sheet(book: xp.Workbook, report: ReportContext, taken: set[str]) -> None:
    sheet = _new_sheet(book, report, sheet_name("About", taken))
    sheet.write_cells([(0, clean_text(_marking_line(report)), STYLE["marking"])])
    sheet.write_cells([(0, clean_text(report.title), STYLE["title"])])
    sheet.write_cells([])
    facts = [
        ("Classification", report.marking),
        ("Variant", "external (redacted)" if report.redacted else "internal (complete)"),
        ("Tenant", f"{report.tenant_name} ({report.tenant_id})"),
        ("Period", report.period_label),
        ("Window", f"{report.window_start.isoformat()} to {report.window_end.isoformat()} (exclusive)"),
        ("Template", f"{report.template_key} v{report.template_version}"),
        ("Run id", report.run_id),
        ("Input hash", report.input_hash),
        ("Generated at", report.generated_at.isoformat()),
    ]
    if report.degraded:
        sheet.write_cells([(0, "DEGRADED", STYLE["marking"]),
                           (1, clean_text(report.degraded_reason or "source data incomplete"), STYLE["marking"])])
    if report.redacted:
        sheet.write_cells([(0, "Redactions", STYLE["marking"]), (1, clean_text(report.variant_statement), STYLE["wrap"])])
    for label, value in facts:
        sheet.write_cells([(0, label, STYLE["label"]), (1, clean_text(value), 0)])
    if report.key_figures:
        sheet.write_cells([])
        sheet.write_cells([(0, "Key figures", STYLE["title"]), (1, "value (unit)", STYLE["label"])])
        for figure in report.key_figures:
            label = (0, clean_text(figure.label), STYLE["label"])
            if figure.value is None:
                sheet.write_cells([label, (1, "no value in this period", 0)])
            else:  # a number with its number format; the unit beside it
                unit = [(2, figure.unit, 0)] if figure.unit else []
                sheet.write_cells([label, (1, float(figure.value), _unit_style(figure.unit, figure.value)), *unit])
    sheet.close(widths=[(28, None), (90, None)])


def write_xlsx(conn, report: ReportContext, sections: Sequence[SectionSnapshot], path: Path) -> int:
    # The generation time, never the clock, dates the zip members and the document properties:
    # a rerun with that time writes the same bytes.
    book = xp.Workbook(path, report.generated_at, title=report.title)
    taken: set[str] = set()
    total = 0
    try:
        _about_sheet(book, report, taken)
        for section in sections:
            total += _write_section(book, report, section, taken, stream_rows(conn, section))
    finally:
        book.close()
    return total


def data_sheets(path: Path) -> list[str]:
    """The sheet names of a written workbook after its About sheet: one per section, plus the
    numbered continuations of a section past Excel's row limit (read from the workbook's index,
    not its rows)."""
    book = openpyxl.load_workbook(path, read_only=True)
    try:
        return book.sheetnames[1:]
    finally:
        book.close()


def _write_section(book: xp.Workbook, report: ReportContext, section: SectionSnapshot, taken: set[str],
                   rows: Iterator[Sequence]) -> int:
    """One section on its sheet, continued on numbered sheets past Excel's row limit (an empty
    section still gets its sheet and header)."""
    rows = iter(rows)
    row_xml = xc.row_formatter([_encoder(c) for c in section.columns])
    part, total = 1, 0
    while True:
        title = section.title if part == 1 else f"{section.title} ({part})"
        total += _write_table(book, report, section, sheet_name(title, taken), itertools.islice(rows, MAX_DATA_ROWS), row_xml)
        following = next(rows, None)
        if following is None:
            return total
        rows = itertools.chain([following], rows)
        part += 1


def _write_table(book: xp.Workbook, report: ReportContext, section: SectionSnapshot, name: str, rows, row_xml) -> int:
    """A section's sheet: the marking row, the header row, the data, an autofilter and widths."""
    sheet = _new_sheet(book, report, name, frozen_rows=HEADER_ROWS)
    sheet.write_cells([(0, clean_text(f"{_marking_line(report)} · {section.title}"), STYLE["marking"])])
    sheet.write_cells([(col, clean_text(c.header), STYLE["header"]) for col, c in enumerate(section.columns)])
    widths = _Widths(section.columns)
    sample = list(itertools.islice(rows, _Widths.SAMPLE_ROWS - HEADER_ROWS))  # bounded: a thousand rows
    widths.see(sample)
    width = len(section.columns)
    written = sheet.write_rows(sample, row_xml, width) + sheet.write_rows(rows, row_xml, width)
    last_col = xc.column_letter(max(width - 1, 0))
    sheet.close(widths=widths.columns_xml(), autofilter=f"A{HEADER_ROWS}:{last_col}{max(sheet.rows, HEADER_ROWS)}")
    return written
