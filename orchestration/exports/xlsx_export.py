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

import openpyxl
import xlsxwriter

from orchestration.exports.numbers import column_unit
from orchestration.exports.rows import stream_rows
from orchestration.exports.sections import Column, ReportContext, SectionSnapshot

MAX_CELL_CHARS = 32_767
HEADER_ROWS = 2  # the marking row and the column header row, above every table
MAX_DATA_ROWS = 1_048_576 - HEADER_ROWS  # Excel's row limit less the header rows
# Number formats per kind of value: counts whole, everything measured to one decimal.
NUMBER_FORMATS = {"count": "#,##0", "%": "0.0", "ms": "#,##0", "": "#,##0.0", "min": "#,##0.0", "h": "#,##0.0",
                  "days": "#,##0.0"}
TRUNCATION_MARKER = "…[truncated]"
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_SHEET_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")


def clean_text(value: str) -> str:
    if _ILLEGAL.search(value):
        value = _ILLEGAL.sub("\ufffd", value)
    if len(value) > MAX_CELL_CHARS:
        value = value[: MAX_CELL_CHARS - len(TRUNCATION_MARKER)] + TRUNCATION_MARKER
    return value


def _cell_writers(sheet, columns, fmt: _Formats, widths: _Widths):
    """One writer per column, chosen once from the declared type (the hot loop does no type
    dispatch); a value of another type than declared still goes through _write_cell."""
    def text(row, col, value):
        if value.__class__ is str:
            value = clean_text(value)
            sheet.write_string(row, col, value)
            widths.see(row, col, len(value))
        else:
            _write_cell(sheet, row, col, value, fmt)

    def number_writer(col_fmt):
        def number(row, col, value):
            if value.__class__ is bool:
                sheet.write_boolean(row, col, value)
            elif isinstance(value, (int, float, Decimal)):
                sheet.write_number(row, col, float(value), col_fmt)
                widths.see(row, col, len(f"{value:,.1f}"))
            else:
                _write_cell(sheet, row, col, value, fmt)
        return number

    def other(row, col, value):
        _write_cell(sheet, row, col, value, fmt)

    writers = []
    for c in columns:
        if c.type == "text":
            writers.append(text)
        elif c.type in ("integer", "bigint", "numeric"):
            writers.append(number_writer(fmt.for_column(c)))
        else:
            writers.append(other)
    return writers


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


class _Formats:
    def __init__(self, book: xlsxwriter.Workbook):
        self.header = book.add_format({"bold": True, "bg_color": "#1F2A44", "font_color": "#FFFFFF",
                                       "text_wrap": True, "valign": "top"})
        self.marking = book.add_format({"bold": True, "font_color": "#B00020"})
        self.date = book.add_format({"num_format": "yyyy-mm-dd"})
        self.datetime = book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        self.label = book.add_format({"bold": True})
        self.title = book.add_format({"bold": True, "font_size": 14})
        self.warning = book.add_format({"bold": True, "font_color": "#B00020"})
        self.wrap = book.add_format({"text_wrap": True, "valign": "top"})
        self.numbers = {pattern: book.add_format({"num_format": pattern}) for pattern in set(NUMBER_FORMATS.values())}

    def for_column(self, column: Column):
        """Whole numbers for counts, one decimal for shares, durations and other measures."""
        if column.type in ("integer", "bigint"):
            return self.numbers[NUMBER_FORMATS["count"]]
        return self.numbers[NUMBER_FORMATS.get(column_unit(column), NUMBER_FORMATS[""])]

    def for_unit(self, unit: str, value) -> object:
        if isinstance(value, int):
            return self.numbers[NUMBER_FORMATS["count"]]
        return self.numbers[NUMBER_FORMATS.get(unit, NUMBER_FORMATS[""])]


class _Widths:
    """Column widths from the content: the longest value seen in the first rows of each column."""

    SAMPLE_ROWS = 1000
    MIN, MAX = 8, 60

    def __init__(self, headers: list[str]):
        self.chars = [min(max(len(w) for w in h.split()) if h.split() else 0, 24) for h in headers]

    def see(self, row: int, col: int, chars: int) -> None:
        if row <= self.SAMPLE_ROWS and chars > self.chars[col]:
            self.chars[col] = chars

    def apply(self, sheet, columns, fmt: _Formats) -> None:
        least = {"date": 11, "timestamptz": 20}  # written as dates, not tracked as text
        for col, column in enumerate(columns):
            width = max(self.MIN, least.get(column.type, 0), min(self.MAX, self.chars[col] + 2))
            sheet.set_column(col, col, width, _column_format(column, fmt))


