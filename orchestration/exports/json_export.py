"""JSON: the report header and every section, each row on its own line.

Values are faithful (no formula neutralization: JSON is data, not a spreadsheet). Numerics
become JSON numbers, integral values as integers and others with their decimals as stored;
dates and times are ISO 8601 strings (times as Postgres writes them: fractional seconds
without trailing zeros, the offset of the session's time zone).

The rows are serialized by Postgres itself (`to_json` per value, laid out as this file has
always been) and streamed with one COPY straight into the file, several times faster than
decoding each row into Python and encoding it again; the header and each section's metadata are small and
written from Python.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
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
    with path.open("wb") as fh:
        fh.write(('{"report": ' + dumps(report_header(report)) + ', "sections": [').encode())
        for i, section in enumerate(sections):
            meta = {
                "name": section.name,
                "title": section.title,
                "columns": [{"name": c.name, "label": c.header, "type": c.type, "unit": column_unit(c)}
                            for c in section.columns],
                "row_count": section.row_count,
            }
            fh.write((("," if i else "") + "\n" + dumps(meta)[:-1] + ', "rows": [\n').encode())
            rows = _copy_rows(conn, section, fh)
            # Every row line ends with a comma and a line feed: the last row's (or, without rows,
            # the line feed written above) give way to the closing brackets.
            fh.seek(-2 if rows else -1, io.SEEK_CUR)
            total += rows
            fh.write(b"]}")
        fh.write(b"\n]}\n")
    return total


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# Where a value's own text is already its JSON (numbers and booleans), the cast is cheaper than
# to_json and gives the same text; trim_scale makes 3.00 the integer 3 and 1.50 the number 1.5.
_AS_TEXT = {"integer": '"{}"::text', "bigint": '"{}"::text', "boolean": '"{}"::text', "numeric": 'trim_scale("{}")::text'}


def row_json_sql(section: SectionSnapshot) -> str:
    """One line per row: `  {"name": value, ...},` exactly as json.dumps lays a row out (key
    order as the columns, `": "` and `", "`)."""
    parts = []
    for i, column in enumerate(section.columns):
        key = ("{" if i == 0 else ", ") + json.dumps(column.name, ensure_ascii=False) + ": "
        value = _AS_TEXT.get(column.type, 'to_json("{}")::text').format(column.name)
        parts.append(f"{_sql_text(key)} || coalesce({value}, 'null')")
    return "'  ' || " + (" || ".join(parts) + " || '}'" if parts else "'{}'") + " || ','"


def _copy_rows(conn, section: SectionSnapshot, out) -> int:
    # CSV mode with a delimiter and a quote character that JSON text never holds raw (it escapes
    # every control character), so each row's line arrives verbatim, unquoted, straight into the file.
    select = section.select_sql([row_json_sql(section)])
    with conn.cursor() as cur:
        cur.copy_expert(f"copy ({select}) to stdout with (format csv, delimiter E'\\x02', quote E'\\x01', "
                        "encoding 'UTF8')", out)
        return cur.rowcount
