"""XLSX: one sheet per section, streamed with xlsxwriter's constant-memory mode.

Text is always written as text (never a formula or a URL, whatever it starts with). What XLSX
cannot hold is changed visibly, never silently: XML-illegal control characters become U+FFFD,
cells over Excel's 32,767 characters are cut with a marker, and sections past Excel's row limit
continue on numbered sheets.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import xlsxwriter

from orchestration.exports.rows import stream_rows
from orchestration.exports.sections import ReportContext, SectionSnapshot

MAX_CELL_CHARS = 32_767
MAX_DATA_ROWS = 1_048_575  # Excel's 1,048,576 rows less the header
TRUNCATION_MARKER = "…[truncated]"
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_SHEET_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")


def clean_text(value: str) -> str:
    if _ILLEGAL.search(value):
        value = _ILLEGAL.sub("\ufffd", value)
    if len(value) > MAX_CELL_CHARS:
        value = value[: MAX_CELL_CHARS - len(TRUNCATION_MARKER)] + TRUNCATION_MARKER
    return value


def _cell_writers(sheet, columns, fmt: _Formats):
    """One writer per column, chosen once from the declared type (the hot loop does no type
    dispatch); a value of another type than declared still goes through _write_cell."""
    def text(row, col, value):
        if value.__class__ is str:
            sheet.write_string(row, col, clean_text(value))
        else:
            _write_cell(sheet, row, col, value, fmt)

    def number(row, col, value):
        if value.__class__ is bool:
            sheet.write_boolean(row, col, value)
        elif isinstance(value, (int, float, Decimal)):
            sheet.write_number(row, col, float(value))
        else:
            _write_cell(sheet, row, col, value, fmt)

    def other(row, col, value):
        _write_cell(sheet, row, col, value, fmt)

    by_type = {"text": text, "integer": number, "bigint": number, "numeric": number}
    return [by_type.get(c.type, other) for c in columns]


def sheet_name(title: str, taken: set[str]) -> str:
    base = _SHEET_FORBIDDEN.sub("", title).strip("'")[:31] or "Sheet"
    name, n = base, 2
    while name.lower() in {t.lower() for t in taken}:
        suffix = f" ({n})"
        name, n = base[: 31 - len(suffix)] + suffix, n + 1
    taken.add(name)
    return name


class _Formats:
    def __init__(self, book: xlsxwriter.Workbook):
        self.header = book.add_format({"bold": True, "bg_color": "#1F2A44", "font_color": "#FFFFFF"})
        self.date = book.add_format({"num_format": "yyyy-mm-dd"})
        self.datetime = book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        self.label = book.add_format({"bold": True})
        self.title = book.add_format({"bold": True, "font_size": 14})
        self.warning = book.add_format({"bold": True, "font_color": "#B00020"})


def _write_cell(sheet, row: int, col: int, value, fmt: _Formats) -> None:
    if value is None:
        return
    if isinstance(value, bool):
        sheet.write_boolean(row, col, value)
    elif isinstance(value, (int, float, Decimal)):
        sheet.write_number(row, col, float(value))
    elif isinstance(value, dt.datetime):
        sheet.write_datetime(row, col, value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value, fmt.datetime)
    elif isinstance(value, dt.date):
        sheet.write_datetime(row, col, dt.datetime(value.year, value.month, value.day), fmt.date)
    else:
        sheet.write_string(row, col, clean_text(str(value)))


def _header_sheet(book, fmt: _Formats, report: ReportContext, taken: set[str]) -> None:
    sheet = book.add_worksheet(sheet_name("Report", taken))
    sheet.set_column(0, 0, 28)
    sheet.set_column(1, 1, 70)
    sheet.write_string(0, 0, clean_text(report.title), fmt.title)
    facts = [
        ("Tenant", f"{report.tenant_name} ({report.tenant_id})"),
        ("Period", report.period_label),
        ("Window", f"{report.window_start.isoformat()} to {report.window_end.isoformat()} (exclusive)"),
        ("Template", f"{report.template_key} v{report.template_version}"),
        ("Run id", report.run_id),
        ("Input hash", report.input_hash),
        ("Generated at", report.generated_at.isoformat()),
    ]
    row = 2
    if report.degraded:
        sheet.write_string(row, 0, "DEGRADED", fmt.warning)
        sheet.write_string(row, 1, clean_text(report.degraded_reason or "source data incomplete"), fmt.warning)
        row += 1
    for label, value in facts:
        sheet.write_string(row, 0, label, fmt.label)
        sheet.write_string(row, 1, clean_text(value))
        row += 1
    if report.key_figures:
        row += 1
        sheet.write_string(row, 0, "Key figures", fmt.title)
        row += 1
        for figure in report.key_figures:
            sheet.write_string(row, 0, clean_text(figure.label), fmt.label)
            sheet.write_string(row, 1, clean_text(f"{figure.value} {figure.unit}".strip()))
            row += 1


def write_xlsx(conn, report: ReportContext, sections: Sequence[SectionSnapshot], path: Path) -> int:
    book = xlsxwriter.Workbook(
        str(path),
        {
            "constant_memory": True,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
            "default_date_format": "yyyy-mm-dd",
        },
    )
    fmt = _Formats(book)
    taken: set[str] = set()
    total = 0
    try:
        _header_sheet(book, fmt, report, taken)
        for section in sections:
            sheet, row = None, 0
            part = 1
            for values in stream_rows(conn, section):
                if sheet is None or row > MAX_DATA_ROWS:
                    title = section.title if part == 1 else f"{section.title} ({part})"
                    sheet = _section_sheet(book, fmt, section, title, taken)
                    writers = _cell_writers(sheet, section.columns, fmt)
                    part += 1
                    row = 1
                for col, value in enumerate(values):
                    if value is not None:
                        writers[col](row, col, value)
                row += 1
                total += 1
            if sheet is None:  # an empty section still gets its sheet and header
                _section_sheet(book, fmt, section, section.title, taken)
    finally:
        book.close()
    return total


def _section_sheet(book, fmt: _Formats, section: SectionSnapshot, title: str, taken: set[str]):
    sheet = book.add_worksheet(sheet_name(title, taken))
    for col, column in enumerate(section.columns):
        sheet.write_string(0, col, column.header, fmt.header)
        sheet.set_column(col, col, max(12, min(40, len(column.header) + 4)))
    sheet.freeze_panes(1, 0)
    return sheet