def _column_format(column: Column, fmt: _Formats):
    if column.type in ("integer", "bigint", "numeric"):
        return fmt.for_column(column)
    return {"date": fmt.date, "timestamptz": fmt.datetime}.get(column.type)


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


def _marking_line(report: ReportContext) -> str:
    variant = " · EXTERNAL (REDACTED) VARIANT" if report.redacted else ""
    return f"{report.marking}{variant} · {report.title} · {report.tenant_name} · {report.period_label}"


def _mark_sheet(sheet, report: ReportContext) -> None:
    """Printed pages carry the marking too, in the page header and footer."""
    sheet.set_header(f"&C&B{report.marking}")
    sheet.set_footer(f"&L{report.marking}&RPage &P of &N")


def _about_sheet(book, fmt: _Formats, report: ReportContext, taken: set[str]) -> None:
    sheet = book.add_worksheet(sheet_name("About", taken))
    _mark_sheet(sheet, report)
    sheet.set_column(0, 0, 28)
    sheet.set_column(1, 1, 90)
    sheet.write_string(0, 0, _marking_line(report), fmt.marking)
    sheet.write_string(1, 0, clean_text(report.title), fmt.title)
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
    row = 3
    if report.degraded:
        sheet.write_string(row, 0, "DEGRADED", fmt.warning)
        sheet.write_string(row, 1, clean_text(report.degraded_reason or "source data incomplete"), fmt.warning)
        row += 1
    if report.redacted:
        sheet.write_string(row, 0, "Redactions", fmt.warning)
        sheet.write_string(row, 1, clean_text(report.variant_statement), fmt.wrap)
        row += 1
    for label, value in facts:
        sheet.write_string(row, 0, label, fmt.label)
        sheet.write_string(row, 1, clean_text(value))
        row += 1
    if report.key_figures:
        row += 1
        sheet.write_string(row, 0, "Key figures", fmt.title)
        sheet.write_string(row, 1, "value (unit)", fmt.label)
        row += 1
        for figure in report.key_figures:
            sheet.write_string(row, 0, clean_text(figure.label), fmt.label)
            if figure.value is None:
                sheet.write_string(row, 1, "no value in this period")
            else:  # a number with its number format; the unit beside it
                sheet.write_number(row, 1, float(figure.value), fmt.for_unit(figure.unit, figure.value))
                if figure.unit:
                    sheet.write_string(row, 2, figure.unit)
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
    # The document's created/modified dates are the run's generation time, not the clock's, so a
    # rerun with that time writes the same bytes (xlsxwriter already fixes the zip members' times).
    book.set_properties({"created": report.generated_at})
    fmt = _Formats(book)
    taken: set[str] = set()
    total = 0
    try:
        _about_sheet(book, fmt, report, taken)
        for section in sections:
            total += _write_section(book, fmt, report, section, taken, stream_rows(conn, section))
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


def _write_section(book, fmt: _Formats, report: ReportContext, section: SectionSnapshot, taken: set[str], rows) -> int:
    """One section on its sheet (continued on numbered sheets past Excel's row limit)."""
    table: _Table | None = None
    part, total = 1, 0
    for values in rows:
        if table is None or table.row >= HEADER_ROWS + MAX_DATA_ROWS:
            if table:
                table.close()
            title = section.title if part == 1 else f"{section.title} ({part})"
            table = _Table(book, fmt, report, section, title, taken)
            part += 1
        table.write(values)
        total += 1
    if table is None:  # an empty section still gets its sheet and header
        table = _Table(book, fmt, report, section, section.title, taken)
    table.close()
    return total


class _Table:
    """A section's sheet: the marking row, the header row, the data, an autofilter and widths."""

    def __init__(self, book, fmt: _Formats, report: ReportContext, section: SectionSnapshot, title: str,
                 taken: set[str]):
        self.sheet = sheet = book.add_worksheet(sheet_name(title, taken))
        self.columns, self.fmt = section.columns, fmt
        _mark_sheet(sheet, report)
        sheet.write_string(0, 0, clean_text(f"{_marking_line(report)} · {section.title}"), fmt.marking)
        headers = [c.header for c in section.columns]
        for col, header in enumerate(headers):
            sheet.write_string(1, col, header, fmt.header)
        sheet.freeze_panes(HEADER_ROWS, 0)
        self.widths = _Widths(headers)
        self.writers = _cell_writers(sheet, section.columns, fmt, self.widths)
        self.row = HEADER_ROWS

    def write(self, values) -> None:
        for col, value in enumerate(values):
            if value is not None:
                self.writers[col](self.row, col, value)
        self.row += 1

    def close(self) -> None:
        last_col = max(len(self.columns) - 1, 0)
        self.sheet.autofilter(1, 0, max(self.row - 1, 1), last_col)
        self.widths.apply(self.sheet, self.columns, self.fmt)
