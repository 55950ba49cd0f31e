"""JSON: the report header and every section, each row on its own line.

Values are faithful (no formula neutralization: JSON is data, not a spreadsheet). Numerics
become JSON numbers, integral values as integers and others with their decimals as stored;
dates and times are ISO 8601 strings.

The rows are serialized by Postgres itself (`to_json` per value, joined in the layout this
file has always had) and streamed with one COPY, several times faster than decoding each row
into Python and encoding it again; the header and each section's metadata are small and
written from Python.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from orchestration.exports.numbers import column_unit, key_figure_parts
from orchestration.exports.sections import ReportContext, SectionSnapshot


def json_value(value):
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def report_header(report: ReportContext) -> dict:
    header = {
        f.name: json_value(getattr(report, f.name))
        for f in dataclasses.fields(report)
        if f.name not in ("key_figures", "charts", "redactions")
    }
    header["classification"] = report.marking
    if report.redacted:
        header["redactions"] = [dataclasses.asdict(r) for r in report.redactions]
        header["variant_statement"] = report.variant_statement
    # A key figure is a number with its unit (null when the period has none); `text` is how the PDF shows it.
    header["key_figures"] = [
        {"label": k.label, "value": k.value, "unit": k.unit, "text": " ".join(p for p in key_figure_parts(k.value, k.unit) if p)}
        for k in report.key_figures
    ]
    return header


def write_json(conn, report: ReportContext, sections: Sequence[SectionSnapshot], path: Path) -> int:
    total = 0
    dumps = json.JSONEncoder(ensure_ascii=False, default=json_value).encode
    with path.open("w", encoding="utf-8") as fh:
        fh.write('{"report": ' + dumps(report_header(report)) + ', "sections": [')
        for i, section in enumerate(sections):
            meta = {
                "name": section.name,
                "title": section.title,
                "columns": [{"name": c.name, "label": c.header, "type": c.type, "unit": column_unit(c)}
                            for c in section.columns],
                "row_count": section.row_count,
            }
            fh.write(("," if i else "") + "\n" + dumps(meta)[:-1] + ', "rows": [')
            fh.flush()
            total += _copy_rows(conn, section, fh.buffer)
            fh.write("]}")
        fh.write("\n]}\n")
    return total


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def row_json_sql(section: SectionSnapshot) -> str:
    """One text per row: `{"name": value, ...}` exactly as json.dumps lays it out (key order as
    the columns, `": "` and `", "`). trim_scale makes 3.00 the integer 3 and 1.50 the number 1.5."""
    if not section.columns:
        return "'{}'"
    parts = []
    for i, column in enumerate(section.columns):
        key = ("{" if i == 0 else ", ") + json.dumps(column.name, ensure_ascii=False) + ": "
        value = f'trim_scale("{column.name}")' if column.type == "numeric" else f'"{column.name}"'
        parts.append(f"{_sql_text(key)} || coalesce(to_json({value})::text, 'null')")
    return " || ".join(parts) + " || '}'"


class _RowLines:
    """COPY hands over one line per row; the file has each row on its own indented line, the
    rows separated by commas. (A JSON text holds no raw line feed: each one is a row's end.)"""

    def __init__(self, out):
        self.out, self.rows_seen, self.pending = out, False, False

    def write(self, data: bytes) -> None:
        out = self.out
        if self.pending:
            out.write(b",\n  ")
        elif not self.rows_seen:
            out.write(b"\n  ")
            self.rows_seen = True
        self.pending = data.endswith(b"\n")
        out.write((data[:-1] if self.pending else data).replace(b"\n", b",\n  "))


def _copy_rows(conn, section: SectionSnapshot, out) -> int:
    # CSV mode with a delimiter and a quote character that JSON text never holds raw (it escapes
    # every control character), so each row's JSON arrives verbatim, unquoted, one per line.
    select = section.select_sql([row_json_sql(section)])
    with conn.cursor() as cur:
        cur.copy_expert(f"copy ({select}) to stdout with (format csv, delimiter E'\\x02', quote E'\\x01', "
                        "encoding 'UTF8')", _RowLines(out))
        return cur.rowcount
