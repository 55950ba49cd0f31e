"""Renderers: every format streamed from a run's snapshot tables."""

from orchestration.exports.csv_export import neutralize_formula, write_csv
from orchestration.exports.json_export import write_json
from orchestration.exports.pdf_export import safe_url_fetcher, write_pdf
from orchestration.exports.sections import ChartSpec, Column, KeyFigure, ReportContext, SectionSnapshot
from orchestration.exports.xlsx_export import write_xlsx

__all__ = [
    "ChartSpec", "Column", "KeyFigure", "ReportContext", "SectionSnapshot",
    "neutralize_formula", "safe_url_fetcher", "write_csv", "write_json", "write_pdf", "write_xlsx",
]
