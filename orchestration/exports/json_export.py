"""JSON: the report header and every section, written row by row.

Values are faithful (no formula neutralization: JSON is data, not a spreadsheet). Numerics
become JSON numbers: integral values as integers, others as floats, which is exact for the
one-decimal figures reports show; dates and times are ISO 8601 strings.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from orchestration.exports.numbers import column_unit, key_figure_parts
from orchestration.exports.rows import stream_rows
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
            names = [c.name for c in section.columns]
            meta = {
                "name": section.name,
                "title": section.title,
                "columns": [{"name": c.name, "label": c.header, "type": c.type, "unit": column_unit(c)}
                            for c in section.columns],
                "row_count": section.row_count,
            }
            fh.write(("," if i else "") + "\n" + dumps(meta)[:-1] + ', "rows": [')
            for j, row in enumerate(stream_rows(conn, section)):
                fh.write(("," if j else "") + "\n  " + dumps({n: json_value(v) for n, v in zip(names, row, strict=True)}))
                total += 1
            fh.write("]}")
        fh.write("\n]}\n")
    return total
