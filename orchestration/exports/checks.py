"""Checks of every rendered file before it is published: read back what was written.

CSV: the header is the section contract (plus report_status on a degraded run) and the row
count matches. XLSX: the workbook reopens and its data rows add up to the sections' rows.
JSON: every row validates against the section's schema (streamed line by line, as written),
and the counts match. PDF: it has pages, its first, second and last pages show the
classification marking in header and footer (check_pdf says why that covers every page) and its
text shows every key figure. A failure ends the run as format_error: a file that does not say
what the snapshot says is never published.
Each check is registered with its format in exports/formats.py, which runs them.
"""

from __future__ import annotations

import csv
import json
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jsonschema
import openpyxl
import pypdfium2

from orchestration.exports import numbers
from orchestration.exports.csv_export import STATUS_COLUMN
from orchestration.exports.sections import ReportContext, SectionSnapshot
from orchestration.exports.xlsx_export import HEADER_ROWS

_JSON_TYPES = {
    "text": "string", "integer": "integer", "bigint": "integer", "numeric": "number",
    "date": "string", "timestamptz": "string", "boolean": "boolean",
}


def row_schema(section: SectionSnapshot) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {c.name: {"type": [_JSON_TYPES[c.type], "null"]} for c in section.columns},
        "required": [c.name for c in section.columns],
        "additionalProperties": False,
    }


def check_csv(path: Path, sections: Sequence[SectionSnapshot], context: ReportContext) -> list[str]:
    (section,) = sections
    expected = [c.name for c in section.columns] + ([STATUS_COLUMN] if context.degraded else [])
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, [])
        rows = sum(1 for _ in reader)
    problems = []
    if header != expected:
        problems.append(f"header {header} is not the section contract {expected}")
    if rows != section.row_count:
        problems.append(f"{rows} rows, the snapshot has {section.row_count}")
    return problems


def check_xlsx(path: Path, sections: Sequence[SectionSnapshot], context: ReportContext) -> list[str]:
    book = openpyxl.load_workbook(path, read_only=True)
    try:
        data_sheets = book.worksheets[1:]  # the first sheet is About
        # The dimension the writer records once a sheet is complete: rows written, header rows
        # included, without reading every row.
        written = sum(max((ws.max_row or HEADER_ROWS) - HEADER_ROWS, 0) for ws in data_sheets)
    finally:
        book.close()
    expected = sum(s.row_count for s in sections)
    return [] if written == expected else [f"{written} data rows, the snapshot has {expected}"]


def check_json(path: Path, sections: Sequence[SectionSnapshot], context: ReportContext) -> list[str]:
    """Our writer puts the header on the first line, each section's metadata on its own line and
    each row on its own line: validated one line at a time, never loaded whole."""
    problems: list[str] = []
    by_name = {s.name: s for s in sections}
    validator, current, counts = None, None, {}
    with path.open(encoding="utf-8") as fh:
        first = fh.readline()
        header = json.loads(first.rstrip().removesuffix(', "sections": [') + "}")
        if header.get("report", {}).get("run_id") != context.run_id:
            problems.append("report header does not name this run")
        for line in fh:
            line = line.rstrip("\n")
            if line.startswith(("{\"name\"", ",{\"name\"")):
                text = line.lstrip(",").rstrip(",")
                empty = text.endswith('"rows": []}')
                meta = json.loads(text if empty else text.removesuffix(', "rows": [') + "}")
                current = by_name.get(meta["name"])
                if current is None:
                    problems.append(f"unexpected section {meta['name']}")
                    continue
                validator = jsonschema.Draft202012Validator(row_schema(current))
                counts[current.name] = 0
                if empty:
                    current = None
                continue
            body = line.strip().rstrip(",")
            for suffix in ("]}", "]}]}"):
                body = body.removesuffix(suffix) if body.endswith("}" + suffix) else body
            if not body.startswith("{") or current is None:
                continue
            errors = list(validator.iter_errors(json.loads(body)))
            if errors:
                problems.append(f"section {current.name} row {counts[current.name] + 1}: {errors[0].message}")
                break
            counts[current.name] += 1
    for section in sections:
        if counts.get(section.name) != section.row_count:
            problems.append(f"section {section.name}: {counts.get(section.name)} rows, the snapshot has {section.row_count}")
    return problems


_pdfium_lock = threading.Lock()


def _page_text(document, index: int) -> str:
    page = document[index]
    try:
        text = page.get_textpage()
        try:
            return text.get_text_range()
        finally:
            text.close()
    finally:
        page.close()


def check_pdf(path: Path, sections: Sequence[SectionSnapshot], context: ReportContext) -> list[str]:
    """The file opens as a PDF with pages, the text read back from every page shows the marking in
    header and footer, and the first pages show every key figure (drawn at the top of page one).
    Read with PDFium (pypdfium2): a real reader, about 40 times cheaper than pypdf's
    pure-Python text extraction, so every page is read, not a sample."""
    with _pdfium_lock:  # PDFium is not thread-safe
        try:
            document = pypdfium2.PdfDocument(path)
        except pypdfium2.PdfiumError as exc:
            return [f"not a readable PDF: {exc}"]
        try:
            pages = {i + 1: re.sub(r"\s+", "", _page_text(document, i).replace("\x00", "")) for i in range(len(document))}
        finally:
            document.close()
    if not pages:
        return ["no pages"]
    problems = []
    unmarked = [str(i) for i, text in pages.items() if text.count(context.marking) < 2]
    if unmarked:
        problems.append(f"pages without the {context.marking} marking in header and footer: {', '.join(unmarked)}")
    text = "".join(pages[i] for i in (1, 2) if i in pages)
    shown = {f.label: numbers.key_figure_parts(f.value, f.unit)[0] for f in context.key_figures}
    missing = [label for label, value in shown.items() if re.sub(r"\s+", "", value) not in text]
    if missing:
        problems.append(f"key figures not shown: {', '.join(missing)}")
    return problems
